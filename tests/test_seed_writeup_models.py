"""Tests of experiments/seed_writeups/models.py: the write-ups' initialisers, sampling slip and clipped BCE."""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from vae import models

MODELS = 'experiments/seed_writeups/models.py'


def _config(name, **keys):
  return ml_collections.ConfigDict({'name': f'{MODELS}:{name}', 'encoder_widths': (400,), 'decoder_widths': (400,),
                                    'activation': 'relu', 'latent_dim': 20, 'conv_impl': 'auto', **keys})


def _layers(params):
  """{path: (kernel, bias)} of every layer in a pure params dict."""
  flat = dict(jax.tree_util.tree_flatten_with_path(params)[0])
  out = {}
  for path, leaf in flat.items():
    layer = '/'.join(str(k.key) for k in path[:-1])
    out.setdefault(layer, {})[path[-1].key] = np.asarray(leaf)
  return out


def test_torch_init_is_uniform_in_one_over_root_fan_in():
  _, params = models.init(_config('TorchDenseVAE'), jax.random.key(0))
  for layer, p in _layers(params).items():
    bound = 1 / math.sqrt(p['kernel'].shape[0])
    for name in ('kernel', 'bias'):
      assert np.abs(p[name]).max() <= bound, (layer, name)
    # U(-b, b) has std b / sqrt(3): a normal or zero init would fail this.
    assert np.std(p['kernel']) == pytest.approx(bound / math.sqrt(3), rel=0.05), layer
    assert np.std(p['bias']) == pytest.approx(bound / math.sqrt(3), rel=0.25), layer


@pytest.mark.parametrize('name', ['XavierDenseVAE', 'KerasConvVAE'])
def test_glorot_uniform_kernels_and_zero_biases(name):
  config = _config(name, activation='softplus', encoder_widths=(500, 500), decoder_widths=(500, 500))
  _, params = models.init(config, jax.random.key(0))
  layers = _layers(params)
  if name == 'KerasConvVAE':
    assert layers['decoder/out']['kernel'].shape == (2, 2, 32, 1)  # 001's last layer: a 2x2 kernel.
  for layer, p in layers.items():
    kernel = p['kernel']
    receptive = math.prod(kernel.shape[:-2])
    limit = math.sqrt(6 / (receptive * (kernel.shape[-2] + kernel.shape[-1])))
    assert np.abs(kernel).max() <= limit and np.std(kernel) == pytest.approx(limit / math.sqrt(3), rel=0.1), layer
    assert not np.any(p['bias']), layer


class _Identity(nnx.Module):
  def __call__(self, z):
    return z


class _Fixed(nnx.Module):
  def __call__(self, x):
    return jnp.full((x.shape[0], 2), 0.5), jnp.log(jnp.array([[0.3, 2.0]])) * jnp.ones((x.shape[0], 1))


def test_the_slip_samples_with_exp_logvar_as_the_standard_deviation():
  """001's and 004's sampler: z = mean + exp(logvar) * eps, so the codes' std is exp(logvar), not exp(logvar/2)."""
  from experiments.seed_writeups import models as writeup  # pylint: disable=g-import-not-at-top
  vae = writeup.LogStdSampleVAE(_Fixed(), _Identity())
  z, mean, logvar = vae(jnp.zeros((20000, 784)), jax.random.key(0))
  np.testing.assert_allclose(np.mean(z, 0), mean[0], atol=0.05)
  np.testing.assert_allclose(np.std(z, 0), [0.3, 2.0], rtol=0.03)
  assert not np.allclose(np.std(z, 0), np.exp(0.5 * np.asarray(logvar[0])), rtol=0.1)
  # The draw the -ELBO decodes (training) slips the same way; the IW estimate's draw is the posterior's.
  x = jnp.zeros((20000, 784))
  eps = jax.random.normal(jax.random.key(1), (20000, 2))
  trained, levels = vae.elbo_draw(vae.infer(x), eps)
  scored, _ = vae.draw(vae.infer(x), eps)
  np.testing.assert_allclose(np.std(trained, 0), [0.3, 2.0], rtol=0.03)
  np.testing.assert_allclose(np.std(scored, 0), np.sqrt([0.3, 2.0]), rtol=0.03)
  np.testing.assert_array_equal(levels[0].z, scored)  # The KL's level is the posterior's draw.


def test_keras_bce_clips_probabilities():
  from experiments.seed_writeups import models as writeup  # pylint: disable=g-import-not-at-top
  vae = writeup.KerasBCEVAE(_Fixed(), _Identity())
  p = jax.nn.sigmoid(vae.decode(jnp.array([[-50.0, 0.3, 50.0]])))
  np.testing.assert_allclose(p, [[1e-7, jax.nn.sigmoid(0.3), 1 - 1e-7]], rtol=1e-5)
