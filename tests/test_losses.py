"""Tests of vae/losses.py against closed forms written out by hand, scipy densities and Monte-Carlo estimates."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from vae import likelihoods, losses

D = 784


def _rng(seed=0):
  return np.random.default_rng(seed)


def level(z, mean, logvar, prior):
  """One level, q = N(mean, exp(logvar)) at z, under the mixture `prior` = (means, logvars)."""
  return (losses.Level(z, mean, logvar, losses.Mixture(*prior)),)


def _bernoulli_logpmf_scipy(x, logits):
  """sum over pixels of scipy's Bernoulli logpmf at p = sigmoid(logits), in float64.

  p = sigmoid(l) rounds to 1 for l >~ 37, so where l > 0 it uses Bernoulli(x; p) = Bernoulli(1 - x; 1 - p) with
  1 - p = sigmoid(-l), which stays representable.
  """
  x, logits = np.asarray(x, np.float64), np.asarray(logits, np.float64)
  direct = stats.bernoulli.logpmf(x, special.expit(logits))
  flipped = stats.bernoulli.logpmf(1 - x, special.expit(-logits))
  return np.where(logits > 0, flipped, direct).sum(-1)


# kl_standard_normal.


@pytest.mark.parametrize('mean, logvar', [(0.7, -0.4), (-2.0, 1.3), (0.0, 0.0), (3.0, -6.0)])
def test_kl_1d_matches_hand_closed_form(mean, logvar):
  # KL(N(m, s^2) || N(0, 1)) = -log s + (s^2 + m^2) / 2 - 1/2.
  s = math.exp(0.5 * logvar)
  expected = -math.log(s) + 0.5 * (s * s + mean * mean) - 0.5
  got = losses.kl_standard_normal(jnp.array([mean]), jnp.array([logvar]))
  assert got.shape == ()
  np.testing.assert_allclose(float(got), expected, rtol=1e-5, atol=1e-6)


def test_kl_multivariate_matches_general_gaussian_kl():
  # KL(N(mu0, S0) || N(mu1, S1)) = 1/2 [tr(S1^-1 S0) + (mu1-mu0)^T S1^-1 (mu1-mu0) - k + log det S1 / det S0].
  rng = _rng(1)
  k = 5
  mean = rng.normal(size=(4, k))
  logvar = rng.normal(size=(4, k))
  expected = []
  for m, lv in zip(mean, logvar):
    cov0, cov1 = np.diag(np.exp(lv)), np.eye(k)
    cov1_inv = np.linalg.inv(cov1)
    _, logdet0 = np.linalg.slogdet(cov0)
    _, logdet1 = np.linalg.slogdet(cov1)
    expected.append(0.5 * (np.trace(cov1_inv @ cov0) + m @ cov1_inv @ m - k + logdet1 - logdet0))
  got = losses.kl_standard_normal(jnp.asarray(mean, jnp.float32), jnp.asarray(logvar, jnp.float32))
  assert got.shape == (4,)
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)


def test_kl_is_zero_at_prior_and_positive_elsewhere():
  assert float(losses.kl_standard_normal(jnp.zeros(3), jnp.zeros(3))) == pytest.approx(0.0, abs=1e-7)
  rng = _rng(2)
  kl = losses.kl_standard_normal(jnp.asarray(rng.normal(size=(50, 3))), jnp.asarray(rng.normal(size=(50, 3))))
  assert np.all(np.asarray(kl) > 0)


def test_kl_matches_monte_carlo_estimate():
  # KL = E_q[log q(z) - log p(z)], estimated with scipy densities; tolerance from the MC standard error.
  rng = _rng(3)
  mean = np.array([0.5, -1.2, 2.0])
  logvar = np.array([-0.7, 0.4, -1.5])
  n = 200_000
  std = np.exp(0.5 * logvar)
  z = mean + std * rng.standard_normal((n, 3))
  log_q = stats.multivariate_normal.logpdf(z, mean, np.diag(std**2))
  log_p = stats.multivariate_normal.logpdf(z, np.zeros(3), np.eye(3))
  diff = log_q - log_p
  mc, stderr = diff.mean(), diff.std(ddof=1) / math.sqrt(n)
  got = float(losses.kl_standard_normal(jnp.asarray(mean, jnp.float32), jnp.asarray(logvar, jnp.float32)))
  assert abs(got - mc) < 5 * stderr, (got, mc, stderr)


# Priors: mixtures of diagonal Gaussians (the standard normal is one component, the VampPrior K).


def _mixture_logpdf(z, means, logvars):
  """log (1/K) sum_k N(z; means[k], diag(exp(logvars[k]))) by scipy, in float64."""
  per_component = np.stack([stats.norm.logpdf(z, m, np.exp(0.5 * lv)).sum(-1) for m, lv in zip(means, logvars)])
  return special.logsumexp(per_component, axis=0) - math.log(len(means))


def test_mixture_log_prob_matches_a_direct_mixture():
  rng = _rng(20)
  means, logvars = rng.normal(size=(7, 5)), rng.uniform(-6, 2, size=(7, 5))  # The encoder's bounds.
  z = rng.normal(scale=2.0, size=(3, 4, 5))  # Leading (sample, image) axes, as in the IW estimate.
  got = losses.mixture_log_prob(*(jnp.asarray(a, jnp.float32) for a in (z, means, logvars)))
  assert got.shape == (3, 4)
  np.testing.assert_allclose(np.asarray(got), _mixture_logpdf(z, means, logvars), rtol=1e-5, atol=1e-3)
  # Near a narrow component far from zero, where expanded squares cancel most (VampPrior codes are not centred).
  means, logvars = 5.0 + 3.0 * rng.normal(size=(500, 40)), np.full((500, 40), -6.0)
  z = means[2] + 0.05 * rng.normal(size=(6, 40))
  got = losses.mixture_log_prob(*(jnp.asarray(a, jnp.float32) for a in (z, means, logvars)))
  np.testing.assert_allclose(np.asarray(got), _mixture_logpdf(z, means, logvars), rtol=1e-5, atol=1e-3)


def test_mixture_log_prob_gradients_match_the_closed_form():
  """d/dz, d/dmeans, d/dlogvars of sum_n log p(z_n), against the responsibilities w_nk in float64: d/dz_n =
  -sum_k w_nk (z_n - m_k) / v_k, d/dm_k = sum_n w_nk (z_n - m_k) / v_k, d/dlogvar_k = sum_n w_nk ((z_n - m_k)^2 / v_k
  - 1) / 2 (what the VampPrior's training differentiates through). Second case: codes at narrow components far from
  zero, where an expanded sum of squares cancels (in the log-variances' gradient it fails here)."""
  rng = _rng(21)
  means, logvars = 5.0 + 3.0 * rng.normal(size=(100, 40)), -6.0 + rng.uniform(0, 8, size=(100, 40))
  logvars[:8] = -6.0
  cases = [(rng.normal(size=(4, 3)), rng.normal(size=(6, 3)), rng.uniform(-2, 1, size=(6, 3))),
           (means[rng.integers(0, 8, 50)] + 0.05 * rng.normal(size=(50, 40)), means, logvars)]
  for z, means, logvars in cases:
    got = jax.jit(jax.grad(lambda *a: jnp.sum(losses.mixture_log_prob(*a)), argnums=(0, 1, 2)))(
        *(jnp.asarray(a, jnp.float32) for a in (z, means, logvars)))
    var, diff = np.exp(logvars), z[:, None, :] - means  # (N, K, D)
    log_components = stats.norm.logpdf(z[:, None, :], means, np.sqrt(var)).sum(-1)
    w = np.exp(log_components - special.logsumexp(log_components, axis=1, keepdims=True))[..., None]
    want = (-(w * diff / var).sum(1), (w * diff / var).sum(0), (w * (diff ** 2 / var - 1) / 2).sum(0))
    for g, ref in zip(got, want):
      assert g.shape == ref.shape
      np.testing.assert_allclose(np.asarray(g), ref, rtol=0, atol=1e-4 * np.abs(ref).max())


def test_one_component_mixture_is_its_gaussian():
  rng = _rng(21)
  mean, logvar = rng.normal(size=(1, 4)), rng.normal(size=(1, 4))
  z = rng.normal(size=(10, 4))
  want = stats.multivariate_normal(mean[0], np.diag(np.exp(logvar[0]))).logpdf(z)
  got = losses.mixture_log_prob(*(jnp.asarray(a, jnp.float32) for a in (z, mean, logvar)))
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-4)
  standard = losses.mixture_log_prob(jnp.asarray(z, jnp.float32), jnp.zeros((1, 4)), jnp.zeros((1, 4)))
  np.testing.assert_allclose(np.asarray(standard), stats.multivariate_normal(np.zeros(4)).logpdf(z), rtol=1e-5)


def test_gaussian_kl_matches_the_matrix_formula():
  # KL(N(mu0, S0) || N(mu1, S1)) = 1/2 [tr(S1^-1 S0) + (mu1-mu0)^T S1^-1 (mu1-mu0) - k + log det S1 / det S0].
  rng = _rng(22)
  mean, logvar, prior_mean, prior_logvar = (rng.normal(size=(3, 4)) for _ in range(4))
  want = []
  for m0, lv0, m1, lv1 in zip(mean, logvar, prior_mean, prior_logvar):
    s0, s1_inv = np.diag(np.exp(lv0)), np.diag(np.exp(-lv1))
    want.append(0.5 * (np.trace(s1_inv @ s0) + (m1 - m0) @ s1_inv @ (m1 - m0) - 4 + lv1.sum() - lv0.sum()))
  got = losses.gaussian_kl(*(jnp.asarray(a, jnp.float32) for a in (mean, logvar, prior_mean, prior_logvar)))
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


def test_kl_estimators_under_a_mixture_prior():
  """'sample' is log q(z|x) - log p(z) at z (scipy); 'auto' takes it for K > 1, where 'analytic' has no form; its
  Monte-Carlo mean is the KL E_q[log q - log p] (scipy, numpy's draws)."""
  rng = _rng(23)
  prior = rng.normal(size=(5, 3)), rng.uniform(-2, 1, size=(5, 3))
  mean, logvar = rng.normal(size=(2, 3)), rng.uniform(-2, 0, size=(2, 3))
  z = mean + np.exp(0.5 * logvar) * rng.normal(size=(20000, 2, 3))
  as_f32 = lambda *a: [jnp.asarray(v, jnp.float32) for v in a]
  got = losses.kl(level(*as_f32(z, mean, logvar), as_f32(*prior)), 'sample')
  log_q = stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(-1)
  want = log_q - _mixture_logpdf(z, *prior)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=2e-3)
  np.testing.assert_array_equal(np.asarray(losses.kl(level(*as_f32(z, mean, logvar), as_f32(*prior)), 'auto')),
                                np.asarray(got))
  with pytest.raises(ValueError, match='5 Gaussians has no closed form'):
    losses.kl(level(*as_f32(z, mean, logvar), as_f32(*prior)), 'analytic')
  # Under one component 'auto' is the closed form, and the sample estimate averages to it.
  one = as_f32(prior[0][:1], prior[1][:1])
  closed = np.asarray(losses.kl(level(None, *as_f32(mean, logvar), one), 'auto'))
  samples = np.asarray(losses.kl(level(*as_f32(z, mean, logvar), one), 'sample'))
  np.testing.assert_allclose(samples.mean(0), closed, atol=5 * samples.std(0).max() / np.sqrt(len(z)))


