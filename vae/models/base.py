"""The VAE of one level that every model builds on, its priors, and the sizes an image shape gives.

Images of `model.image_shape` (H, W, C) enter flat, (N, H*W*C); decoders return the likelihood's flat outputs,
(N, H*W*P), P per pixel (vae/likelihoods.py: P = C for Bernoulli and Gaussian).

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

from vae import likelihoods, losses

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
