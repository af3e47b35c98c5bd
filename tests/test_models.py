"""Tests of vae/models/ on every config in configs/: shapes, parameter counts, the sampler, pure init/apply."""
import functools
import importlib.util
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from flax import nnx

from conftest import REORDERED
from vae import models
from vae.models import convolution

CONFIGS_DIR = pathlib.Path(__file__).resolve().parent.parent / 'configs'
CONFIG_NAMES = ('fashion_dense', 'mnist18_conv', 'mnist18_conv:fashion', 'latent2d', 'latent2d:fashion',
                'burda_mnist')
D = 784


def load_config(name):
  """`configs/<file>.py[:variant]` -> its get_config(), without ml_collections.config_flags."""
  file, _, variant = name.partition(':')
  spec = importlib.util.spec_from_file_location(f'configs_{file}', CONFIGS_DIR / f'{file}.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant) if variant else module.get_config()


@pytest.fixture(scope='module', params=CONFIG_NAMES)
def initialised(request):
  config = load_config(request.param)
  graphdef, params = models.init(config.model, jax.random.key(0))
  return request.param, config, graphdef, params


def _images(shape, seed=1):
  return jax.random.uniform(jax.random.key(seed), shape + (D,))


def _kernel_shapes(params):
  """{'/'-joined path: shape} of every kernel in the pure params dict."""
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  return {'/'.join(str(k.key) for k in path[:-1]): leaf.shape
          for path, leaf in flat if path[-1].key == 'kernel'}


def _num_params(params):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(params))


# Shapes of every config's model.


def _forward(graphdef, params, x, key, eps):
  """Everything the shape tests look at, in one jitted call per config and input shape."""
  logits, mean, logvar = models.apply(graphdef, params, '__call__', x, key)
  enc_mean, enc_logvar = models.apply(graphdef, params, 'encode', x)
  return {
      'logits': logits, 'mean': mean, 'logvar': logvar, 'enc_mean': enc_mean, 'enc_logvar': enc_logvar,
      'decoded_zero': models.apply(graphdef, params, 'decode', jnp.zeros_like(mean)),
      # __call__ is decode(mean + exp(logvar / 2) * eps) with eps = normal(key): rebuilt by hand.
      'decoded_sample': models.apply(graphdef, params, 'decode', enc_mean + jnp.exp(0.5 * enc_logvar) * eps),
  }


def test_call_encode_decode_shapes(initialised):
  _, config, graphdef, params = initialised
  latent = config.model.latent_dim
  before = jax.tree_util.tree_map(np.array, params)
  forward = jax.jit(functools.partial(_forward, graphdef))
  x = _images((2, 3))
  key = jax.random.key(2)
  outputs = {}
  for leading, xs in (((3,), x[1]), ((2, 3), x)):
    eps = jax.random.normal(key, leading + (latent,))
    out = outputs[leading] = forward(params, xs, key, eps)
    assert out['logits'].shape == out['decoded_zero'].shape == leading + (D,)
    for name in ('mean', 'logvar', 'enc_mean', 'enc_logvar'):
      assert out[name].shape == leading + (latent,), name
    for name, value in out.items():
      assert np.all(np.isfinite(np.asarray(value))), name
    # __call__'s encoder and decoder against the methods alone: the same math, which XLA may fuse otherwise.
    np.testing.assert_allclose(np.asarray(out['enc_mean']), np.asarray(out['mean']), **REORDERED)
    np.testing.assert_allclose(np.asarray(out['enc_logvar']), np.asarray(out['logvar']), **REORDERED)
    np.testing.assert_allclose(np.asarray(out['logits']), np.asarray(out['decoded_sample']), **REORDERED)
    # Pure: the same inputs give the same outputs, and params are as they were.
    again = forward(params, xs, key, eps)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), out, again)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), params, before)

  # Leading axes are independent batch axes: image [1, j] of the (2, 3) batch is encoded as in the (3,) batch.
  for name in ('mean', 'logvar'):
    np.testing.assert_allclose(np.asarray(outputs[(2, 3)][name][1]), np.asarray(outputs[(3,)][name]), **REORDERED)


# Parameter shapes and counts, written out by hand from the write-ups.


def _linear(n_in, n_out):
  return n_in * n_out + n_out


def _conv(k, c_in, c_out):
  return k * k * c_in * c_out + c_out


