"""Gathers the published-protocol runs into results.json and prints the README's table.

  python experiments/published/collect.py

Each row is one config of `configs/vampprior.py`, trained once per seed in a workdir of its own here
(`<row>_seed<N>/`, as ROWS lists). A finished seed has a results.json (its best validation epoch, evaluated with
5000 importance samples); the others are listed as unfinished with the epoch they reached. Mean +- std (sample std)
is over the finished seeds.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = ('Norouzi, Fleet & Norouzi (2020), Exemplar VAEs for Exemplar based Generation and Data Augmentation, '
          'density-estimation table (sajadn/Exemplar-VAE, images/density_estimation.png)')
MACHINE = ('2-core AMD EPYC (Zen 4, family 25 model 17) CPU, no GPU (the development machine), at nice 19 '
           'beside one other run')
# row: (config, published mean, published std).
ROWS = {
    'fashion_standard': ('configs/vampprior.py:fashion', 228.70, 0.15),
    'mnist_standard': ('configs/vampprior.py:mnist', 84.45, 0.12),
    'fashion_vamp': ('configs/vampprior.py:fashion_vamp', 227.35, 0.05),
    'mnist_vamp': ('configs/vampprior.py:mnist_vamp', 82.43, 0.06),
}
FIGURES = ('test/nll_iw', 'test/neg_elbo', 'test/recon', 'test/kl', 'test/active_units', 'epoch',
           'eval/iw_samples')


def seed_record(workdir):
  """A seed's figures from its results.json, or how far it got, from its metrics.jsonl."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    epochs = {r['epoch']: r for r in map(json.loads, f)}  # The last record of an epoch trained again on resume.
  seconds = sum(r['seconds'] for r in epochs.values())
  results = os.path.join(workdir, 'results.json')
  if os.path.exists(results):
    with open(results) as f:
      r = json.load(f)
    return {'finished': True, 'stopped_at_epoch': max(epochs), 'training_seconds': round(seconds),
            **{k: r[k] for k in FIGURES}}
  best = min((r for r in epochs.values() if 'validation/neg_elbo' in r), key=lambda r: r['validation/neg_elbo'])
  return {'finished': False, 'reached_epoch': max(epochs), 'training_seconds': round(seconds),
          'best_validation_epoch': best['epoch'], 'best_validation/neg_elbo': best['validation/neg_elbo']}


def row(name, config, mean, std):
  seeds = {}
  for entry in sorted(os.listdir(HERE)):
    if entry.startswith(f'{name}_seed') and entry[len(name) + 5:].isdigit():
      seeds[int(entry[len(name) + 5:])] = seed_record(os.path.join(HERE, entry))
  out = {'config': config, 'published': {'mean': mean, 'std': std}, 'seeds': seeds}
  finished = [s for s in seeds.values() if s['finished']]
  if finished:
    for key in FIGURES[:5]:
      values = np.array([s[key] for s in finished], dtype=float)
      out[key] = {'mean': values.mean(), 'std': values.std(ddof=1) if len(values) > 1 else None, 'n': len(values)}
    out['difference'] = out['test/nll_iw']['mean'] - mean
  return out


def main():
  results = {'source': SOURCE, 'machine': MACHINE, 'rows': {name: row(name, *spec) for name, spec in ROWS.items()}}
  with open(os.path.join(HERE, 'results.json'), 'w') as f:
    json.dump(results, f, indent=1, sort_keys=True)
  print('| row | published | ours (test NLL, 5000 IW samples) | seeds |')
  print('|---|---|---|---|')
  for name, r in results['rows'].items():
    ours = 'not started'
    if 'test/nll_iw' in r:
      nll = r['test/nll_iw']
      ours = f'{nll["mean"]:.2f}' + (f' +- {nll["std"]:.2f}' if nll['std'] is not None else '')
    elif r['seeds']:
      ours = 'running'
    seeds = ', '.join(f'{seed}: ' + (f'{s["test/nll_iw"]:.2f}' if s['finished'] else f'epoch {s["reached_epoch"]}')
                      for seed, s in sorted(r['seeds'].items()))
    print(f'| {name} | {r["published"]["mean"]:.2f} +- {r["published"]["std"]:.2f} | {ours} | {seeds} |')


if __name__ == '__main__':
  if len(sys.argv) > 1:
    sys.exit(f'usage: {sys.argv[0]} (no arguments: it reads the workdirs beside it)')
  main()
