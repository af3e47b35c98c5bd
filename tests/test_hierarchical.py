"""Models of two stochastic levels (vae/models/hierarchical.py) and the log-weight interface they share with one level:
the IW estimate against exact and numerically integrated marginal likelihoods, the architectures, and a run."""
import math
import os
from typing import NamedTuple
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from scipy import special, stats

from conftest import ROOT, read_json, read_jsonl
from vae import iwae, likelihoods, losses, models

# Every estimate here is at full float32, whatever the backend's default.
pytestmark = pytest.mark.usefixtures('full_precision')


@pytest.fixture
def full_precision():
  with jax.default_matmul_precision('float32'):
    yield


class LinearGaussianHierarchy(nnx.Module):
  """Per coordinate: z2 ~ N(0, 1), z1 | z2 ~ N(a z2 + c, s1^2), x | z1 ~ N(b z1 + d, s^2); so p(x) is Gaussian
  and so are the posteriors q(z2|x) and q(z1|x, z2), exactly. `shift` moves both posterior means off the exact ones
  (an imperfect, valid proposal). Its `decode` returns the mean of x, scored below by a Gaussian density."""

  def __init__(self, a, c, s1, b, d, s, shift=0.0):
    self.a, self.c, self.s1, self.b, self.d, self.s = (nnx.Param(jnp.asarray(v, jnp.float32))
                                                     for v in (a, c, s1, b, d, s))
    self.shift = shift

  def infer(self, x):
    a, c, s1, b, d, s = (v[...] for v in (self.a, self.c, self.s1, self.b, self.d, self.s))
    var_x = b ** 2 * (a ** 2 + s1 ** 2) + s ** 2
    mean2 = b * a * (x - b * c - d) / var_x + self.shift
    return x, mean2, jnp.log(1 - (b * a) ** 2 / var_x) + jnp.zeros_like(x)

  def noise_size(self, inferred):
    return 2 * inferred[0].shape[-1]

  def prior(self):
    return jnp.zeros((1, self.a.shape[0])), jnp.zeros((1, self.a.shape[0]))

  def draw(self, inferred, eps):
    x, mean2, logvar2 = inferred
    z2 = mean2 + jnp.exp(0.5 * logvar2) * eps[..., :x.shape[-1]]
    return self._levels(inferred, z2, eps[..., x.shape[-1]:], from_prior=False)

  def prior_draw(self, inferred, eps, u):
    """z2 ~ N(0, 1), z1 ~ p(z1 | z2), each scored under q too (the defensive estimate's other draws)."""
    del u  # One component.
    return self._levels(inferred, eps[..., :inferred[0].shape[-1]], eps[..., inferred[0].shape[-1]:], from_prior=True)

  def _levels(self, inferred, z2, eps1, from_prior):
    x, mean2, logvar2 = inferred
    a, c, s1, b, d, s = (v[...] for v in (self.a, self.c, self.s1, self.b, self.d, self.s))
    var1 = 1 / (1 / s1 ** 2 + b ** 2 / s ** 2)
    mean1 = var1 * ((a * z2 + c) / s1 ** 2 + b * (x - d) / s ** 2) + self.shift
    logvar1 = jnp.log(var1) + jnp.zeros_like(mean1)
    z1 = (a * z2 + c + s1 * eps1) if from_prior else mean1 + jnp.exp(0.5 * logvar1) * eps1
    standard = losses.Mixture(*self.prior())
    conditional = losses.Gaussian(a * z2 + c, jnp.log(s1 ** 2) + jnp.zeros_like(z2))
    return b * z1 + d, (losses.Level(z2, mean2, logvar2, standard), losses.Level(z1, mean1, logvar1, conditional))


def _hierarchy(shift, seed=0, n=4, dim=3):
  rng = np.random.default_rng(seed)
  a, b = rng.uniform(0.5, 2.0, size=(2, dim))
  c, d = rng.normal(size=(2, dim))
  s1, s = rng.uniform(0.3, 1.0, size=(2, dim))
  var_x = b ** 2 * (a ** 2 + s1 ** 2) + s ** 2
  x = b * c + d + np.sqrt(var_x) * rng.normal(size=(n, dim))
  exact = stats.norm(b * c + d, np.sqrt(var_x)).logpdf(x).sum(-1)  # p(x), independent coordinates.
  graphdef, params = nnx.split(LinearGaussianHierarchy(a, c, s1, b, d, s, shift))
  return graphdef, nnx.to_pure_dict(params), jnp.asarray(x, jnp.float32), exact, s


