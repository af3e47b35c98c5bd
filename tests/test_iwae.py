"""The importance-weighted estimator against a model whose log p(x) is known in closed form, and its bound order."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from vae import iwae, likelihoods



def _one_level(log_joint, mean, logvar, key, num_samples, chunk_size, block_size=None):
  """iwae.iw_log_likelihood of one level: z = mean + exp(logvar / 2) eps, log w = log_joint(z) - log q(z|x), the
  posterior's density written out here."""
  def log_weight(eps):
    z = mean + jnp.exp(0.5 * logvar) * eps
    return log_joint(z) - stats_normal_logpdf(z, mean, jnp.exp(0.5 * logvar))
  return iwae.iw_log_likelihood(log_weight, mean.shape, key, num_samples, chunk_size, block_size)


# Jitted, with the log-joint function, the sample counts and the block size static.
iw_log_likelihood = jax.jit(_one_level, static_argnums=(0, 4, 5, 6))


def linear_gaussian(seed=0, x_dim=5, z_dim=2, noise=0.5):
  """p(z) = N(0, I), p(x|z) = N(Wz + b, noise^2 I): p(x) = N(b, W W^T + noise^2 I) and the posterior are exact."""
  rng = np.random.default_rng(seed)
  w, b = rng.normal(size=(x_dim, z_dim)), rng.normal(size=x_dim)
  x = rng.multivariate_normal(b, w @ w.T + noise ** 2 * np.eye(x_dim), size=4)
  exact = stats.multivariate_normal(b, w @ w.T + noise ** 2 * np.eye(x_dim)).logpdf(x)
  post_cov = np.linalg.inv(np.eye(z_dim) + w.T @ w / noise ** 2)
  post_mean = (x - b) @ w / noise ** 2 @ post_cov

  def log_joint(z):
    prior = stats_normal_logpdf(z, 0.0, 1.0)
    lik = stats_normal_logpdf(jnp.asarray(x, jnp.float32), z @ jnp.asarray(w.T, jnp.float32) + b, noise)
    return prior + lik

  return log_joint, exact, post_mean, post_cov


