"""How far above the 5000-sample IW NLL a row's fewer-sample estimate lies, measured on the first test images.

  python experiments/fashion_baseline/iw_bias.py WORKDIR [--images=500] [--samples=500,5000]

The importance-weighted estimate of -log p(x) falls towards the true NLL as the number of samples k grows (Burda
et al. 2016, Theorem 1), so a k = 500 figure lies above the table's k = 5000 one. For a row evaluated with fewer
samples on the full test set (the conv row: 5000 samples of its conv decoder for 10,000 images are hours per
member on this CPU), this scores each member of the sweep in WORKDIR on the first `--images` test images with
every k of `--samples` and writes the per-member and mean differences to WORKDIR/iw_bias.json.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from vae import api, data, records  # pylint: disable=g-import-not-at-top,wrong-import-position


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('workdir')
  parser.add_argument('--images', type=int, default=500)
  parser.add_argument('--samples', default='500,5000')
  args = parser.parse_args()
  ks = [int(k) for k in args.samples.split(',')]
  members_dir = os.path.join(args.workdir, 'members')
  if not os.path.isdir(members_dir):
    sys.exit(f'error: {members_dir}: no such folder (a finished run.py --sweep workdir is expected)')
  out = {'images': args.images, 'samples': ks, 'members': []}
  for name in sorted(os.listdir(members_dir), key=int):
    model = api.load(os.path.join(members_dir, name))
    if model.config.data.preprocessing != 'gray':
      sys.exit(f'error: {members_dir}/{name}: preprocessing {model.config.data.preprocessing!r}; only gray-pixel '
               'runs are scored on the raw test images')
    d = model.config.data
    x = data.load(d.name, d.dir, d.classes, d.source).test_images[:args.images]  # As the run was scored.
    nll = {k: float(-np.mean(model.log_likelihood(x, k, seed=model.config.seed, progress=f'member {name}, k = {k}')))
           for k in ks}
    out['members'].append({'member': int(name), 'nll': nll, 'excess_over_largest_k': {
        k: nll[k] - nll[max(ks)] for k in ks}})
    print(json.dumps(out['members'][-1]), flush=True)
  out['mean_excess_over_largest_k'] = {
      k: float(np.mean([m['excess_over_largest_k'][k] for m in out['members']])) for k in ks}
  records.write_json(os.path.join(args.workdir, 'iw_bias.json'), out)
  print(json.dumps(out['mean_excess_over_largest_k']))


if __name__ == '__main__':
  main()
