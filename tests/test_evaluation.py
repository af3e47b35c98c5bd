"""A finished run's results, figures and report; the IW bound's order on a trained model."""
import math
import os

import matplotlib.image
import numpy as np
import pytest
from scipy import stats

import vae
from vae import data, evaluation, figures
from conftest import read_json

FIGURES = ('reconstructions', 'originals_vs_reconstructions', 'samples', 'traversal', 'manifold', 'latent_scatter',
           'learning_curves', 'interpolation', 'offsets')


def test_results_hold_every_metric(trained):
  results = read_json(os.path.join(trained, 'results.json'))
  for key in ('test/neg_elbo', 'test/recon', 'test/kl', 'test/nll_iw', 'test/active_units', 'latent/kmeans_acc',
              'latent/kmeans_nmi', 'latent/linear_probe_acc'):
    assert math.isfinite(results[key]), key
  assert results['eval/iw_samples'] == 20
  # The IW estimate is a tighter bound than the single-sample ELBO (by far more than its noise here).
  assert results['test/nll_iw'] < results['test/neg_elbo']
  assert len(results['test/kl_per_dim']) == 128
  assert sum(results['test/kl_per_dim']) == pytest.approx(results['test/kl'], rel=1e-3)
  assert 0 <= results['test/active_units'] <= 128
  assert 0.1 <= results['latent/kmeans_acc'] <= 1 and 0 <= results['latent/kmeans_nmi'] <= 1


@pytest.mark.parametrize('name', FIGURES)
def test_figure_written(trained, name):
  path = os.path.join(trained, 'figures', f'{name}.png')
  image = matplotlib.image.imread(path)
  assert image.ndim == 3 and image[..., :3].std() > 0.01  # Not blank.
  if name in figures.SIZES:
    assert image.shape[1::-1] == figures.SIZES[name]


def test_report_shows_metrics_and_figures(trained):
  with open(os.path.join(trained, 'report.md')) as f:
    report = f.read()
  assert '`test/nll_iw`' in report and '`latent/kmeans_acc`' in report
  for name in FIGURES:
    assert f'(figures/{name}.png)' in report


def test_iw_bound_rises_with_samples(trained):
  """K = 1 has the ELBO's expectation; the bound rises (weakly) with K on a trained model."""
  model = vae.load(trained)
  x = data.flat(data.load('fashion_mnist').test_images[:100])
  single = np.mean([model.log_likelihood(x, 1, seed=s).mean() for s in range(10)])
  # The ELBO of the same images by an independent route: numpy draws, decoded pixels, the analytic KL.
  mean, logvar = (a.astype(np.float64) for a in model.encode(x))
  z = mean + np.exp(0.5 * logvar) * np.random.default_rng(1).normal(size=(10,) + mean.shape)
  p = np.clip(model.decode(z.reshape(-1, 128).astype(np.float32)).reshape(10, 100, 784), 1e-7, 1 - 1e-7)
  pixels = x.astype(np.float64) / 255
  recon = -np.mean(np.sum(pixels * np.log(p) + (1 - pixels) * np.log1p(-p), axis=-1))
  kl = np.mean(0.5 * np.sum(np.exp(logvar) + mean ** 2 - 1 - logvar, axis=-1))
  assert single == pytest.approx(-(recon + kl), abs=1.5)  # 1000 draws of each: the MC error is well under this.
  bounds = [np.mean([model.log_likelihood(x, k, seed=s).mean() for s in range(3)]) for k in (1, 10, 100)]
  assert bounds[0] < bounds[1] < bounds[2]


def test_offsets_figure_decodes_the_shifted_code(trained, tmp_path):
  """figures/offsets.png is the first test image's posterior mean + each offset, decoded: redrawn here."""
  from vae import evaluation  # pylint: disable=g-import-not-at-top
  model = vae.load(trained)
  x = data.flat(data.load('fashion_mnist').test_images[:1])
  mean = model.transform(x)[0]
  np.testing.assert_allclose(evaluation.OFFSETS, np.arange(-0.5, 2.751, 0.25))
  decoded = np.stack([model.decode((mean + v)[None])[0] for v in evaluation.OFFSETS])
  path = str(tmp_path / 'offsets.png')
  figures.offsets(decoded[..., None], evaluation.OFFSETS, path)  # (S, 28, 28, 1): H, W, C.
  # The PNGs hold 8-bit pixels: decodes that differ by float32 rounding (each code decoded alone here, 14 at once
  # there) may land on either side of a level, so a pixel may differ by one level (1/255), never more.
  drawn, saved = (matplotlib.image.imread(p) for p in (path, os.path.join(trained, 'figures', 'offsets.png')))
  np.testing.assert_allclose(drawn, saved, rtol=0, atol=1 / 255 + 1e-6)
  assert np.mean(drawn != saved) < 0.01


def test_results_are_kept_under_keys_added_after_them(trained):
  """results.json written before a config key existed still counts as the evaluation of the same config; a changed
  value, or a key the config no longer has, does not."""
  import copy  # pylint: disable=g-import-not-at-top
  from vae import evaluation  # pylint: disable=g-import-not-at-top
  results = read_json(os.path.join(trained, 'results.json'))
  config = vae.load(trained).config
  assert evaluation.evaluated_under(results, config)
  older = copy.deepcopy(results)
  del older['config']['model']['prior'], older['config']['eval']['manifold_extent']
  assert evaluation.evaluated_under(older, config)
  config.eval.manifold_extent = 3.0  # The key's absence meant 0.0: other figures now.
  assert not evaluation.evaluated_under(older, config) and not evaluation.evaluated_under(results, config)
  config.eval.manifold_extent = 0.0
  changed = copy.deepcopy(results)
  changed['config']['train']['beta'] = 0.5
  assert not evaluation.evaluated_under(changed, config)
  gone = copy.deepcopy(results)
  gone['config']['train']['dropout'] = 0.1
  assert not evaluation.evaluated_under(gone, config)
  assert not evaluation.evaluated_under({'epoch': 2}, config)


def test_prior_quantiles_of_one_gaussian_are_scipys():
  means, logvars = np.array([[0.0, 1.5, -2.0]]), np.array([[0.0, -1.0, 2.0]])
  probs = np.linspace(0.001, 0.999, 13)
  got = evaluation.prior_quantiles((means, logvars), probs, [2, 0])
  want = stats.norm.ppf(probs[None], means[0, [2, 0], None], np.exp(0.5 * logvars[0, [2, 0], None]))
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_prior_quantiles_of_a_mixture_invert_its_cdf_and_match_samples():
  rng = np.random.default_rng(3)
  means, logvars = rng.normal(size=(3, 2)) * 2, rng.normal(size=(3, 2)) - 1  # Narrow, well-separated components.
  probs = stats.norm.cdf(np.linspace(-3, 3, 11))
  got = evaluation.prior_quantiles((means, logvars), probs, [1])[0]
  cdf = np.mean(stats.norm.cdf(got[:, None], means[:, 1], np.exp(0.5 * logvars[:, 1])), axis=1)
  np.testing.assert_allclose(cdf, probs, atol=1e-12)
  component = rng.integers(0, 3, 400_000)  # The mixture sampled directly: a component, then its Gaussian.
  draws = means[component, 1] + np.exp(0.5 * logvars[component, 1]) * rng.standard_normal(400_000)
  empirical = np.mean(draws[:, None] <= got, axis=0)  # Binomial: within 5 standard errors of probs.
  np.testing.assert_array_less(np.abs(empirical - probs), 5 * np.sqrt(probs * (1 - probs) / len(draws)))