# bernoulli_log_prob.


def test_bernoulli_binary_x_matches_scipy():
  rng = _rng(4)
  logits = rng.normal(scale=4.0, size=(3, D))
  x = (rng.uniform(size=(3, D)) < 0.4).astype(np.float64)
  expected = stats.bernoulli.logpmf(x, special.expit(logits)).sum(-1)
  got = losses.bernoulli_log_prob(jnp.asarray(logits, jnp.float32), jnp.asarray(x, jnp.float32))
  assert got.shape == (3,)
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_bernoulli_large_logits_are_finite_and_exact(dtype):
  # Every pairing of x in {0, 1} with logits of +-50: naive log(sigmoid(l)) gives log(0) = -inf at l = -50 in
  # float32, and log(1 - sigmoid(50)) = -inf in both precisions.
  rng = _rng(5)
  logits = rng.choice([-50.0, 50.0, -30.0, 30.0, 0.0], size=(2, D))
  x = rng.choice([0.0, 1.0], size=(2, D))
  # Exact: each pixel contributes log sigmoid(+-l) = -softplus(-+l) ~ -max(0, -+l), so a wrong sign costs |l|.
  expected = _bernoulli_logpmf_scipy(x, logits)
  assert np.all(np.isfinite(expected))
  with jax.enable_x64(dtype == 'float64'):
    got = np.asarray(losses.bernoulli_log_prob(jnp.asarray(logits, dtype), jnp.asarray(x, dtype)))
  assert got.dtype == np.dtype(dtype)
  assert np.all(np.isfinite(got))
  np.testing.assert_allclose(got, expected, rtol=1e-12 if dtype == 'float64' else 1e-6)


