"""Tests of vae/likelihoods.py against scipy densities and a float64 reference of the discretized logistic mixture
written here from the paper (Salimans et al., 2017), never from the module."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from vae import likelihoods

LEVELS = np.arange(256)


def _rng(seed=0):
  return np.random.default_rng(seed)


# The float64 reference: one pixel's parameters (logits (K,), mu and log_scale (K, C), coeff (K, C(C-1)/2)).


def _pack(logits, mu, log_scale, coeff):
  """The documented per-pixel layout [logits | mu (K, C) | log_scale (K, C) | coeff (K, C(C-1)/2)], row-major."""
  return np.concatenate([np.ravel(a) for a in (logits, mu, log_scale, coeff)]).astype(np.float32)


def _random_params(rng, k, c, scale=(-4.0, -1.0)):
  return (rng.normal(size=k), rng.uniform(-1.2, 1.2, (k, c)), rng.uniform(*scale, (k, c)),
          rng.normal(size=(k, c * (c - 1) // 2)))


def _log1mexp(a):
  """log(1 - exp(a)) for a < 0, accurate at both ends (Maechler, 2012)."""
  with np.errstate(divide='ignore'):  # a = 0 (an empty bin) in the branch np.where does not take.
    return np.where(a > -np.log(2), np.log(-np.expm1(a)), np.log1p(-np.exp(a)))


def _ref_log_bin(k, x, loc, scale):
  """log P(bin k) under Logistic(loc, scale), x = 2 (k/255) - 1 its centre: the CDF difference in log space on the
  side of loc where both CDFs (or both survival functions) are small, so nothing cancels in float64."""
  lo, hi = x - 1 / 255, x + 1 / 255
  cdf_hi, cdf_lo = stats.logistic.logcdf(hi, loc, scale), stats.logistic.logcdf(lo, loc, scale)
  sf_hi, sf_lo = stats.logistic.logsf(hi, loc, scale), stats.logistic.logsf(lo, loc, scale)
  interior = np.where(x < loc, cdf_hi + _log1mexp(cdf_lo - cdf_hi), sf_lo + _log1mexp(sf_hi - sf_lo))
  return np.where(k == 0, cdf_hi, np.where(k == 255, sf_lo, interior))


def _ref_log_prob(params, k):
  """float64 log p(pixel) at levels k (..., C) in 0..255: log sum_k pi_k prod_c Logistic bin mass of x_c given
  x_<c through the lower-triangular tanh(coeff) matrix."""
  logits, mu, log_scale, coeff = (np.asarray(a, np.float64) for a in params)
  num_mixtures, channels = mu.shape
  mix = np.zeros((num_mixtures, channels, channels))
  rows, cols = np.tril_indices(channels, -1)
  mix[:, rows, cols] = np.tanh(coeff)
  # The module's input is float32 k/255; the reference scores that same number.
  x = 2 * np.asarray(np.asarray(k) / 255, np.float32).astype(np.float64) - 1
  loc = mu + np.einsum('mcj,...j->...mc', mix, x)  # (..., K, C)
  log_bins = _ref_log_bin(k[..., None, :], x[..., None, :], loc, np.exp(np.maximum(log_scale, -7.0)))
  return special.logsumexp(special.log_softmax(logits) + log_bins.sum(-1), axis=-1)


def _vary(k_fixed, channel):
  """(256, C) levels: k_fixed with `channel` taking each of the 256 values."""
  k = np.tile(np.asarray(k_fixed), (256, 1))
  k[:, channel] = LEVELS
  return k


def _module_log_prob(params, k):
  lik = likelihoods.DiscretizedLogisticMixture(*params[1].shape)
  return np.asarray(jax.jit(lik.log_prob)(_pack(*params), jnp.asarray(k / 255, jnp.float32)), np.float64)


# Tolerances. float32 rounds ~6e-8 relative per operation. Near a bin's mode the log-prob is O(1-10) nats from O(10)
# operations: ~1e-6 absolute (6e-6 seen), so 1e-4 leaves a wide margin. In a tail, log p ~ -|x - loc| / scale, and
# the rounding of x, x - loc and exp(-log_scale) (~3 roundings, ~2e-7 relative; 3.4e-7 seen) scales with it: 2e-6
# relative holds there, up to the -8e3 nats of the extremes.
TOL = dict(atol=1e-4, rtol=2e-6)


@pytest.mark.parametrize('channels, num_mixtures', [(1, 3), (2, 2), (3, 2)])
def test_discretized_logistic_is_normalised_and_matches_float64_reference(channels, num_mixtures):
  # Gray and two channels: all 256^C values of a pixel. RGB: each channel through its 256 values, the others fixed.
  rng = _rng(channels)
  params = _random_params(rng, num_mixtures, channels)
  if channels < 3:
    k = np.stack(np.meshgrid(*[LEVELS] * channels, indexing='ij'), -1).reshape(-1, channels)
  else:
    k = np.concatenate([_vary(rng.integers(0, 256, channels), c) for c in range(channels)])
  got, expected = _module_log_prob(params, k), _ref_log_prob(params, k)
  np.testing.assert_allclose(got, expected, **TOL)
  if channels < 3:
    # float32 terms and sums, ~1e-6 relative. The reference's bins are centred on float32 k/255 (off by <= 6e-8),
    # so they tile [-1, 1] only to ~1e-8 of its density (< 14 at these scales) per edge.
    assert np.exp(got).sum() == pytest.approx(1.0, abs=1e-5)
    assert np.exp(expected).sum() == pytest.approx(1.0, abs=1e-6)
  else:
    # Summed over the last channel, the joint is the reference's marginal of the first two (their own parameters).
    logits, mu, log_scale, coeff = params
    marginal = _ref_log_prob((logits, mu[:, :2], log_scale[:, :2], coeff[:, :1]), k[-256, :2])
    assert np.exp(got[-256:]).sum() == pytest.approx(np.exp(marginal), rel=1e-5)


def test_discretized_logistic_extremes_match_reference_with_finite_gradients():
  # Log-scales below the clamp, at it, wide, and wider than the bins resolve (9: a bin 3e-6 scales wide); locations
  # far outside [-1, 1]; mixture logits +-50; coefficients saturating tanh. log p reaches ~-8e3 nats there, where
  # TOL's relative part is the float32 argument's rounding. (PixelCNN++'s density-at-the-centre fallback is 2.1 nats
  # off in the tails of a component at the clamp, which this would catch.)
  lik = likelihoods.DiscretizedLogisticMixture(2, 3)
  cases = []
  for log_scale in (-9.0, -7.0, 5.0, 9.0):
    for loc in (-3.0, 3.0, 0.5):
      cases.append((np.array([50.0, -50.0]), np.array([[loc, -loc, 0.2], [-loc, loc, -0.9]]),
                    np.full((2, 3), log_scale), np.array([[5.0, -5.0, 0.3], [-4.0, 6.0, 0.0]])))
  cases.append((np.array([-50.0, 50.0]), np.array([[0.0, 0.0, 0.0], [3.0, -3.0, 3.0]]),
                np.array([[5.0, -7.0, 0.0], [-7.0, 5.0, -9.0]]), np.array([[0.0, 0.0, 0.0], [9.0, -9.0, 9.0]])))
  k_fixed = np.array([0, 128, 255])
  k = np.concatenate([_vary(k_fixed, c) for c in range(3)])  # (768, 3): each channel through all 256 values.
  log_prob = jax.jit(lik.log_prob)
  grad = jax.jit(jax.grad(lambda out, x: jnp.sum(lik.log_prob(out, x))))
  x = jnp.asarray(k / 255, jnp.float32)
  for params in cases:
    got = np.asarray(log_prob(_pack(*params), x), np.float64)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, _ref_log_prob(params, k), **TOL)
    assert np.all(np.isfinite(np.asarray(grad(jnp.asarray(_pack(*params)), x))))
  # A scale float32 cannot invert (exp(-100) underflows): finite, where the float64 reference no longer resolves.
  params = (cases[0][0], cases[0][1], np.full((2, 3), 100.0), cases[0][3])
  for value in (log_prob(_pack(*params), x), grad(jnp.asarray(_pack(*params)), x)):
    assert np.all(np.isfinite(np.asarray(value)))


def test_discretized_logistic_image_sums_pixels_and_broadcasts():
  # out (samples, batch, H*W*P) against x (batch, H*W*C): one value per image, the sum of its pixels' references.
  rng, num_mixtures, channels, pixels = _rng(3), 2, 3, 4
  lik = likelihoods.DiscretizedLogisticMixture(num_mixtures, channels)
  params = [[_random_params(rng, num_mixtures, channels) for _ in range(pixels)] for _ in range(2 * 3)]
  k = rng.integers(0, 256, (3, pixels, channels))
  out = np.stack([np.concatenate([_pack(*p) for p in image]) for image in params]).reshape(2, 3, -1)
  got = jax.jit(lik.log_prob)(jnp.asarray(out), jnp.asarray(k.reshape(3, -1) / 255, jnp.float32))
  assert got.shape == (2, 3)
  expected = [[sum(_ref_log_prob(params[3 * s + b][n], k[b, n]) for n in range(pixels)) for b in range(3)]
              for s in range(2)]
  np.testing.assert_allclose(np.asarray(got), expected, **TOL)


@pytest.mark.parametrize('channels, num_mixtures', [(1, 3), (3, 2)])
def test_discretized_logistic_gradients_match_float64_finite_differences(channels, num_mixtures):
  # The module's backward pass is its own (a custom VJP): its gradients in the decoder outputs and in x, against
  # central differences of the float64 reference (step 1e-6: truncation ~1e-12, rounding ~1e-10 of the terms). A
  # pixel at each end bin and interior ones. float32 gradients carry ~1e-6 of the largest term (1e-6 seen); 1e-5 of
  # the largest gradient leaves a margin.
  rng, pixels, step = _rng(6), 6, 1e-6
  lik = likelihoods.DiscretizedLogisticMixture(num_mixtures, channels)
  params = [_random_params(rng, num_mixtures, channels) for _ in range(pixels)]
  k = rng.integers(1, 255, (pixels, channels))
  k[0, 0], k[1, -1] = 0, 255
  weights = rng.normal(size=pixels)  # A weighted sum, so that each pixel's gradient is checked, not only their total.
  out = np.concatenate([_pack(*p) for p in params]).astype(np.float64)
  x = np.asarray(k / 255, np.float32).astype(np.float64).reshape(-1)
  got_out, got_x = jax.jit(jax.grad(lambda o, x: jnp.sum(lik.log_prob(o, x)), argnums=(0, 1)))(
      jnp.asarray(out.reshape(pixels, -1), jnp.float32), jnp.asarray(x.reshape(pixels, -1), jnp.float32))
  got_out, got_x = np.asarray(got_out, np.float64) * weights[:, None], np.asarray(got_x, np.float64) * weights[:, None]
  per_pixel = len(out) // pixels

  def reference(out, x):  # sum_n weights[n] log p(pixel n), x's values free of their bins k (which pick the branch).
    total = 0.0
    for n in range(pixels):
      o = out[n * per_pixel:(n + 1) * per_pixel]
      logits, o = o[:num_mixtures], o[num_mixtures:]
      mu, log_scale, coeff = (o[:num_mixtures * channels].reshape(num_mixtures, channels),
                              o[num_mixtures * channels:2 * num_mixtures * channels].reshape(num_mixtures, channels),
                              o[2 * num_mixtures * channels:].reshape(num_mixtures, -1))
      mix = np.zeros((num_mixtures, channels, channels))
      mix[:, *np.tril_indices(channels, -1)] = np.tanh(coeff)
      value = 2 * x[n * channels:(n + 1) * channels] - 1
      loc = mu + np.einsum('mcj,j->mc', mix, value)
      log_bins = _ref_log_bin(k[n], value, loc, np.exp(np.maximum(log_scale, -7.0)))
      total += weights[n] * special.logsumexp(special.log_softmax(logits) + log_bins.sum(-1))
    return total

  def differences(f, at):
    grad = np.zeros_like(at)
    for i in range(len(at)):
      e = np.zeros_like(at)
      e[i] = step
      grad[i] = (f(at + e) - f(at - e)) / (2 * step)
    return grad

  expected_out = differences(lambda o: reference(o, x), out).reshape(pixels, -1)
  expected_x = differences(lambda v: reference(out, v), x).reshape(pixels, -1)
  for got, expected in ((got_out, expected_out), (got_x, expected_x)):
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


# Bernoulli and Gaussian.


def test_bernoulli_and_gaussian_match_scipy_and_todays_expressions():
  rng = _rng(4)
  logits = rng.normal(0, 3, (3, 50)).astype(np.float32)
  x_binary = rng.integers(0, 2, (3, 50)).astype(np.float32)
  x = rng.uniform(0, 1, (3, 50)).astype(np.float32)
  sigma = 0.3
  bernoulli, gaussian = likelihoods.make('bernoulli'), likelihoods.make('gaussian', sigma=sigma)
  # 50 terms of O(1-10) nats each in float32: ~1e-6 relative; 1e-5 leaves a margin.
  np.testing.assert_allclose(bernoulli.log_prob(logits, x_binary),
                             stats.bernoulli.logpmf(x_binary, special.expit(logits.astype(np.float64))).sum(-1),
                             rtol=1e-5)
  np.testing.assert_allclose(gaussian.log_prob(logits, x),
                             stats.norm.logpdf(x, special.expit(logits.astype(np.float64)), sigma).sum(-1), rtol=1e-5)
  # Bit for bit the expressions vae/losses.py used for the published numbers (copied here, as they stood).
  logits, x = jnp.asarray(logits), jnp.asarray(x)
  assert np.array_equal(bernoulli.log_prob(logits, x), jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1))
  assert np.array_equal(gaussian.log_prob(logits, x), jnp.sum(
      -0.5 * jnp.square((x - jax.nn.sigmoid(logits)) / sigma) - np.log(sigma) - 0.5 * np.log(2 * np.pi), axis=-1))


def test_bernoulli_and_gaussian_means_and_samples():
  out = jnp.array([-2.0, 0.0, 1.5], jnp.float32)
  mean = special.expit(np.asarray(out, np.float64))
  n, sigma = 20_000, 0.2
  for lik in (likelihoods.Bernoulli(), likelihoods.Gaussian(sigma)):
    assert not lik.discrete
    np.testing.assert_allclose(lik.mean(out), mean, rtol=1e-6)
    draws = np.asarray(jax.jit(lik.sample)(jax.random.key(0), jnp.broadcast_to(out, (n, 3))))
    bernoulli = isinstance(lik, likelihoods.Bernoulli)
    std = np.sqrt(mean * (1 - mean)) if bernoulli else np.full(3, sigma)
    # The sample mean within 5 standard errors (a correct sampler fails with probability ~6e-7 per pixel).
    np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 5 * std / np.sqrt(n))
    if bernoulli:
      assert set(np.unique(draws)) == {0.0, 1.0}
    else:  # Unclipped: the std is sigma's (its standard error is 0.5% here), and draws leave [0, 1].
      np.testing.assert_allclose(draws.std(0), sigma, rtol=0.05)
      assert draws.min() < 0


# Samples and means of the discretized logistic.


@pytest.mark.parametrize('channels, num_mixtures', [(1, 1), (2, 2)])
def test_discretized_logistic_samples_follow_log_prob(channels, num_mixtures):
  # A chi-square test of n draws of one pixel against exp(log_prob) over all 256^C values (checked against the
  # reference above), cells expected below 5 pooled. The key is fixed, so the test is deterministic; a correct
  # sampler would fail at p < 1e-3 with probability 1e-3 over keys, while a sampler off by one bin, or conditioning
  # a channel on the unrounded earlier one, is off by far more.
  rng, n = _rng(5), 100_000
  params = _random_params(rng, num_mixtures, channels, scale=(-3.5, -2.5))
  if channels == 1:
    params[1][0, 0] = 0.97  # Its mode near the top end: bin 255, open above, takes 37%.
  lik = likelihoods.DiscretizedLogisticMixture(num_mixtures, channels)
  out = jnp.asarray(_pack(*params))
  draws = np.asarray(jax.jit(lik.sample)(jax.random.key(0), jnp.broadcast_to(out, (n, out.shape[0]))))
  assert draws.shape == (n, channels) and draws.min() >= 0 and draws.max() <= 1
  # k/255 to float32 rounding (under jit XLA divides by 255 as a product with float32(1/255), 1 ulp from numpy's).
  levels = np.round(draws * 255)
  np.testing.assert_allclose(draws * 255, levels, atol=1e-4)
  cells = np.ravel_multi_index(levels.astype(int).T, (256,) * channels)
  grid = np.stack(np.meshgrid(*[LEVELS] * channels, indexing='ij'), -1).reshape(-1, channels)
  prob = np.exp(np.asarray(jax.jit(lik.log_prob)(out, jnp.asarray(grid / 255, jnp.float32)), np.float64))
  observed, expected = np.bincount(cells, minlength=256 ** channels), n * prob / prob.sum()
  small = expected < 5
  observed = np.append(observed[~small], observed[small].sum())
  expected = np.append(expected[~small], expected[small].sum())
  assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_discretized_logistic_mean():
  # One narrow component: the mean is mu, clipped to [-1, 1], mapped to [0, 1].
  mu = np.array([-3.0, -0.5, 0.2, 0.9, 3.0])
  lik = likelihoods.DiscretizedLogisticMixture(1, 1)
  out = np.concatenate([_pack([0.0], [[m]], [[-7.0]], np.zeros((1, 0))) for m in mu])
  np.testing.assert_allclose(jax.jit(lik.mean)(jnp.asarray(out)), (np.clip(mu, -1, 1) + 1) / 2, atol=1e-6)
  # Two components, two channels: sum_k pi_k (mu_k1 + tanh(coeff_k) m0), m0 the clipped first channel's mean.
  logits, mu, coeff = np.array([0.3, -0.4]), np.array([[0.5, -0.2], [0.9, 0.7]]), np.array([[1.2], [-0.5]])
  pi = special.softmax(logits)
  m0 = np.clip(pi @ mu[:, 0], -1, 1)
  m1 = np.clip(pi @ (mu[:, 1] + np.tanh(coeff[:, 0]) * m0), -1, 1)
  got = jax.jit(likelihoods.DiscretizedLogisticMixture(2, 2).mean)(_pack(logits, mu, np.zeros((2, 2)), coeff))
  np.testing.assert_allclose(got, (np.array([m0, m1]) + 1) / 2, atol=1e-6)


# The factory.


def test_make_and_outputs_per_pixel():
  with pytest.raises(ValueError, match='bernoulli, gaussian, discretized_logistic'):
    likelihoods.make('poisson')
  assert likelihoods.make('bernoulli', channels=3) == likelihoods.Bernoulli(3)
  assert likelihoods.make('gaussian', sigma=0.5, channels=3) == likelihoods.Gaussian(0.5, 3)
  rgb = likelihoods.make('discretized_logistic', num_mixtures=10, channels=3)
  gray = likelihoods.make('discretized_logistic', num_mixtures=4)
  assert (rgb.outputs_per_pixel(), gray.outputs_per_pixel()) == (100, 12)
  assert [likelihoods.make(name, channels=3).outputs_per_pixel() for name in likelihoods.NAMES[:2]] == [3, 3]
  assert rgb.discrete and not likelihoods.make('gaussian').discrete
  with pytest.raises(ValueError, match='100 decoder outputs'):  # One pixel's outputs for two pixels.
    rgb.log_prob(jnp.zeros(100), jnp.zeros(6))