def _estimate(graphdef, params, x, noise_sigma, key, num_samples, chunk_size):
  """The IW estimate through the models' interface (models.apply: infer, noise_size, draw) and losses.log_weight."""
  inferred = models.apply(graphdef, params, 'infer', x)
  shape = x.shape[:-1] + (models.apply(graphdef, params, 'noise_size', inferred),)

  def log_weight(eps):
    x_mean, levels = models.apply(graphdef, params, 'draw', inferred, eps)
    log_px_z = jnp.sum(stats_norm_logpdf(x, x_mean, jnp.asarray(noise_sigma, jnp.float32)), axis=-1)
    return losses.log_weight(log_px_z, levels)

  return iwae.iw_log_likelihood(log_weight, shape, key, num_samples, chunk_size)


def stats_norm_logpdf(v, mean, std):
  return -0.5 * ((v - mean) / std) ** 2 - jnp.log(std) - 0.5 * math.log(2 * math.pi)


@pytest.mark.parametrize('num_samples', [1, 7])
def test_exact_posteriors_give_the_exact_marginal_likelihood(num_samples):
  """With both levels' exact posteriors every log-weight is log p(x): one draw, or seven in chunks of five, give
  the closed form to float32 rounding (terms of a few nats over six dimensions)."""
  graphdef, params, x, exact, s = _hierarchy(shift=0.0)
  estimate = _estimate(graphdef, params, x, s, jax.random.key(0), num_samples, 5)
  np.testing.assert_allclose(np.asarray(estimate), exact, rtol=1e-5, atol=1e-4)


def test_shifted_posteriors_bound_below_and_converge():
  """Posterior means moved by 0.1: one draw's mean is the ELBO, below log p(x) by the KL to the true posterior (0.18
  to 0.21 nats here, the mean's standard error 0.01); 20,000 draws reach log p(x) (three keys: within 0.012)."""
  graphdef, params, x, exact, s = _hierarchy(shift=0.1, seed=1)
  one = jax.vmap(lambda k: _estimate(graphdef, params, x, s, k, 1, 1))(jax.random.split(jax.random.key(1), 4000))
  assert np.all(np.mean(np.asarray(one), axis=0) < exact - 0.1)
  converged = _estimate(graphdef, params, x, s, jax.random.key(2), 20000, 1000)
  np.testing.assert_allclose(np.asarray(converged), exact, atol=0.03)


class _XGaussian(NamedTuple):
  """The hierarchy's p(x | z1): N(x; the decoded mean, s^2) per coordinate (a likelihood as vae/likelihoods.py's)."""
  s: tuple

  def log_prob(self, out, x):
    return jnp.sum(stats_norm_logpdf(x, out, jnp.asarray(self.s, jnp.float32)), axis=-1)


def _model_estimate(shift, seed, num_samples, defensive, key=0):
  graphdef, params, x, exact, s = _hierarchy(shift=shift, seed=seed)
  estimate = iwae.model_log_likelihood(graphdef, params, x, jax.random.key(key), num_samples,
                                       _XGaussian(tuple(float(v) for v in s)), defensive=defensive)
  return np.asarray(estimate), exact


def test_defensive_estimate_agrees_on_an_exact_marginal():
  """Exact posteriors: the standard estimate is log p(x) to rounding; the defensive one (half the draws from the
  prior, each weighed by p(x, z) / (q / 2 + p / 2)) has weights within (0, 2 p(x)), so 20,000 draws put it within
  a few hundredths of log p(x) (relative standard error at most 1 / sqrt(20000) ~ 0.007)."""
  standard, exact = _model_estimate(0.0, 0, 100, 0.0)
  np.testing.assert_allclose(standard, exact, rtol=1e-5, atol=1e-4)
  defensive, _ = _model_estimate(0.0, 0, 20000, 0.5)
  np.testing.assert_allclose(defensive, exact, atol=0.03)


def test_defensive_estimate_survives_a_posterior_that_q_misses():
  """Both posterior means moved 3 units (several posterior standard deviations) off the exact ones: q's draws land
  where the joint is tiny, so the standard estimate from 20,000 of them sits nats below log p(x), while the
  defensive one, whose prior draws cover the posterior, is within 0.15 nats (over three keys its spread at 20,000
  draws was 0.07 on the worst image, and 200,000 draws came within 0.05 of log p(x))."""
  standard, exact = _model_estimate(3.0, 2, 20000, 0.0)
  defensive, _ = _model_estimate(3.0, 2, 20000, 0.5)
  assert np.all(standard < exact - 2.0), (standard, exact)
  np.testing.assert_allclose(defensive, exact, atol=0.15)