def test_bernoulli_single_extreme_pixels_by_hand():
  # log sigmoid(50) = -log1p(exp(-50)) ~ -2e-22, log sigmoid(-50) = -50 - log1p(exp(-50)).
  with jax.enable_x64(True):
    for logit, x, expected in [(50.0, 1.0, -math.log1p(math.exp(-50))), (50.0, 0.0, -50 - math.log1p(math.exp(-50))),
                               (-50.0, 0.0, -math.log1p(math.exp(-50))), (-50.0, 1.0, -50 - math.log1p(math.exp(-50)))]:
      got = float(losses.bernoulli_log_prob(jnp.array([logit], jnp.float64), jnp.array([x], jnp.float64)))
      # Absolute: x*l - softplus(l) cancels to 0.0 where the exact value is -2e-22.
      assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), (logit, x)


def test_bernoulli_gray_x_matches_cross_entropy():
  rng = _rng(6)
  logits = rng.normal(scale=3.0, size=(4, D))
  x = rng.uniform(size=(4, D))
  x[:, :10] = 0.0
  x[:, 10:20] = 1.0
  p = 1.0 / (1.0 + np.exp(-logits))
  expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=-1)
  got = losses.bernoulli_log_prob(jnp.asarray(logits, jnp.float32), jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)
  with jax.enable_x64(True):
    got64 = losses.bernoulli_log_prob(jnp.asarray(logits), jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(got64), expected, rtol=1e-10)


