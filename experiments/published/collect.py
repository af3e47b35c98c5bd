"""The published likelihood tables, row by row: which rows exist, which are finished, the command that finishes each.

  python experiments/published/collect.py          # prints the status and the command of every unfinished row
  python experiments/published/collect.py --write  # also writes results.json and the tables into this folder's
                                                   # README and the project's README (between their markers)

A row is one config, trained once per seed in a workdir of its own (`<row>_seed<N>/` here, or the folder ROWS
names). A finished seed has a results.json (for the early-stopped rows, its best validation epoch), evaluated with
5000 importance samples; an unfinished one is listed with the epoch it reached, and rerunning its command resumes it.
Mean +- std (sample std) is over the finished seeds.
"""
import json
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TABLES = {
    'exemplar': ('Norouzi, Fleet & Norouzi (2020), Exemplar VAEs (NeurIPS), density-estimation table '
                 '(sajadn/Exemplar-VAE, images/density_estimation.png): the VampPrior code\'s protocol, dynamic '
                 'binarization, test NLL with 5000 importance samples'),
    'burda': ('Burda, Grosse & Salakhutdinov (2016), Table 1: dynamically binarized MNIST, 3280 passes, test NLL '
              'with 5000 importance samples'),
}
# row: (table, config, published mean, published std or None, machine the finished seeds ran on, seed folders where
# they are not `<row>_seed<N>/` here).
ZEN4 = '2-core AMD EPYC (Zen 4) CPU, at nice 19 beside one other run'
EPYC = '2-core AMD EPYC CPU'
EPYC_XEON = '2-core AMD EPYC, then Intel Xeon CPU'
XEON = '2-core Intel Xeon CPU'
EPYC_XEON_EPYC = '2-core AMD EPYC, then Intel Xeon, then AMD EPYC (Zen 4) CPU'
ROWS = {
    'fashion_standard': ('exemplar', 'configs/vampprior.py:fashion', 228.70, 0.15, ZEN4, None),
    'fashion_vamp': ('exemplar', 'configs/vampprior.py:fashion_vamp', 227.35, 0.05, ZEN4, None),
    'fashion_hvae': ('exemplar', 'configs/vampprior.py:fashion_hvae', 227.37, None, EPYC, None),
    'fashion_hvae_vamp': ('exemplar', 'configs/vampprior.py:fashion_hvae_vamp', 226.72, None, EPYC_XEON, None),
    'conv_fashion_hvae': ('exemplar', 'configs/vampprior.py:conv_fashion_hvae', 225.38, None, '', None),
    'conv_fashion_hvae_vamp': ('exemplar', 'configs/vampprior.py:conv_fashion_hvae_vamp', 224.67, None, '', None),
    'fashion_exemplar': ('exemplar', 'configs/vampprior.py:fashion_exemplar', 226.75, None, '', None),
    'mnist_standard': ('exemplar', 'configs/vampprior.py:mnist', 84.45, 0.12, ZEN4, None),
    'mnist_vamp': ('exemplar', 'configs/vampprior.py:mnist_vamp', 82.43, 0.06, ZEN4, None),
    'mnist_hvae': ('exemplar', 'configs/vampprior.py:mnist_hvae', 82.39, None, EPYC, None),
    'mnist_hvae_vamp': ('exemplar', 'configs/vampprior.py:mnist_hvae_vamp', 81.56, None, EPYC_XEON_EPYC, None),
    'conv_mnist_hvae': ('exemplar', 'configs/vampprior.py:conv_mnist_hvae', 80.52, None, '', None),
    'conv_mnist_hvae_vamp': ('exemplar', 'configs/vampprior.py:conv_mnist_hvae_vamp', 79.67, None, '', None),
    'mnist_exemplar': ('exemplar', 'configs/vampprior.py:mnist_exemplar', 82.09, None, '', None),
    'burda_vae': ('burda', 'configs/burda_mnist.py', 86.76, None, EPYC, {0: '../burda_mnist/vae'}),
    'burda_iwae5': ('burda', 'configs/burda_mnist.py:iwae5', 85.54, None, EPYC, {0: '../burda_mnist/iwae5'}),
    'burda_iwae50': ('burda', 'configs/burda_mnist.py:iwae50', 84.78, None, '', None),
    'burda_two_layer': ('burda', 'configs/burda_mnist.py:two_layer', 85.33, None, EPYC, None),
    'burda_two_layer_iwae50': ('burda', 'configs/burda_mnist.py:two_layer_iwae50', 82.90, None, '', None),
}
# row: what explains a finished row's distance from the published figure, where it is more than 0.5 nats.
GAPS = {
    'burda_two_layer': ('Their code\'s Adam (beta1 0.99, eps 1e-4, summed loss), std '
                        'parameterisation and Glorot weights train this model 1.4 nats worse in test -ELBO over passes '
                        '281-364, with fewer active units (17 + 4; the paper: 16 + 5; ours: 20 + 7): '
                        'experiments/burda_mnist/README.md, its last section'),
}
FIGURES = ('test/nll_iw', 'test/neg_elbo', 'test/recon', 'test/kl', 'test/active_units', 'epoch',
           'eval/iw_samples')