def _tiny(name, **keys):
  config = {'name': name, 'latent_dim': 1, 'z1_dim': 1, 'activation': 'tanh', 'encoder_widths': (16,),
            'decoder_widths': (16,), 'z1_widths': (8,), 'likelihood': 'gaussian', 'sigma': 2.0, 'prior': 'standard',
            'num_pseudo_inputs': 1, 'conv_impl': 'auto'}
  return ml_collections.ConfigDict(dict(config, **keys))


@pytest.mark.parametrize('name', ['hvae', 'two_layer'])
def test_iw_estimate_is_the_marginal_by_quadrature(name):
  """z1 and z2 of one dimension each: p(x) = integral of p(x|z) p(z1|z2) p(z2) over a grid (scipy's densities of
  the model's own conditionals), against the 20,000-sample IW estimate; the posteriors matter only through its
  variance. x is Gaussian around the decoder's pixel means, sigma 2, so the integrand is smooth."""
  config = _tiny(name)
  graphdef, params = models.init(config, jax.random.key(0))
  x = jax.random.uniform(jax.random.key(1), (3, 784))
  estimate = jax.jit(iwae.model_log_likelihood, static_argnums=(0, 4, 5))(
      graphdef, params, x, jax.random.key(2), 20000, likelihoods.Gaussian(2.0))
  grid = np.linspace(-7, 7, 201)
  z2, z1 = (a.reshape(-1, 1) for a in np.meshgrid(grid, grid, indexing='ij'))
  model = nnx.merge(graphdef, params)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  p_mean, p_logvar = (np.asarray(a, np.float64) for a in model.p_z1(f32(z2)))
  logits = model._logits(f32(z1), f32(z2)) if name == 'hvae' else model.decoder(f32(z1))  # pylint: disable=protected-access
  pixel_means, xs = np.asarray(jax.nn.sigmoid(logits), np.float64), np.asarray(x, np.float64)
  squares = np.sum(xs ** 2, -1)[:, None] - 2 * xs @ pixel_means.T + np.sum(pixel_means ** 2, -1)[None]
  log_lik = -squares / (2 * 2.0 ** 2) - 784 * np.log(2.0 * np.sqrt(2 * np.pi))
  log_prior = (stats.norm.logpdf(z2) + stats.norm.logpdf(z1, p_mean, np.exp(0.5 * p_logvar)))[:, 0]
  exact = special.logsumexp(log_lik + log_prior, axis=1) + 2 * np.log(grid[1] - grid[0])
  np.testing.assert_allclose(np.asarray(estimate), exact, atol=0.03)


@pytest.mark.parametrize('name', ['hvae', 'two_layer'])
def test_the_elbo_kl_is_unbiased_for_the_kl(name):
  """'auto' (each level's closed form where one holds) and 'sample' estimate the same KL: their means over 20,000
  draws agree within 5 standard errors. The two_layer model draws z1 before z2, so its z1 level has no closed form
  ('auto' samples it; 'analytic' refuses)."""
  graphdef, params = models.init(_tiny(name, latent_dim=2, z1_dim=2), jax.random.key(0))
  x = jax.random.uniform(jax.random.key(1), (2, 784))
  from vae import steps  # pylint: disable=g-import-not-at-top
  _, levels = jax.jit(lambda k: steps.draw(graphdef, params, x, k, num_samples=20000))(jax.random.key(2))
  auto, sample = np.asarray(losses.kl(levels, 'auto')), np.asarray(losses.kl(levels, 'sample'))
  stderr = np.std(sample, axis=0) / np.sqrt(len(sample))
  np.testing.assert_allclose(auto.mean(axis=0), sample.mean(axis=0), atol=5 * stderr.max())
  if name == 'two_layer':
    with pytest.raises(ValueError, match='no closed-form KL'):
      losses.kl(levels, 'analytic')


