"""Sweeps: members of one config that differ in the seed and float hyper-parameters, trained as one program.

`--sweep=KEY=V1,V2,...` (repeatable; several make the grid of all combinations, the last varying fastest) over the
keys in SWEEPABLE: those that change neither the shapes nor the compiled program, so that `jax.vmap` over a leading
member axis trains all members at once. Member i lives in WORKDIR/members/<i>/ like a run of its own; the summary
(WORKDIR/sweep.json and sweep.md) gives each member's results and mean +- std over seeds of each setting; a member
that diverged is listed with where it did and left out of the means.
"""
import copy
import itertools
import os

import numpy as np
from absl import logging

from vae import records
from vae.errors import VaeError

SWEEPABLE = {'seed': int, 'train.beta': float, 'train.learning_rate': float}
SUMMARY_METRICS = ('test/neg_elbo', 'test/recon', 'test/kl', 'test/nll_iw', 'test/active_units', 'latent/kmeans_acc',
                   'latent/linear_probe_acc')


def parse(specs):
  """[(key, [values])] from the `--sweep` strings; raises VaeError naming the first bad one."""
  axes = []
  for spec in specs:
    key, sep, values = spec.partition('=')
    if not sep or not values:
      raise VaeError(f'--sweep={spec}: expected KEY=V1,V2,... (e.g. --sweep=seed=0,1,2)')
    if key not in SWEEPABLE:
      raise VaeError(f'--sweep={spec}: {key} cannot be swept (sweepable: {", ".join(SWEEPABLE)}; other keys change '
                     f'the model or the compiled program: run them separately)')
    if key in (k for k, _ in axes):
      raise VaeError(f'--sweep={spec}: {key} is swept twice')
    try:
      axes.append((key, [SWEEPABLE[key](v) for v in values.split(',')]))
    except ValueError:
      raise VaeError(f'--sweep={spec}: values must be {SWEEPABLE[key].__name__}s separated by commas') from None
  return axes


def member_configs(config, specs):
  """One config per combination of the swept values (the grid, the last `--sweep` varying fastest)."""
  axes = parse(specs)
  members = []
  for values in itertools.product(*(v for _, v in axes)):
    member = copy.deepcopy(config)
    for (key, _), value in zip(axes, values):
      _set(member, key, value)
    members.append(member)
  return members


def overrides(configs):
  """Per member, {key: value} of the sweepable keys whose values differ across `configs`."""
  varying = [k for k in SWEEPABLE if len({_get(c, k) for c in configs}) > 1]
  return [{k: _get(c, k) for k in varying} for c in configs]


def check_member(saved, config, path):
  """Refuses to continue a member folder trained with other swept values (`saved`: its config.json)."""
  differences = [f'{k}={_get(saved, k)} there, {_get(config, k)} now' for k in SWEEPABLE
                 if _get(saved, k) != _get(config, k)]
  if differences:
    raise VaeError(f'{path}: this sweep member was trained with other values ({"; ".join(differences)}); use '
                   f'another --workdir or the same --sweep flags')


def write_summary(workdir, configs, results, members_dir):
  """Writes WORKDIR/sweep.json and sweep.md: each member's results, and mean +- std over seeds per setting.

  `results[i]` is member i's results dict, or {'diverged': why} for a member that diverged (left out of the means).
  """
  settings = overrides(configs)
  members = [{'member': i, 'workdir': os.path.join(members_dir, str(i)), 'overrides': o,
              **{k: r[k] for k in SUMMARY_METRICS + ('diverged',) if k in r}}
             for i, (o, r) in enumerate(zip(settings, results))]
  groups = {}
  for member in members:
    key = tuple((k, v) for k, v in member['overrides'].items() if k != 'seed')
    groups.setdefault(key, [])
    if 'diverged' not in member:
      groups[key].append(member)
  summary = []
  for key, group in groups.items():
    row = {'setting': dict(key), 'members': [m['member'] for m in group], 'num_seeds': len(group)}
    for metric in SUMMARY_METRICS:
      values = np.array([m[metric] for m in group if metric in m], np.float64)
      if values.size:
        row[metric] = {'mean': float(values.mean()), 'std': float(values.std(ddof=1)) if values.size > 1 else 0.0}
    summary.append(row)
  records.write_text(os.path.join(workdir, 'sweep.md'), _markdown(members, summary))
  records.write_json(os.path.join(workdir, 'sweep.json'), {'members': members, 'summary': summary})
  for row in summary:
    if row['num_seeds']:
      logging.info('sweep %s over %d seed(s): test -elbo %.2f +- %.2f', row['setting'] or 'all members',
                   row['num_seeds'], row['test/neg_elbo']['mean'], row['test/neg_elbo']['std'])
    else:
      logging.info('sweep %s: every seed diverged', row['setting'] or 'all members')


def _markdown(members, summary):
  metrics = [m for m in SUMMARY_METRICS if any(m in row for row in summary)]
  lines = ['# Sweep', '', 'Mean +- std (sample std over seeds) per setting, nats per image.', '',
           '| setting | seeds | ' + ' | '.join(metrics) + ' |', '|---' * (len(metrics) + 2) + '|']
  for row in summary:
    setting = ', '.join(f'{k}={v}' for k, v in row['setting'].items()) or 'all'
    lines.append(f'| {setting} | {row["num_seeds"]} | ' + ' | '.join(
        f'{row[m]["mean"]:.3f} +- {row[m]["std"]:.3f}' if m in row else 'n/a' if row['num_seeds'] else 'diverged'
        for m in metrics) + ' |')
  lines += ['', '## Members', '', '| member | overrides | ' + ' | '.join(metrics) + ' |',
            '|---' * (len(metrics) + 2) + '|']
  for m in members:
    setting = ', '.join(f'{k}={v}' for k, v in m['overrides'].items())
    if 'diverged' in m:
      lines.append(f'| {m["member"]} | {setting} | diverged: {m["diverged"]} |' + ' |' * (len(metrics) - 1))
    else:
      lines.append(f'| [{m["member"]}](members/{m["member"]}/report.md) | {setting} | ' + ' | '.join(
          f'{m[k]:.3f}' for k in metrics) + ' |')
  return '\n'.join(lines) + '\n'


def _get(config, dotted):
  for part in dotted.split('.'):
    config = config[part]
  return config


def _set(config, dotted, value):
  *parents, last = dotted.split('.')
  for part in parents:
    config = config[part]
  config[last] = value