EXPECTED_DENSE = {
    'fashion_dense': {
        'encoder/layers/0': (784, 512), 'encoder/layers/1': (512, 256),
        'encoder/mean': (256, 128), 'encoder/logvar': (256, 128),
        'decoder/layers/0': (128, 256), 'decoder/layers/1': (256, 512), 'decoder/layers/2': (512, 784),
    },
    'latent2d': {
        'encoder/layers/0': (784, 500), 'encoder/layers/1': (500, 500),
        'encoder/mean': (500, 2), 'encoder/logvar': (500, 2),
        'decoder/layers/0': (2, 500), 'decoder/layers/1': (500, 500), 'decoder/layers/2': (500, 784),
    },
    'latent2d:fashion': {
        'encoder/layers/0': (784, 400), 'encoder/layers/1': (400, 200), 'encoder/layers/2': (200, 100),
        'encoder/layers/3': (100, 20), 'encoder/mean': (20, 2), 'encoder/logvar': (20, 2),
        'decoder/layers/0': (2, 20), 'decoder/layers/1': (20, 100), 'decoder/layers/2': (100, 200),
        'decoder/layers/3': (200, 400), 'decoder/layers/4': (400, 784),
    },
}
EXPECTED_COUNTS = {
    'fashion_dense': (_linear(784, 512) + _linear(512, 256) + 2 * _linear(256, 128)
                      + _linear(128, 256) + _linear(256, 512) + _linear(512, 784)),
    'latent2d': (_linear(784, 500) + _linear(500, 500) + 2 * _linear(500, 2)
                 + _linear(2, 500) + _linear(500, 500) + _linear(500, 784)),
    'latent2d:fashion': (_linear(784, 400) + _linear(400, 200) + _linear(200, 100) + _linear(100, 20)
                         + 2 * _linear(20, 2) + _linear(2, 20) + _linear(20, 100) + _linear(100, 200)
                         + _linear(200, 400) + _linear(400, 784)),
    # Conv 32 -> Conv 64/2 -> Conv 64 -> Conv 64 -> Dense 32 -> heads 4; Dense 14*14*64 -> ConvT 32/2 -> Conv 1.
    'mnist18_conv': (_conv(3, 1, 32) + _conv(3, 32, 64) + 2 * _conv(3, 64, 64) + _linear(14 * 14 * 64, 32)
                     + 2 * _linear(32, 4) + _linear(4, 14 * 14 * 64) + _conv(3, 64, 32) + _conv(3, 32, 1)),
    'mnist18_conv:fashion': (_conv(3, 1, 32) + _conv(3, 32, 64) + 2 * _conv(3, 64, 64) + _linear(14 * 14 * 64, 32)
                             + 2 * _linear(32, 16) + _linear(16, 14 * 14 * 64) + _conv(3, 64, 32) + _conv(3, 32, 1)),
    'burda_mnist': (_linear(784, 200) + _linear(200, 200) + 2 * _linear(200, 50)
                    + _linear(50, 200) + _linear(200, 200) + _linear(200, 784)),
}


def test_parameter_count_matches_hand_count(initialised):
  name, _, _, params = initialised
  assert _num_params(params) == EXPECTED_COUNTS[name]


@pytest.mark.parametrize('name', sorted(EXPECTED_DENSE))
def test_dense_kernel_shapes_match_configured_widths(name):
  params = jax.eval_shape(lambda k: models.init(load_config(name).model, k)[1], jax.random.key(0))
  assert _kernel_shapes(params) == EXPECTED_DENSE[name]
  # Every kernel (n_in, n_out) comes with an (n_out,) bias.
  biases = {'/'.join(str(k.key) for k in path[:-1]): leaf.shape
            for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0] if path[-1].key == 'bias'}
  assert biases == {path: (shape[1],) for path, shape in EXPECTED_DENSE[name].items()}