# Gaussian densities.


@pytest.mark.parametrize('sigma', [1.0, math.sqrt(0.5), 0.1])
def test_gaussian_log_prob_matches_scipy(sigma):
  rng = _rng(7)
  mean = rng.uniform(size=(3, D))
  x = rng.uniform(size=(3, D))
  expected = stats.norm.logpdf(x, loc=mean, scale=sigma).sum(-1)
  got = losses.gaussian_log_prob(jnp.asarray(mean, jnp.float32), jnp.asarray(x, jnp.float32), sigma)
  assert got.shape == (3,)
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


def test_diag_gaussian_log_prob_matches_scipy_multivariate():
  rng = _rng(8)
  k = 4
  z = rng.normal(size=(5, k))
  mean = rng.normal(size=(5, k))
  logvar = rng.normal(size=(5, k))
  expected = [stats.multivariate_normal.logpdf(zi, mi, np.diag(np.exp(lv))) for zi, mi, lv in zip(z, mean, logvar)]
  got = losses.diag_gaussian_log_prob(*(jnp.asarray(a, jnp.float32) for a in (z, mean, logvar)))
  assert got.shape == (5,)
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


# log_likelihood.


def test_log_likelihood_gaussian_uses_sigmoid_mean():
  rng = _rng(9)
  decoder_out = rng.normal(scale=2.0, size=(3, D))
  x = rng.uniform(size=(3, D))
  sigma = math.sqrt(0.5)
  expected = stats.norm.logpdf(x, loc=special.expit(decoder_out), scale=sigma).sum(-1)
  got = likelihoods.make('gaussian', sigma=sigma).log_prob(jnp.asarray(decoder_out, jnp.float32), jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


def test_log_likelihood_bernoulli_matches_scipy():
  rng = _rng(10)
  decoder_out = rng.normal(scale=3.0, size=(2, D))
  x = (rng.uniform(size=(2, D)) < 0.5).astype(np.float64)
  expected = stats.bernoulli.logpmf(x, special.expit(decoder_out)).sum(-1)
  got = likelihoods.make('bernoulli').log_prob(jnp.asarray(decoder_out, jnp.float32), jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)


def test_log_likelihood_unknown_raises():
  with pytest.raises(ValueError, match='laplace'):
    likelihoods.make('laplace')


# The -ELBO decomposition.


def _neg_elbo_terms(decoder_out, x, mean, logvar, likelihood, sigma=1.0):
  """recon and the closed-form kl per image, as steps.py composes them under the standard normal prior."""
  standard = (jnp.zeros((1, mean.shape[-1])), jnp.zeros((1, mean.shape[-1])))
  return (-likelihoods.make(likelihood, sigma=sigma).log_prob(decoder_out, x),
          losses.kl(level(None, mean, logvar, standard), 'analytic'))


@pytest.mark.parametrize('likelihood', ['bernoulli', 'gaussian'])
def test_recon_and_kl_match_scipy(likelihood):
  rng = _rng(11)
  decoder_out = rng.normal(scale=2.0, size=(3, D))
  x = rng.uniform(size=(3, D))
  mean = rng.normal(size=(3, 2))
  logvar = rng.normal(size=(3, 2))
  sigma = 0.8
  p = special.expit(decoder_out)
  if likelihood == 'bernoulli':
    expected_recon = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=-1)
  else:
    expected_recon = -stats.norm.logpdf(x, loc=p, scale=sigma).sum(-1)
  std = np.exp(0.5 * logvar)
  expected_kl = np.sum(-np.log(std) + 0.5 * (std**2 + mean**2) - 0.5, axis=-1)
  recon, kl = _neg_elbo_terms(*(jnp.asarray(a, jnp.float32) for a in (decoder_out, x, mean, logvar)),
                              likelihood, sigma)
  assert recon.shape == kl.shape == (3,)
  np.testing.assert_allclose(np.asarray(recon), expected_recon, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(kl), expected_kl, rtol=1e-5)