def stats_normal_logpdf(v, mean, std):
  return jnp.sum(-0.5 * ((v - mean) / std) ** 2 - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def test_converges_to_exact_log_likelihood():
  """q = the exact posterior's mean and marginal variances: with many samples the estimate is log p(x)."""
  log_joint, exact, post_mean, post_cov = linear_gaussian()
  mean = jnp.asarray(post_mean, jnp.float32)
  logvar = jnp.log(jnp.broadcast_to(jnp.diag(post_cov), mean.shape)).astype(jnp.float32)
  estimate = iw_log_likelihood(log_joint, mean, logvar, jax.random.key(0), 20000, 1000)
  np.testing.assert_allclose(estimate, exact, atol=0.01)


def test_broad_proposal_converges_and_bound_rises():
  log_joint, exact, post_mean, _ = linear_gaussian(seed=1)
  mean = jnp.asarray(post_mean, jnp.float32) + 0.3
  logvar = jnp.zeros_like(mean)  # Wider than the posterior: a valid, imperfect proposal.
  def expected_bound(k, draws):
    keys = jax.random.split(jax.random.key(k), draws)
    estimates = jax.vmap(lambda key: iw_log_likelihood(log_joint, mean, logvar, key, k, k))(keys)
    return float(jnp.mean(estimates))
  bounds = [expected_bound(k, draws) for k, draws in ((1, 4000), (10, 400), (100, 40))]
  converged = float(jnp.mean(iw_log_likelihood(log_joint, mean, logvar, jax.random.key(0), 20000, 1000)))
  assert converged == pytest.approx(float(np.mean(exact)), abs=0.02)
  assert bounds[0] < bounds[1] < bounds[2] < converged + 0.02


def test_single_sample_is_unbiased_elbo():
  """With K = 1 the estimate is log p(x, z) - log q(z|x) for one z: its mean over draws is the ELBO."""
  log_joint, _, post_mean, _ = linear_gaussian(seed=2)
  mean = jnp.asarray(post_mean, jnp.float32)
  logvar = jnp.full_like(mean, -1.0)
  draws = jax.vmap(lambda k: iw_log_likelihood(log_joint, mean, logvar, k, 1, 1))(
      jax.random.split(jax.random.key(3), 20000))
  # The ELBO by an independent route: Monte Carlo with numpy's generator and scipy densities.
  rng = np.random.default_rng(0)
  z = np.asarray(mean)[None] + np.exp(0.5 * np.asarray(logvar))[None] * rng.normal(size=(20000,) + mean.shape)
  log_q = stats.norm(np.asarray(mean), np.exp(0.5 * np.asarray(logvar))).logpdf(z).sum(-1)
  elbo = np.mean(np.asarray(log_joint(jnp.asarray(z, jnp.float32))) - log_q, axis=0)
  stderr = np.std(np.asarray(draws), axis=0) / np.sqrt(20000)
  np.testing.assert_allclose(np.mean(np.asarray(draws), axis=0), elbo, atol=6 * stderr.max())


def _log_mean_exp_of_draws(log_joint, mean, logvar, key, num_samples, chunk_size):
  """The estimate from the documented draws, recomputed with scipy's densities: chunk c of `chunk_size` draws from
  fold_in(key, c), the first `num_samples` of them kept."""
  num_chunks = -(-num_samples // chunk_size)
  eps = jnp.concatenate([jax.random.normal(jax.random.fold_in(key, c), (chunk_size,) + mean.shape)
                         for c in range(num_chunks)])[:num_samples]
  z = mean + jnp.exp(0.5 * logvar) * eps
  std = np.exp(0.5 * np.asarray(logvar, np.float64))
  log_w = np.asarray(log_joint(z), np.float64) - stats.norm(np.asarray(mean), std).logpdf(np.asarray(z)).sum(-1)
  return np.log(np.mean(np.exp(log_w), axis=0))


@pytest.mark.parametrize('block_size', [None, 1, 2, 5])
def test_draws_are_the_chunks_first_samples_in_any_blocks(block_size):
  """7 samples in chunks of 5: the second chunk's first 2 draws complete them, whatever blocks they are decoded in
  (2 is no divisor of 5: blocks of 1 then)."""
  log_joint, _, post_mean, _ = linear_gaussian(seed=3)
  mean = jnp.asarray(post_mean, jnp.float32)
  logvar = jnp.full_like(mean, -0.5)
  key = jax.random.key(4)
  estimate = iw_log_likelihood(log_joint, mean, logvar, key, 7, 5, block_size)
  # Float32 log-weights (about -10) against float64 ones, combined in another order: ~1e-6 relative apart.
  np.testing.assert_allclose(estimate, _log_mean_exp_of_draws(log_joint, mean, logvar, key, 7, 5), rtol=1e-5)


def test_fewer_samples_than_a_chunk_are_its_first_draws():
  log_joint, _, post_mean, _ = linear_gaussian(seed=5)
  mean = jnp.asarray(post_mean, jnp.float32)
  logvar = jnp.zeros_like(mean)
  key = jax.random.key(6)
  estimate = iw_log_likelihood(log_joint, mean, logvar, key, 3, 8, 1)
  np.testing.assert_allclose(estimate, _log_mean_exp_of_draws(log_joint, mean, logvar, key, 3, 8), rtol=1e-5)


class FakeDevice:
  def __init__(self, stats):
    self.stats = stats

  def memory_stats(self):
    return self.stats


def test_chunk_floats_follow_the_device_memory():
  gib = 2 ** 30
  # An accelerator with 16 GiB, 4 in use: an eighth of the 12 free, in 4-byte floats.
  assert iwae.chunk_floats(FakeDevice({'bytes_limit': 16 * gib, 'bytes_in_use': 4 * gib})) == 12 * gib // 8 // 4
  assert iwae.chunk_floats(FakeDevice({'bytes_limit': 141 * gib})) == 2 ** 30  # An H200: capped.
  for silent in (None, {}, {'bytes_in_use': gib}):  # The CPU reports None; no limit, no share of it.
    assert iwae.chunk_floats(FakeDevice(silent)) == iwae.CHUNK_FLOATS == 2 ** 25
  assert iwae.chunk_floats(jax.devices('cpu')[0]) == iwae.CHUNK_FLOATS  # The real CPU: chunks as before.


def test_blocks_are_cache_sized_on_the_cpu_and_whole_chunks_elsewhere():
  gib = 2 ** 30
  accelerator = FakeDevice({'bytes_limit': 16 * gib, 'bytes_in_use': 4 * gib})
  assert iwae.block_floats(accelerator) == iwae.chunk_floats(accelerator)
  for cpu in (FakeDevice(None), jax.devices('cpu')[0]):
    assert iwae.block_floats(cpu) == iwae.CPU_BLOCK_FLOATS < iwae.chunk_floats(cpu)


def test_model_log_likelihood_follows_the_vampprior():
  """A 2-D latent model under a 3-component VampPrior: the IW estimate is log p(x) by quadrature on a grid of z
  (numpy, scipy), with p(z) the mixture; under N(0, I) the same integral differs, so the prior is the one used."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from scipy import special  # pylint: disable=g-import-not-at-top
  from vae import models  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict({
      'name': 'dense', 'encoder_widths': (16,), 'decoder_widths': (16,), 'activation': 'tanh', 'latent_dim': 2,
      'likelihood': 'gaussian', 'sigma': 2.0, 'prior': 'vamp', 'num_pseudo_inputs': 3})
  graphdef, params = models.init(config, jax.random.key(0))
  params['pseudo_inputs'] = jax.random.uniform(jax.random.key(5), (3, 784))
  x = jax.random.uniform(jax.random.key(1), (3, 784))
  estimate = jax.jit(iwae.model_log_likelihood, static_argnums=(0, 4, 5))(
      graphdef, params, x, jax.random.key(2), 20000, likelihoods.Gaussian(2.0))
  grid = np.linspace(-6, 6, 241)
  z = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)
  pixel_means = np.asarray(jax.nn.sigmoid(models.apply(graphdef, params, 'decode', jnp.asarray(z, jnp.float32))),
                           np.float64)
  xs = np.asarray(x, np.float64)  # log N(x; pixel means, 2^2 I), the squares expanded into one matmul.
  squares = np.sum(xs ** 2, -1)[:, None] - 2 * xs @ pixel_means.T + np.sum(pixel_means ** 2, -1)[None]
  log_lik = -squares / (2 * 2.0 ** 2) - 784 * np.log(2.0 * np.sqrt(2 * np.pi))
  means, logvars = (np.asarray(a, np.float64) for a in models.apply(graphdef, params, 'prior'))
  log_prior = special.logsumexp([stats.norm.logpdf(z, m, np.exp(0.5 * lv)).sum(-1)
                                 for m, lv in zip(means, logvars)], axis=0) - np.log(3)
  cell = 2 * np.log(grid[1] - grid[0])
  exact = special.logsumexp(log_lik + log_prior, axis=1) + cell
  np.testing.assert_allclose(np.asarray(estimate), exact, atol=0.03)
  under_standard = special.logsumexp(log_lik + stats.norm.logpdf(z).sum(-1), axis=1) + cell
  assert np.min(np.abs(under_standard - exact)) > 0.1