def test_conv_architecture():
  config = load_config('mnist18_conv')
  graphdef, params = models.init(config.model, jax.random.key(0))
  assert _kernel_shapes(params) == {
      'encoder/convs/0': (3, 3, 1, 32), 'encoder/convs/1': (3, 3, 32, 64), 'encoder/convs/2': (3, 3, 64, 64),
      'encoder/convs/3': (3, 3, 64, 64), 'encoder/dense': (14 * 14 * 64, 32),
      'encoder/mean': (32, 4), 'encoder/logvar': (32, 4),
      'decoder/dense': (4, 14 * 14 * 64), 'decoder/deconv': (3, 3, 64, 32), 'decoder/out': (3, 3, 32, 1),
  }
  # Spatial sizes: only the second conv halves 28 -> 14, and the transposed conv doubles 14 -> 28.
  model = nnx.merge(graphdef, params)
  h = jnp.zeros((1, 28, 28, 1))
  sizes = []
  for conv in model.encoder.convs:
    h = conv(h)
    sizes.append(h.shape[1:])
  assert sizes == [(28, 28, 32), (14, 14, 64), (14, 14, 64), (14, 14, 64)]
  # The decoder's upsampling is a 3x3, stride-2, 'SAME' transposed convolution: the same as nnx.ConvTranspose
  # holding the same kernel and bias, whichever way the model computes it.
  reference = nnx.ConvTranspose(64, 32, (3, 3), strides=(2, 2), rngs=nnx.Rngs(0))
  reference.kernel[...] = model.decoder.deconv.kernel[...]
  reference.bias[...] = jax.random.normal(jax.random.key(1), (32,))
  model.decoder.deconv.bias[...] = reference.bias[...]
  h = jax.random.normal(jax.random.key(2), (2, 14, 14, 64))
  for impl in ('patch', 'xla'):
    model.decoder.deconv.impl = impl
    got = model.decoder.deconv(h)
    assert got.shape == (2, 28, 28, 32)
    np.testing.assert_allclose(np.asarray(got), np.asarray(reference(h)), rtol=1e-4, atol=1e-4, err_msg=impl)
  assert model.decoder.out(jnp.zeros((1, 28, 28, 32))).shape == (1, 28, 28, 1)


def test_unknown_model_raises():
  config = load_config('fashion_dense')
  with config.unlocked():
    config.model.name = 'resnet'
  with pytest.raises(ValueError, match='unknown'):
    models.init(config.model, jax.random.key(0))


# reparameterize.


def test_reparameterize_moments_match_mean_and_variance():
  mean = jnp.array([0.5, -2.0, 3.0])
  logvar = jnp.array([-1.0, 0.0, 1.5])
  n = 100_000
  z = models.reparameterize(jax.random.key(0), jnp.broadcast_to(mean, (n, 3)), jnp.broadcast_to(logvar, (n, 3)))
  z = np.asarray(z, np.float64)
  var = np.exp(np.asarray(logvar, np.float64))
  # Standard errors of the sample mean, sqrt(var / n), and of the sample variance, var * sqrt(2 / (n - 1)).
  np.testing.assert_array_less(np.abs(z.mean(0) - np.asarray(mean)), 5 * np.sqrt(var / n))
  np.testing.assert_array_less(np.abs(z.var(0, ddof=1) - var), 5 * var * math.sqrt(2 / (n - 1)))


def test_reparameterize_gradients():
  mean = jnp.array([0.5, -2.0, 3.0])
  logvar = jnp.array([-1.0, 0.0, 1.5])
  key = jax.random.key(3)
  grad_mean = jax.grad(lambda m: models.reparameterize(key, m, logvar).sum())(mean)
  np.testing.assert_allclose(np.asarray(grad_mean), np.ones(3), rtol=1e-6)
  # d z / d logvar = exp(logvar / 2) * eps / 2 = (z - mean) / 2.
  z = models.reparameterize(key, mean, logvar)
  grad_logvar = jax.grad(lambda lv: models.reparameterize(key, mean, lv).sum())(logvar)
  np.testing.assert_allclose(np.asarray(grad_logvar), 0.5 * np.asarray(z - mean), rtol=1e-5, atol=1e-6)


def test_reparameterize_is_a_function_of_the_key():
  mean, logvar = jnp.zeros(4), jnp.zeros(4)
  a = models.reparameterize(jax.random.key(0), mean, logvar)
  b = models.reparameterize(jax.random.key(0), mean, logvar)
  c = models.reparameterize(jax.random.key(1), mean, logvar)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not np.allclose(np.asarray(a), np.asarray(c))


# The functional boundary.


def test_init_and_apply_vmap_over_keys():
  config = load_config('latent2d')
  graphdef, _ = models.init(config.model, jax.random.key(0))
  keys = jax.random.split(jax.random.key(7), 2)
  stacked = jax.jit(jax.vmap(lambda k: models.init(config.model, k)[1]))(keys)
  singles = [models.init(config.model, k)[1] for k in keys]
  for i, single in enumerate(singles):
    jax.tree_util.tree_map(
        lambda s, p, i=i: np.testing.assert_allclose(np.asarray(s), np.asarray(p[i]), rtol=1e-6, atol=1e-7),
        single, stacked)
  assert not np.allclose(np.asarray(singles[0]['encoder']['mean']['kernel']),
                         np.asarray(singles[1]['encoder']['mean']['kernel']))

  x = _images((3,))
  key = jax.random.key(9)
  call = jax.jit(lambda p: models.apply(graphdef, p, '__call__', x, key))
  batched = jax.jit(jax.vmap(call))(stacked)
  for i, single in enumerate(singles):
    for got, want in zip(batched, call(single)):
      np.testing.assert_allclose(np.asarray(got[i]), np.asarray(want), **REORDERED)


