"""Encoders, decoders and the VAE as Flax NNX modules, and the functional boundary the training code uses.

`init` splits a module once into a static graph definition and a pure dict of parameters; `apply` merges them
inside pure, jit-able functions. Images of `model.image_shape` (H, W, C) enter flat, (N, H*W*C); decoders return the
likelihood's flat outputs, (N, H*W*P), P per pixel (vae/likelihoods.py: P = C for Bernoulli and Gaussian).

Every model is scored through one interface, whatever its number of stochastic levels: `infer(x)` computes what
the draws need once per batch, `draw(inferred, eps)` turns standard-normal noise into the decoder's logits and the
levels (losses.Level: each z with its posterior and prior), from which losses.log_weight and losses.kl follow.
`encode`, `decode` and `prior` are the top level's, for the latent metrics and figures.
"""
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from vae import conv, likelihoods, losses, registry

ACTIVATIONS = {
    'relu': jax.nn.relu, 'tanh': jnp.tanh, 'softplus': jax.nn.softplus, 'elu': jax.nn.elu, 'gelu': jax.nn.gelu,
    'leaky_relu': jax.nn.leaky_relu, 'sigmoid': jax.nn.sigmoid,
}
IMAGE_SIZE = 28 * 28
DEFAULT_IMAGE_SHAPE = (28, 28, 1)  # A config saved before model.image_shape existed: the MNIST family's.


class ShapeError(ValueError):
  """A model that cannot take the images' shape (vae/validation.py says so in one line, before anything runs)."""


def image_shape(model_config):
  """(H, W, C) of the images `config.model` is built for."""
  return tuple(int(d) for d in (model_config.get('image_shape') or DEFAULT_IMAGE_SHAPE))


def likelihood_of(model_config):
  """The likelihood (vae/likelihoods.py) `config.model` names, for images of its shape."""
  return likelihoods.make(model_config.get('likelihood', 'bernoulli'), sigma=model_config.get('sigma', 1.0),
                          num_mixtures=model_config.get('num_mixtures', 10), channels=image_shape(model_config)[-1])


def input_size(model_config):
  """H * W * C: a flat image's size."""
  return math.prod(image_shape(model_config))


def bits_per_dim(model_config):
  """The factor from nats per image to bits per dimension, 1 / (H W C ln 2), under a discrete (8-bit) likelihood;
  0 under the others, whose densities (Gaussian) or cross-entropies of gray pixels (Bernoulli) are not bits."""
  if not likelihood_of(model_config).discrete:
    return 0.0
  return 1.0 / (input_size(model_config) * math.log(2))


def output_size(model_config):
  """H * W * P: the decoder's flat output size under the config's likelihood."""
  height, width, _ = image_shape(model_config)
  return height * width * likelihood_of(model_config).outputs_per_pixel()


class DenseEncoder(nnx.Module):
  """x -> hidden layers -> (mean, logvar) of q(z|x)."""

  def __init__(self, widths, latent_dim, activation, *, input_size=IMAGE_SIZE, rngs):
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
  """z -> hidden layers -> `output_size` outputs (784 logits by default)."""

  def __init__(self, widths, latent_dim, activation, *, output_size=IMAGE_SIZE, rngs):
    sizes = (latent_dim,) + tuple(widths) + (output_size,)
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.activation = activation

  def __call__(self, z):
    for layer in self.layers[:-1]:
      z = self.activation(layer(z))
    return self.layers[-1](z)


class ConvEncoder(nnx.Module):
  """Conv 32 -> `downsamples` x Conv 64 stride 2 -> Conv 64 -> Conv 64 -> Dense 32 -> (mean, logvar); 3x3 kernels,
  'SAME'. Images of any (H, W, C) whose H and W divide by 2^downsamples."""

  def __init__(self, latent_dim, activation, *, image_shape=DEFAULT_IMAGE_SHAPE, downsamples=1, impl='patch', rngs):
    height, width, channels = check_conv_shape(image_shape, downsamples)
    self.convs = nnx.List(
        [conv.Conv(channels, 32, impl=impl, rngs=rngs), conv.Conv(32, 64, strides=(2, 2), impl=impl, rngs=rngs)]
        + [conv.Conv(64, 64, strides=(2, 2), impl=impl, rngs=rngs) for _ in range(downsamples - 1)]
        + [conv.Conv(64, 64, impl=impl, rngs=rngs), conv.Conv(64, 64, impl=impl, rngs=rngs)])
    self.dense = nnx.Linear((height >> downsamples) * (width >> downsamples) * 64, 32, rngs=rngs)
    self.mean = nnx.Linear(32, latent_dim, rngs=rngs)
    self.logvar = nnx.Linear(32, latent_dim, rngs=rngs)
    self.activation = activation
    self.image_shape = tuple(image_shape)

  def __call__(self, x):
    h = x.reshape(x.shape[:-1] + self.image_shape)
    for conv in self.convs:
      h = self.activation(conv(h))
    h = self.activation(self.dense(h.reshape(h.shape[:-3] + (-1,))))
    return self.mean(h), self.logvar(h)