def test_a_bare_module_of_ones_own_trains_and_scores():
  """Any nnx.Module with encode, decode, __call__ and prior (not a models.VAE) gets the one-level draws: its
  -ELBO's KL is the closed form, its log-weight the one written out here."""
  from vae import steps  # pylint: disable=g-import-not-at-top

  class Bare(nnx.Module):
    def __init__(self, rngs):
      self.enc = nnx.Linear(784, 4, rngs=rngs)
      self.dec = nnx.Linear(2, 784, rngs=rngs)

    def encode(self, x):
      h = self.enc(x)
      return h[..., :2], h[..., 2:]

    def decode(self, z):
      return self.dec(z)

    def __call__(self, x, key):
      raise AssertionError('not used')

    def prior(self):
      return jnp.zeros((1, 2)), jnp.zeros((1, 2))

  graphdef, state = nnx.split(Bare(nnx.Rngs(0)))
  params = nnx.to_pure_dict(state)
  x = jax.random.uniform(jax.random.key(1), (3, 784))
  key = jax.random.key(2)
  logits, levels = steps.draw(graphdef, params, x, key, method='elbo_draw')
  mean, logvar = models.apply(graphdef, params, 'encode', x)
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
  np.testing.assert_allclose(logits, models.apply(graphdef, params, 'decode', z), rtol=1e-5, atol=1e-5)
  closed = 0.5 * np.sum(np.exp(logvar) + np.square(mean) - 1 - logvar, axis=-1)
  np.testing.assert_allclose(losses.kl(levels, 'auto'), closed, rtol=1e-5, atol=1e-5)


def _num_params(params):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(params))


def _abstract_init(config):
  """models.init's (graphdef, params) by jax.eval_shape: the parameters' shapes, without computing (or compiling)
  their initialisers."""
  graphdefs = []

  def params(key):
    graphdef, params = models.init(config, key)
    graphdefs.append(graphdef)
    return params

  params = jax.eval_shape(params, jax.random.key(0))
  return graphdefs[0], params


def gated(a, b):  # A GatedDense: two linear maps with biases.
  return 2 * (a * b + b)


def linear(a, b):
  return a * b + b


@pytest.mark.parametrize('name,want', [
    # The VampPrior code's HVAE_2level: q(z2|x) 784-300-300 + heads; q(z1|x, z2) x -> 300, z2 -> 300, 600 -> 300 +
    # heads; p(z1|z2) 40-300-300 + heads; p(x|z1, z2) z1 -> 300, z2 -> 300, 600 -> 300, 300 -> 784.
    ('hvae', gated(784, 300) + gated(300, 300) + 2 * linear(300, 40)
     + gated(784, 300) + gated(40, 300) + gated(600, 300) + 2 * linear(300, 40)
     + gated(40, 300) + gated(300, 300) + 2 * linear(300, 40)
     + gated(40, 300) + gated(40, 300) + gated(600, 300) + linear(300, 784)),
    # Burda et al.: 784-200-200-(100, 100), 100-100-100-(50, 50); 50-100-100-(100, 100), 100-200-200-784.
    ('two_layer', linear(784, 200) + linear(200, 200) + 2 * linear(200, 100)
     + linear(100, 100) + linear(100, 100) + 2 * linear(100, 50)
     + linear(50, 100) + linear(100, 100) + 2 * linear(100, 100)
     + linear(100, 200) + linear(200, 200) + linear(200, 784)),
])
def test_parameter_counts_match_the_papers_networks(name, want):
  config = _tiny(name, latent_dim=40 if name == 'hvae' else 50, z1_dim=40 if name == 'hvae' else 100,
                 encoder_widths=(200, 200), decoder_widths=(200, 200), z1_widths=(100, 100))
  assert _num_params(_abstract_init(config)[1]) == want


def gated_conv(a, b, k):
  return 2 * (k * k * a * b + b)


def test_conv_hvae_parameter_count_and_shapes():
  """The convHVAE: q(z2|x)'s and x's gated convolutions (kernels 7,3,5,3,3 and 3,3,3,3,3; channels 32,32,64,64,6)
  to 294 features, p(x|z1, z2)'s GatedDense 600 -> 784, four 3x3 gated convolutions of 64 channels, a 1x1 one."""
  config = _tiny('conv_hvae', latent_dim=40, z1_dim=40)
  graphdef, params = _abstract_init(config)  # Shapes only, here too.
  chain = lambda kernels: sum(gated_conv(a, b, k) for a, b, k in zip((1, 32, 32, 64, 64), (32, 32, 64, 64, 6),
                                                                      kernels))
  want = (chain((7, 3, 5, 3, 3)) + 2 * linear(294, 40) + chain((3, 3, 3, 3, 3)) + gated(40, 294) + gated(588, 300)
          + 2 * linear(300, 40) + gated(40, 300) + gated(300, 300) + 2 * linear(300, 40) + 2 * gated(40, 300)
          + gated(600, 784) + gated_conv(1, 64, 3) + 3 * gated_conv(64, 64, 3) + linear(64, 1))
  assert _num_params(params) == want
  x = jax.ShapeDtypeStruct((2, 5, 784), jnp.float32)  # Shapes only (jax.eval_shape): nothing to compile.
  logits, mean, logvar = jax.eval_shape(
      lambda params, x: models.apply(graphdef, params, '__call__', x, jax.random.key(2)), params, x)
  assert logits.shape == (2, 5, 784) and mean.shape == logvar.shape == (2, 5, 40)