def test_conv_impls_share_parameters_and_functions(monkeypatch):
  """'xla' and 'patch' are two ways to compute one model: same parameters, outputs and gradients, so checkpoints
  move between backends; 'auto' is patch on the CPU and GPU backends (the faster there), xla on a TPU."""
  config = load_config('mnist18_conv')
  built = {}
  monkeypatch.setattr(jax, 'default_backend', lambda: 'cpu')  # 'auto' as on a CPU-only machine, whatever this one is.
  for impl in convolution.CONV_IMPLS:
    with config.unlocked():
      config.model.conv_impl = impl
    built[impl] = models.init(config.model, jax.random.key(0))
  jax.tree_util.tree_map(lambda *leaves: [np.testing.assert_array_equal(leaves[0], leaf) for leaf in leaves[1:]],
                         *(params for _, params in built.values()))
  assert nnx.merge(*built['auto']).decoder.deconv.impl == 'patch'
  assert {conv.impl for conv in nnx.merge(*built['xla']).encoder.convs} == {'xla'}
  for backend, impl in (('gpu', 'patch'), ('tpu', 'xla')):
    monkeypatch.setattr(jax, 'default_backend', lambda backend=backend: backend)
    assert convolution.conv_impl('auto') == impl
  with pytest.raises(ValueError, match='cudnn'):
    convolution.conv_impl('cudnn')

  x = _images((1, 2))
  key = jax.random.key(1)
  z = jax.random.normal(jax.random.key(2), (1, 2, config.model.latent_dim))

  def outputs(graphdef, params):
    logits, mean, logvar = models.apply(graphdef, params, '__call__', x, key)
    return {'logits': logits, 'mean': mean, 'logvar': logvar, 'encode': models.apply(graphdef, params, 'encode', x),
            'decode': models.apply(graphdef, params, 'decode', z)}

  def loss(graphdef, params):
    out = outputs(graphdef, params)
    recon = -jnp.sum(x * jax.nn.log_sigmoid(out['logits']) + (1 - x) * jax.nn.log_sigmoid(-out['logits']))
    return recon + jnp.sum(jnp.exp(out['logvar']) + out['mean'] ** 2 - out['logvar']) + jnp.sum(out['decode']), out

  got = {impl: jax.jit(jax.grad(functools.partial(loss, built[impl][0]), has_aux=True))(built[impl][1])
         for impl in ('xla', 'patch')}
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                         got['xla'], got['patch'])


def test_gated_model_is_the_vampprior_architecture():
  """GatedDense is h(x) * sigmoid(g(x)) (numpy); He-normal weights; the log-variance and probability bounds."""
  config = load_config('vampprior:fashion')
  model = models.make(config.model, jax.random.key(0))
  layer = model.encoder.layers[0]
  x = np.asarray(jax.random.uniform(jax.random.key(1), (3, D)))
  h = x @ np.asarray(layer.h.kernel[...]) + np.asarray(layer.h.bias[...])
  g = x @ np.asarray(layer.g.kernel[...]) + np.asarray(layer.g.bias[...])
  np.testing.assert_allclose(layer(jnp.asarray(x)), h / (1 + np.exp(-g)), rtol=1e-4, atol=1e-5)
  kernel = np.asarray(layer.h.kernel[...])
  assert kernel.shape == (D, 300) and np.std(kernel) == pytest.approx(math.sqrt(2 / D), rel=0.02)
  # Scaled-up weights push every pre-activation far out: the bounds must hold.
  big = jax.tree.map(lambda p: p * 50, nnx.state(model, nnx.Param))
  nnx.update(model, big)
  _, logvar = model.encode(jnp.asarray(x))
  assert float(logvar.min()) >= -6 and float(logvar.max()) <= 2 and float(logvar.max() - logvar.min()) > 1
  probs = jax.nn.sigmoid(model.decode(jnp.full((3, 40), 10.0)))
  assert float(probs.min()) >= 1e-5 * 0.999 and float(probs.max()) <= 1 - 1e-5 * 0.999


# The prior: N(0, I), or the VampPrior's mixture of the posteriors of learnt pseudo-inputs.


