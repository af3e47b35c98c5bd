"""The standard and the defensive IW estimate of each two-level row's test NLL, image by image (issue 46).

  .venv/bin/python experiments/published/defensive.py [ROW ...]   # default: every finished two-level row here

For each row's workdir: its model (vae.load: the best epoch), the test set as its evaluation scored it (binarized
once with the evaluation's key), 5000 importance samples with the run's seed, the papers' standard estimate and the
defensive mixture (eval.defensive_fraction's estimate: 20% of the draws from the prior down every level, every
draw weighed by p(x, z) / (0.8 q(z|x) + 0.2 p(z)); vae/iwae.py). Writes ROW/defensive.json: both means, the mean
of their per-image difference with its standard error, and the images where they differ most.
"""
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import vae  # pylint: disable=wrong-import-position
from vae import data  # pylint: disable=wrong-import-position

ROWS = ('fashion_hvae_seed0', 'mnist_hvae_seed0', 'fashion_hvae_vamp_seed0', 'mnist_hvae_vamp_seed0',
        'burda_two_layer_seed0')
FRACTION, SAMPLES = 0.2, 5000


def main(rows):
  for row in rows:
    workdir = os.path.join(HERE, row)
    results = json.load(open(os.path.join(workdir, 'results.json')))  # A finished row only.
    model = vae.load(workdir)
    config = model.config
    test = data.load(config.data.name, None, config.data.classes, config.data.source).test_images
    estimates, seconds = {}, {}
    for name, fraction in (('standard', 0.0), ('defensive', FRACTION)):
      t0 = time.time()
      estimates[name] = -model.log_likelihood(test, SAMPLES, seed=config.seed, defensive=fraction,
                                              progress=f'{row} {name}')
      seconds[name] = time.time() - t0
    diff = estimates['defensive'] - estimates['standard']
    worst = np.argsort(-np.abs(diff))[:5]
    out = {'row': row, 'samples': SAMPLES, 'defensive_fraction': FRACTION, 'seed': config.seed,
           'results_json_nll_iw': results.get('test/nll_iw'),
           'standard_nll': float(np.mean(estimates['standard'])),
           'defensive_nll': float(np.mean(estimates['defensive'])),
           'mean_difference': float(np.mean(diff)),
           'difference_standard_error': float(np.std(diff, ddof=1) / np.sqrt(len(diff))),
           'standard_error_of_each': {k: float(np.std(v, ddof=1) / np.sqrt(len(v))) for k, v in estimates.items()},
           'largest_differences': [{'image': int(i), 'standard': float(estimates['standard'][i]),
                                    'defensive': float(estimates['defensive'][i])} for i in worst],
           'seconds': seconds}
    with open(os.path.join(workdir, 'defensive.json'), 'w') as f:
      json.dump(out, f, indent=2)
    print(json.dumps(out), flush=True)


if __name__ == '__main__':
  main(sys.argv[1:] or [r for r in ROWS if os.path.exists(os.path.join(HERE, r, 'results.json'))])
