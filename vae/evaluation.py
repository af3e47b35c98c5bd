"""What a finished run reports: likelihood and latent-space metrics, the figures, and report.md.

Everything here works through the public `api.Model`, so a run's figures are exactly what a user of
`vae.load(workdir)` would get.
"""
import json
import os

import numpy as np
from scipy import stats
from sklearn.decomposition import PCA

from vae import figures, latent_metrics, models, records

TRAVERSAL_VALUES = np.linspace(-3.0, 3.0, 11)  # Standard-normal scores of prior quantiles: z itself under N(0, I).
MAX_TRAVERSAL_DIMS = 10
INTERPOLATION_STEPS = 10
# The PyTorch Fashion-MNIST write-up's (004) new clothes: the first test image's code plus each offset on every
# dimension, -0.5 to 2.75 in steps of 0.25.
OFFSETS = np.linspace(-0.5, 2.75, 14)
SKIPPED = 'k-means and probe accuracy, and the class colours of the figures: the data have no labels'
LOCATION_KEYS = ('source', 'dir')  # Of config.data: where the images were read from, not which (test_sources.py).


def evaluate(model, config, dataset, test_images, train_images, test_metrics, history, workdir):
  """All metrics and figures of `model`; writes results.json, figures/ and report.md to `workdir`.

  `test_images` / `train_images` are uint8 (N, H*W*C) as the model was evaluated / trained on them (binarized once
  for dynamically binarized runs); `test_metrics` are the single-sample ELBO metrics of the test set; `history`
  the records of metrics.jsonl. Under a discrete (8-bit) likelihood, bits per dimension stand beside the nats;
  without labels, what needs them (k-means and probe accuracy) is skipped and results.json says so.
  """
  seed = config.seed
  results = dict(test_metrics)
  results['test/nll_iw'] = float(-np.mean(model.log_likelihood(
      test_images, config.eval.iw_samples, seed=seed, progress=f'IW NLL ({config.eval.iw_samples} samples)')))
  results['eval/iw_samples'] = config.eval.iw_samples
  defensive = config.eval.get('defensive_fraction', 0.0)
  if defensive:  # Beside the standard estimate, not instead: the papers' tables report that one.
    results['test/nll_iw_defensive'] = float(-np.mean(model.log_likelihood(
        test_images, config.eval.iw_samples, seed=seed, progress=f'defensive IW NLL ({config.eval.iw_samples} samples)',
        defensive=defensive)))
  per_bit = models.bits_per_dim(config.model)
  if per_bit:
    results['test/neg_elbo_bpd'] = results['test/neg_elbo'] * per_bit
    results['test/nll_iw_bpd'] = results['test/nll_iw'] * per_bit
    if defensive:
      results['test/nll_iw_defensive_bpd'] = results['test/nll_iw_defensive'] * per_bit
  mean, logvar = model.encode(test_images)
  kl_per_dim = latent_metrics.kl_per_dim(mean, logvar, model.prior(), seed=seed)
  results['test/active_units'] = latent_metrics.active_units(mean)
  results['test/kl_per_dim'] = [float(v) for v in kl_per_dim]
  if dataset.has_labels:
    for name, value in latent_metrics.kmeans_scores(mean, dataset.test_labels, seed=seed).items():
      results[f'latent/{name}'] = float(value)
    results['latent/linear_probe_acc'] = float(latent_metrics.linear_probe_acc(
        model.transform(train_images), dataset.train_labels, mean, dataset.test_labels, seed=seed))
  else:
    results['latent/skipped'] = SKIPPED

  folder = os.path.join(workdir, 'figures')
  os.makedirs(folder, exist_ok=True)
  paths = _figures(model, config, dataset, test_images, mean, kl_per_dim, history, folder)
  records.write_text(os.path.join(workdir, 'report.md'), report(config, results, paths, workdir))
  results['config'] = evaluated_config(config)  # What it was computed under: a rerun keeps it only if the same.
  records.write_json(os.path.join(workdir, 'results.json'), results)  # Last: its presence means all is written.
  return results