class ConvDecoder(nnx.Module):
  """Dense (H, W) / 2^downsamples x 64 -> (downsamples - 1) x ConvTranspose 64 stride 2 -> ConvTranspose 32 stride 2
  -> Conv P: the likelihood's `outputs_per_pixel` at each of the H x W pixels, flat."""

  def __init__(self, latent_dim, activation, *, image_shape=DEFAULT_IMAGE_SHAPE, downsamples=1, outputs_per_pixel=1,
               impl='patch', rngs):
    height, width, _ = check_conv_shape(image_shape, downsamples)
    self.start = (height >> downsamples, width >> downsamples, 64)
    self.dense = nnx.Linear(latent_dim, math.prod(self.start), rngs=rngs)
    self.ups = nnx.List([conv.UpConv(64, 64, impl=impl, rngs=rngs) for _ in range(downsamples - 1)])
    self.deconv = conv.UpConv(64, 32, impl=impl, rngs=rngs)
    self.out = conv.Conv(32, outputs_per_pixel, impl=impl, rngs=rngs)
    self.activation = activation

  def __call__(self, z):
    h = self.activation(self.dense(z)).reshape(z.shape[:-1] + self.start)
    for up in self.ups:
      h = self.activation(up(h))
    h = self.activation(self.deconv(h))
    return self.out(h).reshape(z.shape[:-1] + (-1,))


def check_conv_shape(image_shape, downsamples):
  """(H, W, C), or a ShapeError unless H and W divide by 2^downsamples (each stride halves them exactly)."""
  height, width, channels = image_shape
  if height % (1 << downsamples) or width % (1 << downsamples) or downsamples < 1:
    halvings = ' -> '.join(f'{height / 2 ** i:g}' for i in range(downsamples + 1))
    raise ShapeError(f'images of {height} x {width} x {channels} do not halve {downsamples} times ({halvings}): '
                     f'set model.conv_downsamples so that 2^downsamples divides {height} and {width}, or '
                     f'data.image_size')
  return height, width, channels


class VAE(nnx.Module):
  """A Gaussian-posterior VAE of one level: encode -> reparameterised sample -> decode, and its prior p(z)."""

  def __init__(self, encoder, decoder):
    self.encoder = encoder
    self.decoder = decoder
    self.pseudo_inputs = None  # (K, H*W*C) under the VampPrior (model.prior = 'vamp'), set by `make`.
    self.exemplar_logvar = None  # () under the exemplar prior (model.prior = 'exemplar'), set by `make`.
    self.input_size = IMAGE_SIZE  # A flat image's size H*W*C, for prior()'s shape; `make` sets the config's.

  def prior(self, exemplars=None):
    """losses.Mixture (means, logvars), each (K, D), of the top level: p(z) = (1/K) sum_k N(z; means[k],
    diag(exp(logvars[k]))).

    The standard normal is one component at (0, 0). The VampPrior (Tomczak & Welling, 2018) is the posteriors of
    K learnt pseudo-inputs, clipped to [0, 1] as their Hardtanh(0, 1) does. The exemplar prior (Norouzi, Fleet &
    Norouzi, 2020) is the posterior means of the training images `exemplars` (an Exemplars) with one learnt
    variance shared by every component and dimension; with `exemplars.own_ids`, each image of the batch leaves its
    own exemplar out (their training objective).
    """
    if self.exemplar_logvar is not None:
      return _exemplar_prior(self, exemplars)
    if self.pseudo_inputs is None:
      mean, _ = self.encode(jnp.zeros((1, self.input_size)))  # For its shape only: jit prunes the computation.
      return losses.Mixture(jnp.zeros_like(mean), jnp.zeros_like(mean))
    return losses.Mixture(*self.encode(jnp.clip(self.pseudo_inputs[...], 0.0, 1.0)))

  def encode(self, x):
    return self.encoder(x)

  def decode(self, z):
    return self.decoder(z)

  def __call__(self, x, key):
    mean, logvar = self.encode(x)
    z = reparameterize(key, mean, logvar)
    return self.decode(z), mean, logvar

  def infer(self, x, exemplars=None):
    """What every draw for the batch `x` needs, computed once: q(z|x)'s (mean, logvar) and the prior (given its
    `exemplars` under the exemplar prior)."""
    return self.encode(x), losses.as_prior(_prior_of(self, exemplars))

  def noise_size(self, inferred):
    """The size of one draw's standard-normal noise per image: the sum of the levels' dimensions."""
    return inferred[0][0].shape[-1]

  def draw(self, inferred, eps):
    """(logits, levels) of the draws `eps` (..., N, noise_size), standard normal: z = mean + exp(logvar / 2) eps,
    the same z as reparameterize(key, mean, logvar) with eps = normal(key)."""
    (mean, logvar), prior = inferred
    z = mean + jnp.exp(0.5 * logvar) * eps
    return self.decode(z), (losses.Level(z, mean, logvar, prior),)

  def prior_draw(self, inferred, eps, u):
    """(logits, levels) as `draw`'s, but z drawn from the prior (down every level) instead of q(z|x): the mixture
    component floor(u K) for u in [0, 1), then its mean + std eps; each level keeps q's parameters at that z, so
    losses.log_densities scores the draw under both (the defensive estimate, vae/iwae.py)."""
    (mean, logvar), prior = inferred
    z = mixture_draw(prior, eps, u)
    return self.decode(z), (losses.Level(z, mean, logvar, prior),)

  def elbo_draw(self, inferred, eps):
    """The draw the -ELBO decodes (training's 'elbo' objective, the per-epoch scores): `draw`'s, unless a model
    trains on other codes than its posterior's draws (experiments/seed_writeups/models.py, a write-up's slip)."""
    return self.draw(inferred, eps)

  def generate(self, key, n, exemplars=None):
    """Logits of n images decoded from codes drawn from the prior (down every level)."""
    return self.decode(sample_prior(_prior_of(self, exemplars), key, n))


