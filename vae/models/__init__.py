"""The models: Flax NNX modules, one file per family, and the functional boundary the training code uses.

`init` splits a module once into a static graph definition and a pure dict of parameters; `apply` merges them
inside pure, jit-able functions. The VAE every model builds on, its priors and the image-shape sizes are in base.py
(all re-exported here); the families in dense.py, conv.py, gated.py (the VampPrior code's) and hierarchical.py (of
two levels); convolution.py holds the conv layers. A model of one's own is a factory named in the config
(vae/registry.py).
"""
import jax
import jax.numpy as jnp
from flax import nnx

from vae import registry
from vae.models.base import (ACTIVATIONS, DEFAULT_IMAGE_SHAPE, IMAGE_SIZE, VAE, Exemplars, ShapeError,
                             bits_per_dim, image_shape, input_size, likelihood_of, mixture_draw, output_size,
                             reparameterize, sample_prior)
from vae.models.conv import ConvDecoder, ConvEncoder
from vae.models.dense import DenseDecoder, DenseEncoder

# What `models.X` names: the boundary below, base.py's VAE, priors and sizes, and the layers a model of one's own
# builds on.
__all__ = ['ACTIVATIONS', 'DEFAULT_IMAGE_SHAPE', 'IMAGE_SIZE', 'PRIORS', 'VAE', 'ConvDecoder', 'ConvEncoder',
           'DenseDecoder', 'DenseEncoder', 'Exemplars', 'ShapeError', 'apply', 'bits_per_dim', 'image_shape', 'init',
           'input_size', 'likelihood_of', 'make', 'mixture_draw', 'output_size', 'reparameterize', 'sample_prior']

PRIORS = ('standard', 'vamp', 'exemplar')
# model.output_bias: where the decoder's last bias starts. 'data_mean' (Bernoulli logits of a dense decoder: the
# built-in models below) is yburda/iwae's: the logit of the training images' mean pixel, clipped to this range.
OUTPUT_BIASES, DATA_MEAN_MODELS, DATA_MEAN_CLIP = ('zero', 'data_mean'), ('dense', 'two_layer'), (0.001, 0.999)
# The VampPrior code's initialisation of the pseudo-inputs, N(0.05, 0.01^2) per pixel (configs/vampprior.py says
# which version of it).
PSEUDO_INPUT_MEAN, PSEUDO_INPUT_STD = 0.05, 0.01


def make(model_config, key, pixel_mean=None):
  """Builds the VAE a `config.model` describes, parameters initialised from `key`; under `model.output_bias=
  'data_mean'`, the decoder's output bias at the logit of `pixel_mean` (the training images' mean, H*W*C values in
  [0, 1]), when given (a model restored from a checkpoint needs none).

  The conv implementation is a static attribute: the parameters are the same whatever it is, so a checkpoint
  trained with one loads into the other. Configs saved before `model.conv_impl` existed mean 'auto', before
  `model.prior` 'standard'. The VampPrior's pseudo-inputs are drawn after the networks' parameters, so that the
  networks start the same under either prior; any models.VAE, one's own included, can take it. The exemplar
  prior's log-variance starts N(0, 1), as the Exemplar VAE code's; it is built for VAEs of one level.
  """
  rngs = nnx.Rngs(params=key)
  module = registry.factory(model_config.name)(model_config, rngs=rngs)
  if isinstance(module, VAE):
    module.input_size = input_size(model_config)
  if model_config.get('prior', 'standard') == 'exemplar':
    if not isinstance(module, VAE) or type(module).infer is not VAE.infer:
      raise ValueError(f'model.prior=exemplar: {model_config.name} is not a models.VAE of one level')
    module.exemplar_logvar = nnx.data(nnx.Param(jax.random.normal(rngs.params(), ())))
  if model_config.get('prior', 'standard') == 'vamp':
    if not isinstance(module, VAE):
      raise ValueError(f'model.prior=vamp: {model_config.name} is not a models.VAE (its pseudo-inputs need one)')
    shape = (model_config.num_pseudo_inputs, input_size(model_config))
    module.pseudo_inputs = nnx.data(nnx.Param(
        PSEUDO_INPUT_MEAN + PSEUDO_INPUT_STD * jax.random.normal(rngs.params(), shape)))
  if model_config.get('output_bias', 'zero') == 'data_mean' and pixel_mean is not None:
    if not isinstance(getattr(module, 'decoder', None), DenseDecoder):
      raise ValueError(f'model.output_bias=data_mean: {model_config.name} has no dense decoder of logits')
    mean = jnp.clip(jnp.asarray(pixel_mean, jnp.float32).reshape(-1), *DATA_MEAN_CLIP)
    module.decoder.layers[-1].bias[...] = jnp.log(mean) - jnp.log1p(-mean)
  return module


def init(model_config, key, pixel_mean=None):
  """(graphdef, params): the static structure and a pure dict of parameter arrays (`pixel_mean`: make's)."""
  graphdef, state = nnx.split(make(model_config, key, pixel_mean))
  return graphdef, nnx.to_pure_dict(state)


def apply(graphdef, params, method, *args):
  """Calls `method` of the module `graphdef` with `params`; pure. A module of one's own that has the four methods
  of a one-level VAE (encode, decode, __call__, prior) gets VAE's infer, noise_size, draw, elbo_draw, generate."""
  model = nnx.merge(graphdef, params)
  if not hasattr(model, method):
    model = _OneLevel(model)
  return getattr(model, method)(*args)


class _OneLevel:
  """A module of one's own with a one-level VAE's encode, decode and prior, seen with VAE's other methods."""
  infer, noise_size, draw, elbo_draw, generate = VAE.infer, VAE.noise_size, VAE.draw, VAE.elbo_draw, VAE.generate
  prior_draw = VAE.prior_draw

  def __init__(self, module):
    self.module = module

  def encode(self, x):
    return self.module.encode(x)

  def decode(self, z):
    return self.module.decode(z)

  def prior(self, exemplars=None):
    del exemplars  # Only a models.VAE takes the exemplar prior (make).
    return self.module.prior()