DEFENSIVE = ('standard_nll', 'defensive_nll', 'mean_difference', 'difference_standard_error', 'largest_differences')
MARKERS = ('<!-- published tables: written by experiments/published/collect.py --write -->',
           '<!-- end of the published tables -->')


def seed_record(workdir):
  """A seed's figures from its results.json, or how far it got, from its metrics.jsonl."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    epochs = {r['epoch']: r for r in map(json.loads, f)}  # The last record of an epoch trained again on resume.
  seconds = sum(r['seconds'] for r in epochs.values())
  results = os.path.join(workdir, 'results.json')
  if os.path.exists(results):
    with open(results) as f:
      r = json.load(f)
    record = {'finished': True, 'stopped_at_epoch': max(epochs), 'training_seconds': round(seconds),
              **{k: r[k] for k in FIGURES}}
    defensive = os.path.join(workdir, 'defensive.json')  # defensive.py's, for the rows with more than one level.
    if os.path.exists(defensive):
      with open(defensive) as f:
        d = json.load(f)
      record['defensive'] = {k: d[k] for k in DEFENSIVE}
      per_image = np.load(os.path.join(workdir, 'defensive_per_image.npz'))
      diff = np.delete(per_image['defensive'].astype(np.float64) - per_image['standard'],
                       d['largest_differences'][0]['image'])
      record['defensive']['without_largest'] = {
          'mean_difference': diff.mean(), 'difference_standard_error': diff.std(ddof=1) / np.sqrt(len(diff))}
    return record
  scored = [r for r in epochs.values() if 'validation/neg_elbo' in r]
  record = {'finished': False, 'reached_epoch': max(epochs, default=0), 'training_seconds': round(seconds)}
  if scored:
    best = min(scored, key=lambda r: r['validation/neg_elbo'])
    record.update({'best_validation_epoch': best['epoch'], 'best_validation/neg_elbo': best['validation/neg_elbo']})
  return record


def seed_folders(name, folders):
  """{seed: workdir} of a row: ROWS' folders, or `<name>_seed<N>/` here that have records."""
  if folders:
    return {seed: os.path.normpath(os.path.join(HERE, path)) for seed, path in folders.items()}
  found = {}
  for entry in sorted(os.listdir(HERE)):
    suffix = entry[len(name) + 5:]
    if entry.startswith(f'{name}_seed') and suffix.isdigit():
      if os.path.exists(os.path.join(HERE, entry, 'metrics.jsonl')):
        found[int(suffix)] = os.path.join(HERE, entry)
  return found


def command(config, workdir, seed):
  seed_flag = f' --config.seed={seed}' if seed else ''
  return f'.venv/bin/python run.py --config={config} --workdir={os.path.relpath(workdir, ROOT)}{seed_flag}'


def row(name, table, config, mean, std, machine, folders):
  workdirs = seed_folders(name, folders)
  seeds = {seed: seed_record(path) for seed, path in workdirs.items()}
  out = {'table': table, 'config': config, 'published': {'mean': mean, 'std': std}, 'seeds': seeds,
         'machine': machine}
  finished = [s for s in seeds.values() if s['finished']]
  if finished:
    for key in FIGURES[:5]:
      values = np.array([s[key] for s in finished], dtype=float)
      out[key] = {'mean': values.mean(), 'std': values.std(ddof=1) if len(values) > 1 else None, 'n': len(values)}
    out['difference'] = out['test/nll_iw']['mean'] - mean
  if config is None:
    out['next'] = 'not built yet'
  else:
    unfinished = [seed for seed, s in seeds.items() if not s['finished']]
    if unfinished or not seeds:
      seed = min(unfinished) if unfinished else 0
      out['next'] = command(config, workdirs.get(seed, os.path.join(HERE, f'{name}_seed{seed}')), seed)
  return out


