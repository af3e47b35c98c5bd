"""The standard and the defensive IW estimate of each two-level row's test NLL, image by image (issue 46).

  .venv/bin/python experiments/published/defensive.py [ROW ...]   # default: every finished two-level row here

For each row's workdir: its model (vae.load: the best epoch), the test set as its evaluation scored it (binarized
once with the evaluation's key, data.binarize_once), 5000 importance samples, the papers' standard estimate and the
defensive mixture (eval.defensive_fraction's estimate: 20% of the draws from the prior down every level, every
draw weighed by p(x, z) / (0.8 q(z|x) + 0.2 p(z)); vae/iwae.py).

A row takes about 90 minutes of a 2-core CPU, so it goes in pieces of PIECE images: after each, both estimates of
its images are kept in ROW/defensive_per_image.npz, and a stopped run resumes at the next piece. Piece i draws with
seed 1000 * (the run's seed) + i. When every piece is done, writes ROW/defensive.json: both means, the mean of their
per-image difference with its standard error, and the images where they differ most.
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
FRACTION, SAMPLES, PIECE = 0.2, 5000, 500
NAMES = ('standard', 'defensive')


def per_image(row, model, test):
  """{'standard': (N,), 'defensive': (N,), 'seconds': (2,)}: -log p(x) of each test image, piece by piece, resumed
  from ROW/defensive_per_image.npz."""
  path = os.path.join(HERE, row, 'defensive_per_image.npz')
  done = dict(np.load(path)) if os.path.exists(path) else {n: np.zeros(0, np.float32) for n in NAMES}
  done.setdefault('seconds', np.zeros(2))
  while len(done['standard']) < len(test):
    piece = len(done['standard']) // PIECE
    images = test[piece * PIECE:(piece + 1) * PIECE]
    for j, (name, fraction) in enumerate(zip(NAMES, (0.0, FRACTION))):
      t0 = time.time()
      nll = -model.log_likelihood(images, SAMPLES, seed=1000 * model.config.seed + piece, defensive=fraction)
      done[name] = np.concatenate([done[name], nll.astype(np.float32)])
      done['seconds'][j] += time.time() - t0
    np.savez(path + '.tmp.npz', **done)
    os.replace(path + '.tmp.npz', path)  # Whole or not at all: a kill mid-write keeps the last piece's file.
    print(f'{row}: {len(done["standard"])}/{len(test)} images, standard {done["standard"].mean():.3f}, '
          f'defensive {done["defensive"].mean():.3f}', flush=True)
  return done


def main(rows):
  for row in rows:
    workdir = os.path.join(HERE, row)
    results = json.load(open(os.path.join(workdir, 'results.json')))  # A finished row only.
    model = vae.load(workdir)
    config = model.config
    test = data.load(config.data.name, None, config.data.classes, config.data.source).test_images
    if config.data.preprocessing == 'binarize_dynamic':
      test = data.binarize_once(test, 'test')  # Whole: a pixel's draw is keyed by its place in the set.
    estimates = per_image(row, model, test)
    diff = estimates['defensive'].astype(np.float64) - estimates['standard']
    worst = np.argsort(-np.abs(diff))[:5]
    out = {'row': row, 'samples': SAMPLES, 'defensive_fraction': FRACTION, 'seeds': f'1000 * {config.seed} + piece',
           'piece': PIECE, 'results_json_nll_iw': results.get('test/nll_iw'),
           **{f'{n}_nll': float(np.mean(estimates[n], dtype=np.float64)) for n in NAMES},
           'mean_difference': float(np.mean(diff)),
           'difference_standard_error': float(np.std(diff, ddof=1) / np.sqrt(len(diff))),
           'standard_error_of_each': {n: float(np.std(estimates[n], ddof=1) / np.sqrt(len(diff))) for n in NAMES},
           'largest_differences': [{'image': int(i), **{n: float(estimates[n][i]) for n in NAMES}} for i in worst],
           'seconds': dict(zip(NAMES, map(float, estimates['seconds'])))}
    with open(os.path.join(workdir, 'defensive.json'), 'w') as f:
      json.dump(out, f, indent=2)
    print(json.dumps(out), flush=True)


if __name__ == '__main__':
  main(sys.argv[1:] or [r for r in ROWS if os.path.exists(os.path.join(HERE, r, 'results.json'))])
