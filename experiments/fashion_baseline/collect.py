"""Gathers the Fashion-MNIST baseline sweeps into results.json and prints the table of docs/results.md.

  python experiments/fashion_baseline/collect.py ROW=WORKDIR [ROW=WORKDIR ...]

Each WORKDIR is a finished `run.py --sweep=seed=0,1,2` run; its sweep.json gives the members' results and their
mean +- std (sample std over seeds), and its iw_bias.json if iw_bias.py wrote one. Rows already in results.json and
not named again are kept.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
COLUMNS = (('test/neg_elbo', 'test -ELBO'), ('test/nll_iw', 'IW NLL'), ('test/recon', 'recon'),
           ('test/kl', 'KL'), ('test/active_units', 'active units'))


def row(workdir):
  with open(os.path.join(workdir, 'sweep.json')) as f:
    sweep = json.load(f)
  (summary,) = sweep['summary']  # One setting, three seeds.
  for member in sweep['members']:
    if 'diverged' in member:
      sys.exit(f'{workdir}: member {member["member"]} diverged ({member["diverged"]}); a row needs every seed')
  with open(os.path.join(workdir, 'members', '0', 'config.json')) as f:
    config = json.load(f)
  with open(os.path.join(workdir, 'members', '0', 'results.json')) as f:
    iw_samples = json.load(f)['eval/iw_samples']
  out = {'seeds': [m['overrides']['seed'] for m in sweep['members']], 'iw_samples': iw_samples,
         'config': config, 'members': sweep['members'],
         **{k: summary[k] for k, _ in COLUMNS if k in summary}}
  bias_path = os.path.join(workdir, 'iw_bias.json')  # Written by iw_bias.py for a row with fewer IW samples.
  if os.path.exists(bias_path):
    with open(bias_path) as f:
      out['iw_bias'] = json.load(f)
  return out


def main(argv):
  path = os.path.join(HERE, 'results.json')
  results = {}
  if os.path.exists(path):
    with open(path) as f:
      results = json.load(f)
  for arg in argv:
    name, _, workdir = arg.partition('=')
    results[name] = row(workdir)
  with open(path, 'w') as f:
    json.dump(results, f, indent=1, sort_keys=True)
  print('| model | ' + ' | '.join(title for _, title in COLUMNS) + ' |')
  print('|---' * (len(COLUMNS) + 1) + '|')
  for name, r in results.items():
    samples = '' if r['iw_samples'] == 5000 else f' (IW with {r["iw_samples"]} samples)'
    print(f'| {name}{samples} | ' + ' | '.join(f'{r[k]["mean"]:.2f} +- {r[k]["std"]:.2f}' if k in r else 'n/a'
                                                for k, _ in COLUMNS) + ' |')


if __name__ == '__main__':
  main(sys.argv[1:])