@pytest.mark.parametrize('beta', [1.0, 0.196, 4.0])
def test_batch_metrics_decomposition(beta):
  rng = _rng(12)
  recon = rng.uniform(50, 300, size=16)
  kl = rng.uniform(0, 30, size=16)
  metrics = losses.batch_metrics(jnp.asarray(recon, jnp.float32), jnp.asarray(kl, jnp.float32), beta)
  assert set(metrics) == {'recon', 'kl', 'neg_elbo', 'loss'}
  expected = {'recon': recon.mean(), 'kl': kl.mean(), 'neg_elbo': np.mean(recon + kl),
              'loss': np.mean(recon + beta * kl)}
  for name, value in expected.items():
    assert metrics[name].shape == ()
    np.testing.assert_allclose(float(metrics[name]), value, rtol=1e-6, err_msg=name)


def test_neg_elbo_end_to_end_matches_scipy():
  # -ELBO per image from scipy densities, then averaged: the bound the metrics report in nats per image.
  rng = _rng(13)
  decoder_out = rng.normal(scale=2.0, size=(4, D))
  x = (rng.uniform(size=(4, D)) < 0.3).astype(np.float64)
  mean = rng.normal(size=(4, 3))
  logvar = rng.normal(size=(4, 3))
  recon_ref = -stats.bernoulli.logpmf(x, special.expit(decoder_out)).sum(-1)
  kl_ref = np.array([-math.log(np.prod(np.exp(0.5 * lv))) + 0.5 * np.sum(np.exp(lv) + m**2) - 1.5
                     for m, lv in zip(mean, logvar)])
  recon, kl = _neg_elbo_terms(*(jnp.asarray(a, jnp.float32) for a in (decoder_out, x, mean, logvar)),
                              'bernoulli')
  metrics = losses.batch_metrics(recon, kl, 0.5)
  np.testing.assert_allclose(float(metrics['neg_elbo']), np.mean(recon_ref + kl_ref), rtol=1e-5)
  np.testing.assert_allclose(float(metrics['loss']), np.mean(recon_ref + 0.5 * kl_ref), rtol=1e-5)


# Broadcasting over leading axes.


def test_leading_axes_broadcast():
  rng = _rng(14)
  s, b, k = 3, 2, 4
  logits = rng.normal(scale=2.0, size=(s, b, D))
  x = rng.uniform(size=(b, D))  # Broadcast against the sample axis, as in importance sampling.
  expected = np.stack([np.sum(x * np.log(special.expit(l)) + (1 - x) * np.log(special.expit(-l)), -1)
                       for l in logits])
  got = losses.bernoulli_log_prob(jnp.asarray(logits, jnp.float32), jnp.asarray(x, jnp.float32))
  assert got.shape == (s, b)
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)

  got = likelihoods.Gaussian(0.5).log_prob(jnp.asarray(logits, jnp.float32), jnp.asarray(x, jnp.float32))
  assert got.shape == (s, b)
  np.testing.assert_allclose(np.asarray(got),
                             stats.norm.logpdf(x, special.expit(logits), 0.5).sum(-1), rtol=1e-5)

  z = rng.normal(size=(s, b, k))
  mean = rng.normal(size=(b, k))
  logvar = rng.normal(size=(b, k))
  got = losses.diag_gaussian_log_prob(*(jnp.asarray(a, jnp.float32) for a in (z, mean, logvar)))
  assert got.shape == (s, b)
  expected = stats.norm.logpdf(z, mean, np.exp(0.5 * logvar)).sum(-1)
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5)

  kl = losses.kl_standard_normal(jnp.asarray(z, jnp.float32), jnp.asarray(np.broadcast_to(logvar, z.shape)))
  assert kl.shape == (s, b)
  np.testing.assert_allclose(np.asarray(kl), 0.5 * np.sum(np.exp(logvar) + z**2 - 1 - logvar, -1), rtol=1e-5)


