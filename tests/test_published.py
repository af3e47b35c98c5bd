"""The committed parameters of two published rows (experiments/published/), scored by this package and by a float64
numpy transcription of the VampPrior code's networks (Tomczak & Welling, 2018; jmtomczak/vae_vampprior,
models/VAE.py and HVAE_2level.py, layer by layer as issue 36 lists them): the one-level gated VAE under the
VampPrior (mnist_vamp, test NLL 82.25) and the two-level HVAE (mnist_hvae, 82.41). The numbers these rows report
are made of these log-weights, so a change to the networks, the priors or the log-weight that moved them fails
here (dropping the logits' clamp or the pseudo-inputs' clip does: 5e-3 and 0.8 nats)."""
import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import vae
from vae import data, likelihoods, losses, models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGIT_BOUND = np.log((1 - 1e-5) / 1e-5)  # Their clamp of the Bernoulli probabilities to [1e-5, 1 - 1e-5].


def gated(p, x):  # GatedDense: h(x) * sigmoid(g(x)).
  return (x @ p['h']['kernel'] + p['h']['bias']) * special.expit(x @ p['g']['kernel'] + p['g']['bias'])


def linear(p, x):
  return x @ p['kernel'] + p['bias']


def gaussian_head(p, x):  # Gated layers, then the mean and the log-variance through Hardtanh(-6, 2).
  for i in range(len(p['layers'])):
    x = gated(p['layers'][i], x)
  return linear(p['mean'], x), np.clip(linear(p['logvar'], x), -6.0, 2.0)


def logits_head(p, h):  # Gated layers, then 784 logits, clamped.
  for i in range(len(p['layers'])):
    h = gated(p['layers'][i], h)
  return np.clip(linear(p['out'], h), -LOGIT_BOUND, LOGIT_BOUND)


def log_normal(z, mean, logvar):
  return stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(-1)


def bernoulli(logits, x):
  return np.sum(x * -np.logaddexp(0, -logits) + (1 - x) * -np.logaddexp(0, logits), -1)


def vamp_vae_log_weights(p, x, eps):
  """log p(x|z) + log p(z) - log q(z|x), z = mean + std * eps, p(z) the mean of the posteriors of the pseudo-inputs
  clipped to [0, 1]."""
  mean, logvar = gaussian_head(p['encoder'], x)
  z = mean + np.exp(0.5 * logvar) * eps
  means, logvars = gaussian_head(p['encoder'], np.clip(p['pseudo_inputs'], 0, 1))
  log_prior = special.logsumexp(log_normal(z[..., None, :], means, logvars), axis=-1) - np.log(len(means))
  return bernoulli(logits_head(p['decoder'], z), x) + log_prior - log_normal(z, mean, logvar)


def hvae_log_weights(p, x, eps):
  """q(z2|x) q(z1|x, z2), p(z2) = N(0, I) p(z1|z2) p(x|z1, z2); eps holds z2's noise, then z1's."""
  mean2, logvar2 = gaussian_head(p['encoder'], x)
  z2 = mean2 + np.exp(0.5 * logvar2) * eps[..., :40]
  features = np.concatenate(np.broadcast_arrays(gated(p['q_z1_x'], x), gated(p['q_z1_z2'], z2)), -1)
  mean1, logvar1 = gaussian_head(p['q_z1'], features)
  z1 = mean1 + np.exp(0.5 * logvar1) * eps[..., 40:]
  logits = logits_head(p['p_x'], np.concatenate([gated(p['p_x_z1'], z1), gated(p['p_x_z2'], z2)], -1))
  return (bernoulli(logits, x) + stats.norm.logpdf(z2).sum(-1) + log_normal(z1, *gaussian_head(p['p_z1'], z2))
          - log_normal(z2, mean2, logvar2) - log_normal(z1, mean1, logvar1))


ROWS = {'mnist_vamp_seed0': (vamp_vae_log_weights, 40), 'mnist_hvae_seed0': (hvae_log_weights, 80)}


@pytest.fixture(scope='module')
def digits():
  """Ten MNIST test digits, dynamically binarized by numpy (the rows' protocol)."""
  images = data.flat(data.load('mnist').test_images[:10]).astype(np.float64) / 255
  return (np.random.default_rng(0).uniform(size=images.shape) < images).astype(np.float64)


@pytest.mark.parametrize('row', sorted(ROWS))
def test_published_parameters_score_as_the_papers_networks(row, digits):
  """Given the same noise, the log-weights every estimate of these rows is made of (losses.log_weight of the
  model's draw: the -ELBO is their mean, the IW NLL their log-mean-exp, tests/test_iwae.py) equal numpy's. float32
  against float64: pre-activations of at most 784 terms and sums of 784 pixels put the difference near 1e-4 nats
  (3e-5 measured on a CPU); 2e-3 bounds it with margin on any backend at float32 matmuls (tests/conftest.py)."""
  reference, noise_size = ROWS[row]
  model = vae.load(os.path.join(ROOT, 'experiments', 'published', row))
  params = jax.tree.map(lambda a: np.asarray(a, np.float64), model.params)
  eps = np.random.default_rng(1).standard_normal((3, 10, noise_size))
  x = jnp.asarray(digits, jnp.float32)
  inferred = models.apply(model.graphdef, model.params, 'infer', x)
  logits, levels = models.apply(model.graphdef, model.params, 'draw', inferred, jnp.asarray(eps, jnp.float32))
  ours = np.asarray(losses.log_weight(likelihoods.Bernoulli().log_prob(logits, x), levels))
  theirs = reference(params, digits, eps)
  np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-3)
  assert 20 < -np.mean(theirs) < 200  # Nats of a digit's log-weight: the rows' test NLLs are 82.25 and 82.41.