def test_conv_hvae_starts_from_their_codes_initialisation():
  """p(x|z1, z2)'s networks drawn as the VampPrior code draws them: every convolution kernel PyTorch's default
  U(+-1/sqrt(fan_in)), the GatedDense He-normal N(0, 2/fan_in). Kolmogorov-Smirnov against scipy's distributions,
  each on up to 36,864 weights of one seed: a wrong family or a scale off by 5% gives p-values far below 1e-3."""
  from vae.models import hierarchical  # pylint: disable=g-import-not-at-top
  pixels = hierarchical.ConvPixels(impl='patch', rngs=nnx.Rngs(0))
  convs = [(layer.h, layer.g) for layer in pixels.convs] + [(pixels.out,)]
  for conv in (c for pair in convs for c in pair):
    kernel = np.asarray(conv.kernel[...]).reshape(-1)
    bound = 1 / math.sqrt(kernel.size / conv.kernel.shape[-1])  # fan_in = k * k * in_channels
    assert stats.kstest(kernel, stats.uniform(-bound, 2 * bound).cdf).pvalue > 1e-3, conv.kernel.shape
  for dense in (pixels.pre.h, pixels.pre.g):
    kernel = np.asarray(dense.kernel[...]).reshape(-1)
    assert stats.kstest(kernel, stats.norm(0, math.sqrt(2 / 600)).cdf).pvalue > 1e-3


def test_hvae_trains_resumes_bit_identically_loads_and_generates(tmp_path):
  """configs/vampprior.py:fashion_hvae_vamp on a tiny subset, two epochs; the same run cut after epoch 1 (its
  second checkpoint and results removed) and rerun ends with the same parameters, bit for bit. The loaded model's
  prior, codes and images are the top level's."""
  import vae  # pylint: disable=g-import-not-at-top
  spec = os.path.join(ROOT, 'configs/vampprior.py:fashion_hvae_vamp')
  overrides = {'data.max_train_images': 200, 'data.max_test_images': 100, 'data.validation_size': 100,
               'train.batch_size': 40, 'eval.batch_size': 50, 'eval.iw_samples': 2, 'eval.manifold_size': 2,
               'model.latent_dim': 4, 'model.z1_dim': 3, 'model.num_pseudo_inputs': 5,
               'train.early_stopping_patience': 0, 'train.checkpoint_every_epochs': 1, 'train.keep_checkpoints': 2}
  whole, cut = str(tmp_path / 'whole'), str(tmp_path / 'cut')
  model = vae.train(spec, whole, overrides, train__num_epochs=2)
  shutil.copytree(whole, cut)
  shutil.rmtree(os.path.join(cut, 'checkpoints', '2'))
  os.remove(os.path.join(cut, 'results.json'))
  resumed = vae.train(spec, cut, overrides, train__num_epochs=2)
  jax.tree.map(np.testing.assert_array_equal, resumed.params, model.params)
  assert read_jsonl(os.path.join(cut, 'metrics.jsonl'))[-1]['test/neg_elbo'] == pytest.approx(
      read_jsonl(os.path.join(whole, 'metrics.jsonl'))[-1]['test/neg_elbo'], abs=0)
  results = read_json(os.path.join(whole, 'results.json'))
  assert math.isfinite(results['test/nll_iw']) and results['test/nll_iw'] < 784 * math.log(2)
  assert results['test/neg_elbo'] == pytest.approx(results['test/recon'] + results['test/kl'])

  loaded = vae.load(whole)
  means, logvars = loaded.prior()
  assert means.shape == logvars.shape == (5, 4)
  x = np.asarray(jax.random.uniform(jax.random.key(0), (6, 784)))
  mean, _ = loaded.encode(x)
  assert mean.shape == (6, 4) and loaded.decode(mean).shape == (6, 28, 28)
  samples = loaded.generate(n=64, seed=0)
  assert samples.shape == (64, 28, 28) and np.all((samples > 0) & (samples < 1))