def _prior_of(model, exemplars):
  """model.prior(), given its exemplars only under the exemplar prior: a subclass's own prior(self) keeps working."""
  return model.prior() if exemplars is None else model.prior(exemplars)


class Exemplars(NamedTuple):
  """The exemplar prior's components: training images (K, H*W*C), as the encoder reads them (gray, in [0, 1]); and,
  while training, their indices in the training set, `ids` (K,), and the batch's, `own_ids` (N,), so that each
  image's own exemplar is left out of its prior (steps.training_exemplars)."""
  images: Any
  ids: Any = None
  own_ids: Any = None


def _exemplar_prior(model, exemplars):
  if exemplars is None:
    raise ValueError('model.prior=exemplar: the prior is made of training images (models.Exemplars), and none '
                     'were given')
  means, _ = model.encode(exemplars.images)
  logvars = jnp.broadcast_to(model.exemplar_logvar[...], means.shape)
  if exemplars.own_ids is None:
    return losses.Mixture(means, logvars)
  left_out = exemplars.own_ids[:, None] == exemplars.ids[None, :]  # (N, K)
  # An image that drew only its own exemplar (likely only at a tiny K or training set) keeps them: no -inf prior.
  left_out &= ~jnp.all(left_out, axis=-1, keepdims=True)
  kept = jnp.sum(~left_out, axis=-1, keepdims=True)
  return losses.WeightedMixture(means, logvars, jnp.where(left_out, -jnp.inf, -jnp.log(kept.astype(means.dtype))))


def mixture_draw(prior, eps, u):
  """Draws of the mixture `prior` (means, logvars), (K, D), from standard-normal `eps` (..., D) and uniform `u`
  (...): component floor(u K), then its mean + exp(logvar / 2) eps."""
  means, logvars = prior[:2]
  k = jnp.minimum((u * means.shape[0]).astype(jnp.int32), means.shape[0] - 1)
  return means[k] + jnp.exp(0.5 * logvars[k]) * eps


def sample_prior(prior, key, n):
  """n codes drawn from the mixture `prior` = (means, logvars), (K, D): a uniform component, then its Gaussian."""
  means, logvars = prior[:2]
  component_key, noise_key = jax.random.split(key)
  k = jax.random.randint(component_key, (n,), 0, means.shape[0])
  return reparameterize(noise_key, means[k], logvars[k])


def reparameterize(key, mean, logvar):
  """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I): a sample of q(z|x) differentiable in (mean, logvar)."""
  return mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)


def dense_vae(model_config, *, rngs):
  activation = ACTIVATIONS[model_config.activation]
  return VAE(DenseEncoder(model_config.encoder_widths, model_config.latent_dim, activation,
                          input_size=input_size(model_config), rngs=rngs),
             DenseDecoder(model_config.decoder_widths, model_config.latent_dim, activation,
                          output_size=output_size(model_config), rngs=rngs))


def conv_vae(model_config, *, rngs):
  activation, impl = ACTIVATIONS[model_config.activation], conv.conv_impl(model_config.get('conv_impl', 'auto'))
  shape, downsamples = image_shape(model_config), model_config.get('conv_downsamples', 1)
  return VAE(ConvEncoder(model_config.latent_dim, activation, image_shape=shape, downsamples=downsamples, impl=impl,
                         rngs=rngs),
             ConvDecoder(model_config.latent_dim, activation, image_shape=shape, downsamples=downsamples,
                         outputs_per_pixel=likelihood_of(model_config).outputs_per_pixel(), impl=impl, rngs=rngs))


PRIORS = ('standard', 'vamp', 'exemplar')
# The VampPrior code's initialisation of the pseudo-inputs, N(0.05, 0.01^2) per pixel (configs/vampprior.py says
# which version of it).
PSEUDO_INPUT_MEAN, PSEUDO_INPUT_STD = 0.05, 0.01


def make(model_config, key):
  """Builds the VAE a `config.model` describes, parameters initialised from `key`.

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
  return module


def init(model_config, key):
  """(graphdef, params): the static structure and a pure dict of parameter arrays."""
  graphdef, state = nnx.split(make(model_config, key))
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