def evaluated_config(config):
  """`config` as a dict, less where the data was read from: results.json's record of what it was computed under."""
  settings = json.loads(config.to_json())
  for key in LOCATION_KEYS:
    settings['data'].pop(key, None)
  settings['model'].pop('conv_impl', None)  # How the convolutions were computed: the same function either way.
  settings['train'].pop('scan_unroll', None)  # How the epoch's loop was compiled: the same steps either way.
  return settings


def evaluated_under(results, config):
  """Whether results.json's `results` were computed under `config`: equal on every key, where a key its record
  lacks (records.ADDED_KEYS) counts as the value its absence meant."""
  if not isinstance(results.get('config'), dict) or not results['config']:
    return False
  saved, current = records.flatten(results['config']), records.flatten(evaluated_config(config))
  saved = {**{k: v for k, v in records.ADDED_KEYS.items() if k in current}, **saved}
  return saved == current


def _figures(model, config, dataset, test_images, mean, kl_per_dim, history, folder):
  """Writes every figure; returns {name: path}."""
  paths = {name: os.path.join(folder, f'{name}.png') for name in (
      'reconstructions', 'originals_vs_reconstructions', 'samples', 'traversal', 'manifold', 'latent_scatter',
      'learning_curves', 'interpolation', 'offsets')}
  shape = model.image_shape
  images = lambda x, *lead: np.asarray(x).reshape(lead + shape)  # Figures draw (..., H, W, C) in [0, 1].
  originals = images(test_images[:2000].astype(np.float32) / 255.0, -1)
  recons = images(model.decode(mean[:2000]), -1)  # model.reconstruct, without encoding the images again.
  labels = dataset.test_labels[:2000]
  figures.reconstructions(originals, recons, labels, dataset.class_names, paths['reconstructions'])
  figures.originals_vs_reconstructions(originals, recons, paths['originals_vs_reconstructions'])
  figures.samples(images(model.generate(n=100, seed=config.seed), -1), paths['samples'])

  latent_dim = mean.shape[1]
  by_kl = np.argsort(-kl_per_dim, kind='stable')  # The most informative dimensions first.
  dims = by_kl[:MAX_TRAVERSAL_DIMS]
  prior = model.prior()
  z = np.repeat(mean[:1], len(dims) * len(TRAVERSAL_VALUES), axis=0).reshape(len(dims), len(TRAVERSAL_VALUES), -1)
  z[np.arange(len(dims)), :, dims] = prior_quantiles(prior, stats.norm.cdf(TRAVERSAL_VALUES), dims)
  figures.traversal(images(model.decode(z.reshape(-1, latent_dim)), len(dims), len(TRAVERSAL_VALUES)),
                    TRAVERSAL_VALUES, dims, paths['traversal'],
                    title='Latent traversals at prior quantiles (columns: standard-normal scores)')

  n = config.eval.manifold_size
  extent = config.eval.get('manifold_extent', 0.0)
  pair = (0, 1) if latent_dim == 2 else tuple(sorted(by_kl[:2]))
  # Equal prior mass between neighbouring rows and columns, or a linear grid (the write-ups' -3..3 and -2..2).
  grids = (np.tile(np.linspace(-extent, extent, n), (2, 1)) if extent
           else prior_quantiles(prior, np.linspace(0.05, 0.95, n), pair))
  z = np.repeat(mean[:1], n * n, axis=0).reshape(n, n, -1)
  z[:, :, pair[0]] = grids[0][None, :]
  z[:, :, pair[1]] = grids[1][:, None]  # figures.manifold draws row 0 at the bottom.
  figures.manifold(images(model.decode(z.reshape(-1, latent_dim)), n, n), grids, pair, paths['manifold'])

  if latent_dim == 2:
    figures.latent_scatter(mean, dataset.test_labels, dataset.class_names, paths['latent_scatter'])
  else:
    points = PCA(n_components=2, random_state=config.seed).fit_transform(mean)
    figures.latent_scatter(points, dataset.test_labels, dataset.class_names, paths['latent_scatter'],
                           xlabel='PC 1 of the latent means', ylabel='PC 2',
                           title=f'Test latent means ({latent_dim}-D, PCA to 2-D)')
  figures.learning_curves(history, paths['learning_curves'])

  figures.offsets(images(model.decode(mean[:1] + OFFSETS[:, None]), -1), OFFSETS, paths['offsets'])

  ends = _interpolation_pairs(dataset.test_labels)
  t = np.linspace(0.0, 1.0, INTERPOLATION_STEPS)[None, :, None]
  z = (1 - t) * mean[ends[:, 0]][:, None] + t * mean[ends[:, 1]][:, None]
  figures.interpolation(images(model.decode(z.reshape(-1, latent_dim)), len(ends), INTERPOLATION_STEPS),
                        paths['interpolation'])
  return paths


