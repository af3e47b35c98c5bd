"""The write-ups' own models, defined outside vae/ and named in a config: `model.name = 'experiments/seed_writeups/
models.py:TanhHeadVAE'` (docs/models.md). Each is a factory (model_config, *, rngs) -> module.
"""
import math

import jax
import jax.numpy as jnp
from flax import nnx

from vae import models
from vae.models import convolution

XAVIER = nnx.initializers.xavier_uniform()  # U(-sqrt(6 / (in + out)), +...), the write-ups' "xavier"; biases zero.


def _linear(a, b, rngs):
  return nnx.Linear(a, b, kernel_init=XAVIER, rngs=rngs)


class TanhHeadEncoder(nnx.Module):
  """000's encoder: ReLU layers, then one layer of 2 x latent through a tanh; its first half, through a softplus
  (+ 1e-6), is the posterior's standard deviation, its second half the mean."""

  def __init__(self, widths, latent_dim, *, rngs):
    sizes = (models.IMAGE_SIZE,) + tuple(widths)
    self.layers = nnx.List([_linear(a, b, rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.head = _linear(sizes[-1], 2 * latent_dim, rngs)
    self.latent_dim = latent_dim

  def __call__(self, x):
    for layer in self.layers:
      x = jax.nn.relu(layer(x))
    a = jnp.tanh(self.head(x))
    std = 1e-6 + jax.nn.softplus(a[..., :self.latent_dim])
    return a[..., self.latent_dim:], 2 * jnp.log(std)  # (mean, logvar)


class TanhInputDecoder(nnx.Module):
  """000's decoder: its first layer through a tanh, then ReLU layers, then 784 logits (its sigmoid is the
  Bernoulli likelihood's)."""

  def __init__(self, widths, latent_dim, *, rngs):
    sizes = (latent_dim,) + tuple(widths) + (models.IMAGE_SIZE,)
    self.layers = nnx.List([_linear(a, b, rngs) for a, b in zip(sizes[:-1], sizes[1:])])

  def __call__(self, z):
    z = jnp.tanh(self.layers[0](z))
    for layer in self.layers[1:-1]:
      z = jax.nn.relu(layer(z))
    return self.layers[-1](z)


def TanhHeadVAE(model_config, *, rngs):  # pylint: disable=invalid-name  # Named like the module it makes.
  """000's VAE (dense Fashion-MNIST, TensorFlow 1): encoder 784-512-256 ReLU -> 256 tanh head, decoder
  128 -tanh- 256 -ReLU- 512 -> 784, widths from model.encoder_widths / decoder_widths."""
  return models.VAE(TanhHeadEncoder(model_config.encoder_widths, model_config.latent_dim, rngs=rngs),
                    TanhInputDecoder(model_config.decoder_widths, model_config.latent_dim, rngs=rngs))


class LogStdSampleVAE(models.VAE):
  """A VAE that samples z = mean + exp(logvar) * eps, the slip of 001 (Keras) and 004 (PyTorch), while its KL
  (the closed form) reads logvar as the log-variance: it trains on codes of standard deviation exp(logvar), not
  exp(logvar / 2). Evaluation's IW estimate draws from N(mean, exp(logvar)), the posterior the KL describes; any
  proposal gives a valid estimate of log p(x)."""

  def __call__(self, x, key):
    mean, logvar = self.encode(x)
    return self.decode(mean + jnp.exp(logvar) * jax.random.normal(key, mean.shape, mean.dtype)), mean, logvar

  def elbo_draw(self, inferred, eps):
    """The level of the posterior's draw, decoded at mean + exp(logvar) eps instead (the KL sees only the level)."""
    (mean, logvar), _ = inferred
    _, levels = self.draw(inferred, eps)
    return self.decode(mean + jnp.exp(logvar) * eps), levels


def XavierDenseVAE(model_config, *, rngs):  # pylint: disable=invalid-name
  """002's VAE (TensorFlow 1, the sklearn-like class): dense layers of model.activation (softplus), every weight
  Xavier-uniform, every bias zero, heads included."""
  activation = models.ACTIVATIONS[model_config.activation]
  vae = models.VAE(models.DenseEncoder(model_config.encoder_widths, model_config.latent_dim, activation,
                                       input_size=models.input_size(model_config), rngs=rngs),
                   models.DenseDecoder(model_config.decoder_widths, model_config.latent_dim, activation,
                                       output_size=models.output_size(model_config), rngs=rngs))
  _reinitialise(vae, XAVIER, nnx.initializers.zeros, rngs)
  return vae


def TorchDenseVAE(model_config, *, rngs):  # pylint: disable=invalid-name
  """004's VAE (PyTorch): 784-400 ReLU -> mean and "sigma" heads of 20, 20-400 ReLU -> 784; nn.Linear's default
  init (weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))); it samples with exp(sigma) as the standard
  deviation and takes sigma as the log-variance in its KL (LogStdSampleVAE)."""
  activation = models.ACTIVATIONS[model_config.activation]
  vae = LogStdSampleVAE(
      models.DenseEncoder(model_config.encoder_widths, model_config.latent_dim, activation,
                          input_size=models.input_size(model_config), rngs=rngs),
      models.DenseDecoder(model_config.decoder_widths, model_config.latent_dim, activation,
                          output_size=models.output_size(model_config), rngs=rngs))
  _reinitialise(vae, TORCH_UNIFORM, None, rngs)
  return vae


class KerasBCEVAE(LogStdSampleVAE):
  """LogStdSampleVAE whose decoder's probabilities are clipped to [1e-7, 1 - 1e-7], as Keras's binary_crossentropy
  clips them (001 flattens the sigmoid's output first, so Keras cannot take the logits path): a pixel costs at most
  16.1 nats, and none beyond the clip has a gradient. (Keras then takes log(p + 1e-7), so its bound is 15.4 nats;
  inside the clip the two differ by at most 1e-7 / p.)"""
  BOUND = math.log((1 - 1e-7) / 1e-7)

  def decode(self, z):
    return jnp.clip(self.decoder(z), -self.BOUND, self.BOUND)


def KerasConvVAE(model_config, *, rngs):  # pylint: disable=invalid-name
  """001's VAE (Keras): the conv model's layers with a 2x2 kernel in the decoder's last convolution, Keras's
  default init (Glorot-uniform kernels, zero biases), its sampling slip and its clipped cross-entropy
  (KerasBCEVAE)."""
  activation = models.ACTIVATIONS[model_config.activation]
  impl = convolution.conv_impl(model_config.get('conv_impl', 'auto'))
  decoder = models.ConvDecoder(model_config.latent_dim, activation, image_shape=models.image_shape(model_config),
                               impl=impl, rngs=rngs)
  decoder.out = convolution.Conv(32, 1, kernel_size=(2, 2), impl=impl, rngs=rngs)
  vae = KerasBCEVAE(models.ConvEncoder(model_config.latent_dim, activation,
                                       image_shape=models.image_shape(model_config), impl=impl, rngs=rngs), decoder)
  _reinitialise(vae, XAVIER, nnx.initializers.zeros, rngs)
  return vae


def TORCH_UNIFORM(key, shape, dtype=jnp.float32):  # pylint: disable=invalid-name
  """PyTorch's nn.Linear default for a (fan_in, fan_out) kernel: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  return jax.random.uniform(key, shape, dtype, -1.0, 1.0) / math.sqrt(shape[0])


def _reinitialise(module, kernel_init, bias_init, rngs):
  """Draws every kernel of `module` (Linear and Conv: a 'kernel' and a 'bias') anew from kernel_init, and every
  bias from bias_init (None: TORCH_UNIFORM with the layer's fan-in)."""
  for _, layer in nnx.iter_graph(module):
    if isinstance(layer, nnx.Module) and hasattr(layer, 'kernel') and hasattr(layer, 'bias'):
      kernel = layer.kernel[...]
      layer.kernel[...] = kernel_init(rngs.params(), kernel.shape, kernel.dtype)
      fan_in = math.prod(kernel.shape[:-1])
      if bias_init is None:
        bias = jax.random.uniform(rngs.params(), layer.bias.shape, layer.bias.dtype, -1.0, 1.0) / math.sqrt(fan_in)
      else:
        bias = bias_init(rngs.params(), layer.bias.shape, layer.bias.dtype)
      layer.bias[...] = bias