def hvae_defensive_log_weights(p, x, eps, fraction):
  """The defensive mixture's log-weights of prior draws: z2 ~ N(0, I), z1 ~ p(z1|z2) from eps (z2's noise, then
  z1's), weighed by p(x, z) / ((1 - fraction) q(z|x) + fraction p(z))."""
  z2 = eps[..., :40]
  p_mean1, p_logvar1 = gaussian_head(p['p_z1'], z2)
  z1 = p_mean1 + np.exp(0.5 * p_logvar1) * eps[..., 40:]
  mean2, logvar2 = gaussian_head(p['encoder'], x)
  features = np.concatenate(np.broadcast_arrays(gated(p['q_z1_x'], x), gated(p['q_z1_z2'], z2)), -1)
  mean1, logvar1 = gaussian_head(p['q_z1'], features)
  log_p = stats.norm.logpdf(z2).sum(-1) + log_normal(z1, p_mean1, p_logvar1)
  log_q = log_normal(z2, mean2, logvar2) + log_normal(z1, mean1, logvar1)
  logits = logits_head(p['p_x'], np.concatenate([gated(p['p_x_z1'], z1), gated(p['p_x_z2'], z2)], -1))
  return bernoulli(logits, x) + log_p - np.logaddexp(np.log1p(-fraction) + log_q, np.log(fraction) + log_p)


def test_defensive_prior_draws_score_as_the_papers_networks(digits):
  """The two-level model's prior draws (models' `prior_draw`: z2 from the prior, z1 from p(z1|z2), each level
  scored under q too) and their defensive log-weights equal numpy's for the same noise (tolerance as above; the
  weights are near log p(x|z) here, hundreds of nats, as prior draws explain a digit poorly)."""
  model = vae.load(os.path.join(ROOT, 'experiments', 'published', 'mnist_hvae_seed0'))
  params = jax.tree.map(lambda a: np.asarray(a, np.float64), model.params)
  eps = np.random.default_rng(2).standard_normal((3, 10, 80))
  x = jnp.asarray(digits, jnp.float32)
  inferred = models.apply(model.graphdef, model.params, 'infer', x)
  logits, levels = models.apply(model.graphdef, model.params, 'prior_draw', inferred, jnp.asarray(eps, jnp.float32),
                                jnp.zeros((3, 10)))
  ours = np.asarray(losses.defensive_log_weight(likelihoods.Bernoulli().log_prob(logits, x), levels, 0.25))
  np.testing.assert_allclose(ours, hvae_defensive_log_weights(params, digits, eps, 0.25), rtol=1e-5, atol=2e-3)
  # The whole estimate through vae.load's API: for a trained model prior draws add almost nothing, so the defensive
  # estimate is the standard one's from its 750 q draws; both are log-mean-exps of heavy-tailed weights (a digit's
  # estimates from 1000 draws of two keys differ by up to a few nats), so only their means are compared, loosely.
  standard = model.log_likelihood(digits, num_samples=1000, seed=0)
  defensive = model.log_likelihood(digits, num_samples=1000, seed=0, defensive=0.25)
  assert np.all(np.isfinite(defensive)) and abs(np.mean(defensive) - np.mean(standard)) < 2.0


def test_collect_notes_both_estimates_and_the_difference_without_the_worst_image(tmp_path):
  """collect.py's note below a table: defensive.py's two means, their paired difference +- its standard error, and
  the same without the image that differs most (one image can carry a row's whole difference, and the standard
  error with it), against the figures computed here from the per-image estimates."""
  spec = importlib.util.spec_from_file_location('collect', os.path.join(ROOT, 'experiments/published/collect.py'))
  collect = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(collect)
  rng = np.random.default_rng(0)
  standard = rng.normal(226.0, 30.0, 1000).astype(np.float32)
  defensive = standard + rng.normal(0.0, 0.01, 1000).astype(np.float32)
  standard[37] = 5500.0  # The image whose q misses its posterior: the standard estimate breaks there.
  np.savez(tmp_path / 'defensive_per_image.npz', standard=standard, defensive=defensive)
  diff = defensive.astype(np.float64) - standard
  with open(tmp_path / 'defensive.json', 'w') as f:
    json.dump({'standard_nll': float(standard.mean()), 'defensive_nll': float(defensive.mean()),
               'mean_difference': diff.mean(), 'difference_standard_error': diff.std(ddof=1) / np.sqrt(1000),
               'largest_differences': [{'image': 37, 'standard': 5500.0, 'defensive': float(defensive[37])}]}, f)
  with open(tmp_path / 'metrics.jsonl', 'w') as f:
    f.write(json.dumps({'epoch': 1, 'seconds': 10.0}) + '\n')
  with open(tmp_path / 'results.json', 'w') as f:
    json.dump({k: 1.0 for k in collect.FIGURES}, f)
  seed = collect.seed_record(str(tmp_path))
  results = {'rows': {'row': {'table': 'burda', 'seeds': {0: seed}}}}
  note = collect.defensive_notes(results, 'burda')[-1]
  rest = np.delete(diff, 37)
  se = diff.std(ddof=1) / np.sqrt(1000)  # About the mean difference itself: one image's 5274 nats make both.
  verdict = 'more than' if abs(diff.mean()) > se else 'within'
  assert f'defensive minus standard {diff.mean():+.3f} +- {se:.3f} ({verdict} its standard error)' in note
  assert f'without it {rest.mean():+.4f} +- {rest.std(ddof=1) / np.sqrt(999):.4f}.' in note
  assert abs(rest.mean()) < 0.002  # What the defensive estimate agrees to on the other images, by construction.
