"""How much the test set's one binarization moves a row's NLL: this project's fixed JAX key against the VampPrior
code's numpy draws.

  python experiments/published/binarization.py WORKDIR [IW_SAMPLES]

The VampPrior code binarizes validation and test once, `np.random.seed(777)`, then `np.random.binomial(1, x_val)`,
then `np.random.binomial(1, x_test)`, x in [0, 1] (the gray value / 255); this project draws them with
`data.binarize_once` (`configs/vampprior.py` says so). Both are draws from the same distribution. This
scores the run's evaluated model (`vae.load`: the best validation epoch) on both test sets with the same
importance-sampling seed and prints the two mean NLLs, their difference and its standard error over images.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import vae  # pylint: disable=g-import-not-at-top,wrong-import-position
from vae import data  # pylint: disable=g-import-not-at-top,wrong-import-position


def main(workdir, iw_samples=1000):
  model = vae.load(workdir)
  config = model.config
  dataset = data.hold_out(data.load(config.data.name), config.data.validation_size, config.data.validation_images)
  ours = data.binarize_once(dataset.test_images, 'test')  # The images the run was scored on.
  np.random.seed(777)
  np.random.binomial(1, dataset.validation_images / 255.0)  # Drawn first, as the VampPrior code does.
  theirs = np.random.binomial(1, dataset.test_images / 255.0).astype(np.float32)
  nll = {name: -model.log_likelihood(x, num_samples=iw_samples, progress=f'{name} ({iw_samples} samples)')
         for name, x in (('jax_key', ours), ('numpy_seed777', theirs))}
  difference = nll['numpy_seed777'] - nll['jax_key']
  out = {'workdir': workdir, 'epoch': model.epoch, 'iw_samples': iw_samples,
         **{f'test/nll_iw/{name}': v.mean() for name, v in nll.items()},
         'difference': difference.mean(), 'difference_stderr': difference.std(ddof=1) / np.sqrt(len(difference))}
  print(json.dumps(out, indent=1))


if __name__ == '__main__':
  if len(sys.argv) not in (2, 3):
    sys.exit(__doc__.split('\n\n')[1].strip())
  main(sys.argv[1], *map(int, sys.argv[2:]))
