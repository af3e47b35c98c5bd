"""The VampPrior code's networks (Tomczak & Welling, 2018; `jmtomczak/vae_vampprior`): gated dense layers with
He-normal weights, the encoder's log-variance bounded as its Hardtanh, the decoder's probabilities clamped; the
two-level models (vae/models/hierarchical.py) are built of them too."""
import math

import jax
import jax.numpy as jnp
from flax import nnx

from vae.models.base import VAE, input_size, output_size

HE = nnx.initializers.variance_scaling(2.0, 'fan_in', 'normal')  # std sqrt(2 / fan_in), as the VampPrior code.
LOGVAR_BOUNDS = (-6.0, 2.0)  # The VampPrior code's Hardtanh on the encoder's log-variance.
PROBABILITY_BOUNDS = (1e-5, 1 - 1e-5)  # ... and its clamp of the decoder's Bernoulli probabilities.


class GatedDense(nnx.Module):
  """h(x) * sigmoid(g(x)), two linear maps of x (Dauphin et al., 2017), He-normal weights, zero biases."""

  def __init__(self, a, b, *, rngs):
    self.h = nnx.Linear(a, b, kernel_init=HE, rngs=rngs)
    self.g = nnx.Linear(a, b, kernel_init=HE, rngs=rngs)

  def __call__(self, x):
    return self.h(x) * jax.nn.sigmoid(self.g(x))


class GatedEncoder(nnx.Module):
  """x -> gated layers -> (mean, logvar), logvar bounded to LOGVAR_BOUNDS."""

  def __init__(self, widths, latent_dim, *, input_size, rngs):
    sizes = (input_size,) + tuple(widths)
    self.layers = nnx.List([GatedDense(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.mean = nnx.Linear(sizes[-1], latent_dim, kernel_init=HE, rngs=rngs)
    self.logvar = nnx.Linear(sizes[-1], latent_dim, kernel_init=HE, rngs=rngs)

  def __call__(self, x):
    for layer in self.layers:
      x = layer(x)
    return self.mean(x), jnp.clip(self.logvar(x), *LOGVAR_BOUNDS)


class GatedDecoder(nnx.Module):
  """z -> gated layers -> `output_size` outputs, clipped so that Bernoulli probabilities
  stay in PROBABILITY_BOUNDS."""

  def __init__(self, widths, latent_dim, *, output_size, rngs):
    sizes = (latent_dim,) + tuple(widths)
    self.layers = nnx.List([GatedDense(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.out = nnx.Linear(sizes[-1], output_size, kernel_init=HE, rngs=rngs)

  def __call__(self, z):
    for layer in self.layers:
      z = layer(z)
    return clip_logits(self.out(z))


def clip_logits(logits):
  """Logits clipped so that the Bernoulli probabilities stay in PROBABILITY_BOUNDS (the VampPrior code's clamp)."""
  bound = math.log(PROBABILITY_BOUNDS[1] / PROBABILITY_BOUNDS[0])  # logit(1 - 1e-5) = -logit(1e-5)
  return jnp.clip(logits, -bound, bound)


def gated_vae(model_config, *, rngs):
  """The VampPrior code's VAE (Tomczak & Welling, 2018): gated dense layers, He init, bounded log-variance."""
  return VAE(GatedEncoder(model_config.encoder_widths, model_config.latent_dim,
                          input_size=input_size(model_config), rngs=rngs),
             GatedDecoder(model_config.decoder_widths, model_config.latent_dim,
                          output_size=output_size(model_config), rngs=rngs))