def markdown(results, table, commands=True):
  """The table's markdown: ours against published, seeds, training time, machine; with `commands`, the command of
  each unfinished row."""
  lines = [f'Source: {TABLES[table]}.', '',
           '| row | config | published | ours | seeds | training time | machine |', '|---|---|---|---|---|---|---|']
  for name, r in results['rows'].items():
    if r['table'] != table:
      continue
    published = f'{r["published"]["mean"]:.2f}' + (f' +- {r["published"]["std"]:.2f}' if r['published']['std']
                                                    else '')
    if 'test/nll_iw' in r:
      nll = r['test/nll_iw']
      ours = f'**{nll["mean"]:.2f}**' + (f' +- {nll["std"]:.2f}' if nll['std'] is not None else '')
    else:
      ours = 'running' if r['seeds'] else 'not run'
    seeds = '; '.join(f'{seed}: ' + (f'{s["test/nll_iw"]:.2f}' if s['finished'] else f'epoch {s["reached_epoch"]}')
                      for seed, s in sorted(r['seeds'].items())) or '-'
    hours = sum(s['training_seconds'] for s in r['seeds'].values()) / 3600
    config = f'`{r["config"]}`' if r['config'] else 'not built yet'
    time = f'{hours:.1f} h' if r['seeds'] else '-'
    lines.append(f'| {name} | {config} | {published} | {ours} | {seeds} | {time} | '
                 f'{r["machine"] if r["seeds"] else "-"} |')
  gaps = [f'- {name}: {abs(r["difference"]):.2f} {"below" if r["difference"] < 0 else "above"} the paper. '
          f'{GAPS[name]}.' for name, r in results['rows'].items()
          if r['table'] == table and name in GAPS and 'test/nll_iw' in r]
  lines += ['', 'Rows more than 0.5 nats from the published figure:', ''] + gaps if gaps else []
  lines += defensive_notes(results, table)
  unfinished = [(name, r['next']) for name, r in results['rows'].items() if r['table'] == table and 'next' in r]
  if unfinished and commands:
    lines += ['', 'To finish (each command resumes where its run stopped):', '']
    lines += [f'- {name}: ' + (f'`{next_}`' if next_.startswith('.venv') else next_) for name, next_ in unfinished]
  return '\n'.join(lines)


def defensive_notes(results, table):
  """Below the table, the rows' two estimates from defensive.py: the papers' (the table's figure) and the defensive
  mixture's, both from 5000 draws per image, their mean difference with its standard error (paired, over the test
  images), and the same without the image that differs most: one image can carry the whole difference, and its
  standard error with it."""
  notes = []
  for name, r in results['rows'].items():
    for seed, s in sorted(r['seeds'].items()):
      d = s.get('defensive')
      if r['table'] != table or not d:
        continue
      verdict = 'more than' if abs(d['mean_difference']) > d['difference_standard_error'] else 'within'
      worst = d['largest_differences'][0]
      notes.append(f'- {name}, seed {seed}: standard {d["standard_nll"]:.2f}, defensive {d["defensive_nll"]:.2f}: '
                   f'defensive minus standard {d["mean_difference"]:+.3f} +- {d["difference_standard_error"]:.3f} '
                   f'({verdict} its standard error). Test image {worst["image"]} differs most, '
                   f'{worst["standard"]:.1f} against {worst["defensive"]:.1f} nats; without it '
                   f'{d["without_largest"]["mean_difference"]:+.4f} +- '
                   f'{d["without_largest"]["difference_standard_error"]:.4f}.')
  if not notes:
    return []
  return ['', 'The rows with two stochastic levels, estimated again by `experiments/published/defensive.py` '
          '(5000 draws per image): the papers\' standard estimate (the table keeps its own evaluation\'s) and the '
          'defensive mixture, a fifth of the draws from the prior (docs/outputs.md). Standard errors paired over '
          'the test images:', ''] + notes


def write_between_markers(path, text):
  with open(path) as f:
    content = f.read()
  pattern = re.compile(re.escape(MARKERS[0]) + '.*?' + re.escape(MARKERS[1]), re.S)
  if not pattern.search(content):
    sys.exit(f'{path}: no "{MARKERS[0]}" ... "{MARKERS[1]}" block to write the tables into')
  with open(path, 'w') as f:
    f.write(pattern.sub(lambda _: f'{MARKERS[0]}\n{text}\n{MARKERS[1]}', content))


def main(write):
  results = {'tables': TABLES, 'rows': {name: row(name, *spec) for name, spec in ROWS.items()}}
  tables = '\n\n'.join(markdown(results, table) for table in TABLES)
  print(tables)
  if write:
    with open(os.path.join(HERE, 'results.json'), 'w') as f:
      json.dump(results, f, indent=1, sort_keys=True)
    write_between_markers(os.path.join(HERE, 'README.md'), tables)
    write_between_markers(os.path.join(ROOT, 'README.md'), '\n\n'.join(
        markdown(results, table, commands=False) for table in TABLES) + '\n\nThe command that finishes each row: '
        '[experiments/published/README.md](experiments/published/README.md).')


if __name__ == '__main__':
  if sys.argv[1:] not in ([], ['--write']):
    sys.exit(f'usage: {sys.argv[0]} [--write]')
  main(write=sys.argv[1:] == ['--write'])