def test_one_sample_kl_is_unbiased_for_the_closed_form():
  """steps.loss_fn's 'sample' KL, log q(z|x) - log p(z) at the decoded z, averages to the closed-form KL."""
  import functools  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from vae import models, steps  # pylint: disable=g-import-not-at-top
  model_config = ml_collections.ConfigDict({'name': 'dense', 'encoder_widths': (16,), 'decoder_widths': (16,),
                                            'activation': 'relu', 'latent_dim': 3, 'likelihood': 'bernoulli',
                                            'sigma': 1.0})
  graphdef, params = models.init(model_config, jax.random.key(0))
  x = jax.random.uniform(jax.random.key(1), (2, 784))
  kl = lambda estimator, key: steps.loss_fn(params, graphdef, x, key, model_config, 1.0,
                                            kl_estimator=estimator)[1]['kl']
  keys = jax.random.split(jax.random.key(2), 4000)
  samples = np.asarray(jax.jit(jax.vmap(functools.partial(kl, 'sample')))(keys))
  analytic = float(kl('analytic', keys[0]))
  assert np.std(samples) > 0.01  # A real estimate, not the closed form again.
  assert np.mean(samples) == pytest.approx(analytic, abs=4 * np.std(samples) / np.sqrt(len(samples)))


# Levels: a draw of two, each term summed over them.


def test_two_levels_sum_their_terms_against_scipy():
  """Level 2 under N(0, I), level 1 under a conditional Gaussian: log_weight is log p(x|z) + log p(z2) +
  log p(z1|z2) - log q(z2) - log q(z1) (scipy); kl 'sample' the same terms, 'analytic' each level's closed form
  (the matrix formula), 'auto' both closed forms here."""
  rng = _rng(31)
  n, d2, d1 = 6, 3, 4
  m2, lv2, m1, lv1, pm1, plv1 = (rng.normal(size=(n, d)) for d in (d2, d2, d1, d1, d1, d1))
  z2, z1 = m2 + np.exp(0.5 * lv2) * rng.normal(size=(n, d2)), m1 + np.exp(0.5 * lv1) * rng.normal(size=(n, d1))
  log_px_z = rng.normal(size=n)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  levels = (losses.Level(f32(z2), f32(m2), f32(lv2), losses.Mixture(jnp.zeros((1, d2)), jnp.zeros((1, d2)))),
            losses.Level(f32(z1), f32(m1), f32(lv1), losses.Gaussian(f32(pm1), f32(plv1))))
  normal = lambda v, m, lv: stats.norm.logpdf(v, m, np.exp(0.5 * lv)).sum(-1)
  sampled = normal(z2, m2, lv2) - normal(z2, 0, 0) + normal(z1, m1, lv1) - normal(z1, pm1, plv1)
  # Float32 densities of a few nats over 7 dimensions: ~1e-6 relative rounding each.
  np.testing.assert_allclose(np.asarray(losses.log_weight(f32(log_px_z), levels)), log_px_z - sampled,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(losses.kl(levels, 'sample')), sampled, rtol=1e-5, atol=1e-5)
  closed = sum(_gaussian_kl_matrix(m, lv, pm, plv) for m, lv, pm, plv in (
      (m2, lv2, np.zeros((n, d2)), np.zeros((n, d2))), (m1, lv1, pm1, plv1)))
  for estimator in ('analytic', 'auto'):
    np.testing.assert_allclose(np.asarray(losses.kl(levels, estimator)), closed, rtol=1e-5, atol=1e-5)


def _gaussian_kl_matrix(mean, logvar, prior_mean, prior_logvar):
  """KL between diagonal Gaussians by the general matrix formula, per row (float64)."""
  out = []
  for m, lv, pm, plv in zip(mean, logvar, prior_mean, prior_logvar):
    cov, prior_cov = np.diag(np.exp(lv)), np.diag(np.exp(plv))
    inv = np.linalg.inv(prior_cov)
    out.append(0.5 * (np.trace(inv @ cov) + (pm - m) @ inv @ (pm - m) - len(m)
                      + np.log(np.linalg.det(prior_cov) / np.linalg.det(cov))))
  return np.array(out)