def prior_quantiles(prior, probs, dims):
  """(len(dims), len(probs)): the `probs` quantiles of each coordinate in `dims` under the prior's marginal.

  `prior` is (means, logvars), (K, D): a uniform mixture, whose 1-D marginals are mixtures of K Gaussians, so the
  quantiles are found by bisection on the mixture's CDF; under N(0, I) they are scipy's norm.ppf(probs) to ~1e-14.
  """
  means, stds = (np.asarray(a, np.float64)[:, list(dims)].T[:, :, None] for a in (prior[0], np.exp(0.5 * prior[1])))
  probs = np.asarray(probs, np.float64)
  shape = (len(means), len(probs))
  lo, hi = np.full(shape, means.min() - 40 * stds.max()), np.full(shape, means.max() + 40 * stds.max())
  for _ in range(100):  # Each halves the bracket: 100 take it below float64's spacing.
    mid = 0.5 * (lo + hi)
    below = np.mean(stats.norm.cdf((mid[:, None, :] - means) / stds), axis=1) < probs
    lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
  return 0.5 * (lo + hi)


def _interpolation_pairs(labels, num_pairs=5):
  """Pairs of test-image indices of different classes (same class only if there is one), first images first."""
  classes = np.unique(labels)
  firsts = [int(np.flatnonzero(labels == c)[0]) for c in classes]
  seconds = [int(np.flatnonzero(labels == c)[-1]) for c in classes]
  if len(classes) == 1:
    return np.array([[firsts[0], seconds[0]]])
  return np.array([[firsts[i % len(classes)], seconds[(i + 1) % len(classes)]] for i in range(num_pairs)])


def report(config, results, paths, workdir):
  """report.md: what was trained, the metrics table and the figures inline."""
  m = config.model
  shape = ' x '.join(map(str, models.image_shape(m)))
  units = 'nats per image (`_bpd`: bits per dimension, NLL / (H W C ln 2))' if models.bits_per_dim(m) else \
      'nats per image'
  lines = [f'# {config.data.name}: {m.name} VAE, latent {m.latent_dim}, {m.likelihood} likelihood', '',
           f'Images {shape}. Epoch {results.get("epoch")}, step {results.get("step")}. All figures in {units}.', '']
  if 'latent/skipped' in results:
    lines += [f'Skipped: {results["latent/skipped"]}.', '']
  lines += ['| metric | value |', '|---|---|']
  for key, value in results.items():
    if key not in ('test/kl_per_dim', 'config', 'latent/skipped'):  # The config has its own section below.
      lines.append(f'| `{key}` | {value:.4g} |' if isinstance(value, float) else f'| `{key}` | {value} |')
  lines += ['', '## Figures', '']
  for name, path in paths.items():
    lines += [f'### {name.replace("_", " ")}', '', f'![{name}]({os.path.relpath(path, workdir)})', '']
  lines += ['## Config', '', '```json', json.dumps(json.loads(config.to_json()), indent=2, sort_keys=True), '```', '']
  return '\n'.join(lines)
