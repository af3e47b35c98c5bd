"""The write-ups' own models, defined outside vae/ and named in a config: `model.name = 'experiments/seed_writeups/
models.py:TanhHeadVAE'` (the README's "Your own model"). Each is a factory (model_config, *, rngs) -> module.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from vae import models

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