def _vamp_config(num_pseudo_inputs):
  config = load_config('vampprior:mnist_vamp')
  with config.unlocked():
    config.model.num_pseudo_inputs = num_pseudo_inputs
  return config


def test_vampprior_pseudo_inputs_and_the_networks_they_leave_alone():
  config = _vamp_config(50)
  _, params = models.init(config.model, jax.random.key(0))
  _, standard = models.init(load_config('vampprior:mnist').model, jax.random.key(0))
  u = np.asarray(params.pop('pseudo_inputs'))
  assert u.shape == (50, D)
  assert np.mean(u) == pytest.approx(0.05, abs=1e-3) and np.std(u) == pytest.approx(0.01, rel=0.02)
  # The networks start as under the standard prior, which has no parameters of its own.
  jax.tree.map(np.testing.assert_array_equal, params, standard)


def test_one_pseudo_input_prior_is_the_gaussian_of_its_posterior():
  """K = 1 with a fixed pseudo-input u: p(z) = q(z | u), so log p(z) is that Gaussian's density (scipy) and the
  KL is the closed form between two Gaussians (written out in numpy)."""
  from vae import losses  # pylint: disable=g-import-not-at-top
  config = _vamp_config(1)
  graphdef, params = models.init(config.model, jax.random.key(0))
  u = np.asarray(jax.random.uniform(jax.random.key(1), (1, D)))
  params['pseudo_inputs'] = jnp.asarray(np.concatenate([u[:, :100] * 3 - 1, u[:, 100:]], 1))  # Some outside [0, 1].
  prior_mean, prior_logvar = models.apply(graphdef, params, 'prior')
  want_mean, want_logvar = models.apply(graphdef, params, 'encode', jnp.asarray(np.clip(params['pseudo_inputs'], 0, 1)))
  np.testing.assert_array_equal(prior_mean, want_mean)
  np.testing.assert_array_equal(prior_logvar, want_logvar)
  m, lv = np.asarray(prior_mean[0], np.float64), np.asarray(prior_logvar[0], np.float64)
  z = m + np.exp(0.5 * lv) * np.random.default_rng(2).normal(scale=1.5, size=(8, 40))
  got = losses.mixture_log_prob(jnp.asarray(z, jnp.float32), prior_mean, prior_logvar)
  np.testing.assert_allclose(np.asarray(got), stats.multivariate_normal(m, np.diag(np.exp(lv))).logpdf(z),
                             rtol=1e-5, atol=1e-3)
  x = jax.random.uniform(jax.random.key(3), (4, D))
  mean, logvar = (np.asarray(a, np.float64) for a in models.apply(graphdef, params, 'encode', x))
  closed = 0.5 * np.sum(lv - logvar - 1 + (np.exp(logvar) + (mean - m) ** 2) / np.exp(lv), axis=-1)
  got = losses.kl((losses.Level(None, *models.apply(graphdef, params, 'encode', x), losses.Mixture(prior_mean, prior_logvar)),), 'auto')
  np.testing.assert_allclose(np.asarray(got), closed, rtol=1e-4, atol=1e-3)


def test_sample_prior_draws_from_the_mixture():
  """Uniform components, then their Gaussians: each coordinate's draws pass a KS test against the mixture's CDF."""
  means = np.array([[-3.0, 0.0], [0.0, 2.0], [4.0, -1.0]])
  logvars = np.log(np.array([[0.25, 1.0], [1.0, 0.04], [0.5, 2.0]]))
  z = np.asarray(models.sample_prior((jnp.asarray(means, jnp.float32), jnp.asarray(logvars, jnp.float32)),
                                     jax.random.key(0), 20000))
  assert z.shape == (20000, 2)
  for d in range(2):
    cdf = lambda v, d=d: np.mean([stats.norm.cdf(v, means[k, d], np.exp(0.5 * logvars[k, d])) for k in range(3)],
                                 axis=0)
    assert stats.kstest(z[:, d], cdf).pvalue > 1e-3


def test_vampprior_needs_a_vae_module():
  config = _vamp_config(3)
  with config.unlocked():
    config.model.name = 'tests/test_models.py:_BareModule'
  with pytest.raises(ValueError, match='is not a models.VAE'):
    models.make(config.model, jax.random.key(0))


class _Bare(nnx.Module):
  def __init__(self, rngs):
    self.linear = nnx.Linear(D, 2, rngs=rngs)


def _BareModule(model_config, *, rngs):  # pylint: disable=invalid-name
  del model_config
  return _Bare(rngs)
