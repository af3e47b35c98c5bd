"""The dense (multilayer perceptron) encoder and decoder, and the dense VAE (`model.name = 'dense'`)."""
from flax import nnx

from vae.models.base import ACTIVATIONS, VAE, input_size, output_size


class DenseEncoder(nnx.Module):
  """x -> hidden layers -> (mean, logvar) of q(z|x)."""

  def __init__(self, widths, latent_dim, activation, *, input_size, rngs):
    sizes = (input_size,) + tuple(widths)
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.mean = nnx.Linear(sizes[-1], latent_dim, rngs=rngs)
    self.logvar = nnx.Linear(sizes[-1], latent_dim, rngs=rngs)
    self.activation = activation

  def __call__(self, x):
    for layer in self.layers:
      x = self.activation(layer(x))
    return self.mean(x), self.logvar(x)


class DenseDecoder(nnx.Module):
  """z -> hidden layers -> `output_size` outputs (H*W*P: the likelihood's per pixel)."""

  def __init__(self, widths, latent_dim, activation, *, output_size, rngs):
    sizes = (latent_dim,) + tuple(widths) + (output_size,)
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.activation = activation

  def __call__(self, z):
    for layer in self.layers[:-1]:
      z = self.activation(layer(z))
    return self.layers[-1](z)


def dense_vae(model_config, *, rngs):
  activation = ACTIVATIONS[model_config.activation]
  return VAE(DenseEncoder(model_config.encoder_widths, model_config.latent_dim, activation,
                          input_size=input_size(model_config), rngs=rngs),
             DenseDecoder(model_config.decoder_widths, model_config.latent_dim, activation,
                          output_size=output_size(model_config), rngs=rngs))
