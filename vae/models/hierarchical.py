"""VAEs of two stochastic levels, z2 on top of z1, scored through models.VAE's interface (infer, draw, generate).

- `gated_hvae` and `conv_hvae`: the VampPrior code's HVAE and convHVAE (Tomczak & Welling, 2018;
  jmtomczak/vae_vampprior, models/HVAE_2level.py and convHVAE_2level.py), inference top-down:
  q(z2|x) q(z1|x, z2), generation p(z2) p(z1|z2) p(x|z1, z2).
- `two_layer`: Burda, Grosse & Salakhutdinov (2016)'s two-stochastic-layer model, inference bottom-up:
  q(z1|x) q(z2|z1), generation p(z2) p(z1|z2) p(x|z1).

The prior p(z2) is models.VAE's (N(0, I), or the VampPrior through `encode`). `encode(x)` is the top level's
posterior, q(z2|x) (for `two_layer`, q(z2|z1) at z1 = the mean of q(z1|x)); `decode(z2)` decodes at z1 = the mean of
p(z1|z2); `generate` samples z2, then z1 ~ p(z1|z2). A draw's noise is one (..., N, noise_size) array, the levels'
in the order they are drawn.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from vae import losses
from vae.models import base, convolution, gated
from vae.models.dense import DenseDecoder, DenseEncoder
from vae.models.base import IMAGE_SIZE
from vae.models.gated import HE, GatedDense, GatedDecoder, GatedEncoder


class TwoLevelVAE(base.VAE):
  """The top-down HVAE: `encoder` is q(z2|x), `q_z1_x` x's features for q(z1|x, z2), `p_x` maps the two 300-wide
  codes' features, concatenated, to logits."""

  def __init__(self, encoder, q_z1_x, p_x, x_features, z1_dim, z2_dim, *, rngs):
    super().__init__(encoder, None)
    self.q_z1_x = q_z1_x
    self.q_z1_z2 = GatedDense(z2_dim, x_features, rngs=rngs)
    self.q_z1 = GatedEncoder((300,), z1_dim, input_size=2 * x_features, rngs=rngs)
    self.p_z1 = GatedEncoder((300, 300), z1_dim, input_size=z2_dim, rngs=rngs)
    self.p_x_z1 = GatedDense(z1_dim, 300, rngs=rngs)
    self.p_x_z2 = GatedDense(z2_dim, 300, rngs=rngs)
    self.p_x = p_x
    self.z1_dim = z1_dim

  def _logits(self, z1, z2):
    return self.p_x(jnp.concatenate([self.p_x_z1(z1), self.p_x_z2(z2)], axis=-1))

  def decode(self, z):
    return self._logits(self.p_z1(z)[0], z)

  def __call__(self, x, key):
    return _call(self, x, key)

  def infer(self, x):
    return self.encode(x), self.q_z1_x(x), losses.Mixture(*self.prior())

  def noise_size(self, inferred):
    return inferred[0][0].shape[-1] + self.z1_dim

  def draw(self, inferred, eps):
    (mean2, logvar2), x_features, prior = inferred
    z2 = mean2 + jnp.exp(0.5 * logvar2) * eps[..., :mean2.shape[-1]]
    h = self.q_z1_z2(z2)
    mean1, logvar1 = self.q_z1(jnp.concatenate([jnp.broadcast_to(x_features, h.shape), h], axis=-1))
    z1 = mean1 + jnp.exp(0.5 * logvar1) * eps[..., mean2.shape[-1]:]
    return self._logits(z1, z2), (losses.Level(z2, mean2, logvar2, prior),
                                  losses.Level(z1, mean1, logvar1, losses.Gaussian(*self.p_z1(z2))))

  def prior_draw(self, inferred, eps, u):
    (mean2, logvar2), x_features, prior = inferred
    z2 = base.mixture_draw(prior, eps[..., :mean2.shape[-1]], u)
    p_mean1, p_logvar1 = self.p_z1(z2)
    z1 = p_mean1 + jnp.exp(0.5 * p_logvar1) * eps[..., mean2.shape[-1]:]
    h = self.q_z1_z2(z2)
    mean1, logvar1 = self.q_z1(jnp.concatenate([jnp.broadcast_to(x_features, h.shape), h], axis=-1))
    return self._logits(z1, z2), (losses.Level(z2, mean2, logvar2, prior),
                                  losses.Level(z1, mean1, logvar1, losses.Gaussian(p_mean1, p_logvar1)))

  def generate(self, key, n):
    z2_key, z1_key = jax.random.split(key)
    z2 = base.sample_prior(self.prior(), z2_key, n)
    z1 = base.reparameterize(z1_key, *self.p_z1(z2))
    return self._logits(z1, z2)


def _call(model, x, key):
  """(logits, mean, logvar) of one draw keyed `key`, the mean and log-variance of the top level's posterior."""
  inferred = model.infer(x)
  eps = jax.random.normal(key, x.shape[:-1] + (model.noise_size(inferred),))
  logits, levels = model.draw(inferred, eps)
  return logits, levels[0].mean, levels[0].logvar


# The convHVAE's convolution kernels start as their code's: PyTorch's Conv2d default, U(+-1/sqrt(fan_in)) (their He
# initialisation sets linear layers only).
TORCH_CONV_INIT = nnx.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')


class GatedConv(nnx.Module):
  """h(x) * sigmoid(g(x)) of two convolutions ('SAME' padding), the convHVAE's GatedConv2d."""

  def __init__(self, a, b, kernel, stride=1, *, impl, rngs):
    size, strides = (kernel, kernel), (stride, stride)
    self.h = convolution.Conv(a, b, size, strides, impl=impl, kernel_init=TORCH_CONV_INIT, rngs=rngs)
    self.g = convolution.Conv(a, b, size, strides, impl=impl, kernel_init=TORCH_CONV_INIT, rngs=rngs)

  def __call__(self, x):
    return self.h(x) * jax.nn.sigmoid(self.g(x))


class ConvFeatures(nnx.Module):
  """x (..., 784) -> gated convolutions, (kernel, stride, channels) per layer -> the flat 7 x 7 x 6 = 294 features."""

  def __init__(self, layers, *, impl, rngs):
    channels = (1,) + tuple(c for _, _, c in layers)
    self.convs = nnx.List([GatedConv(a, b, k, s, impl=impl, rngs=rngs)
                           for a, b, (k, s, _) in zip(channels[:-1], channels[1:], layers)])

  def __call__(self, x):
    h = x.reshape(x.shape[:-1] + (28, 28, 1))
    for layer in self.convs:
      h = layer(h)
    return h.reshape(h.shape[:-3] + (-1,))


class ConvEncoder(nnx.Module):
  """q(z2|x) of the convHVAE: ConvFeatures, then the mean and the log-variance bounded to LOGVAR_BOUNDS."""

  def __init__(self, layers, latent_dim, *, impl, rngs):
    self.features = ConvFeatures(layers, impl=impl, rngs=rngs)
    self.mean = nnx.Linear(294, latent_dim, kernel_init=HE, rngs=rngs)
    self.logvar = nnx.Linear(294, latent_dim, kernel_init=HE, rngs=rngs)

  def __call__(self, x):
    h = self.features(x)
    return self.mean(h), jnp.clip(self.logvar(h), *gated.LOGVAR_BOUNDS)


class ConvPixels(nnx.Module):
  """The convHVAE's p(x | z1, z2) past the two codes' features: GatedDense 600 -> 784, as a 28 x 28 image, four
  3 x 3 gated convolutions of 64 channels, a 1 x 1 convolution to the logits."""

  def __init__(self, *, impl, rngs):
    self.pre = GatedDense(600, IMAGE_SIZE, rngs=rngs)
    self.convs = nnx.List([GatedConv(a, 64, 3, impl=impl, rngs=rngs) for a in (1, 64, 64, 64)])
    self.out = convolution.Conv(64, 1, (1, 1), impl=impl, kernel_init=TORCH_CONV_INIT, rngs=rngs)

  def __call__(self, h):
    h = self.pre(h).reshape(h.shape[:-1] + (28, 28, 1))
    for layer in self.convs:
      h = layer(h)
    return gated.clip_logits(self.out(h).reshape(h.shape[:-3] + (IMAGE_SIZE,)))


# (kernel, stride, channels) of the convHVAE's two x-networks: q(z2|x)'s, and x's features for q(z1|x, z2).
Q_Z2_CONVS = ((7, 1, 32), (3, 2, 32), (5, 1, 64), (3, 2, 64), (3, 1, 6))
Q_Z1_CONVS = ((3, 1, 32), (3, 2, 32), (3, 1, 64), (3, 2, 64), (3, 1, 6))


def gated_hvae(model_config, *, rngs):
  """The HVAE: every network gated dense layers of 300; z2 of model.latent_dim, z1 of model.z1_dim (40 each in
  their code)."""
  size = base.input_size(model_config)
  return TwoLevelVAE(GatedEncoder((300, 300), model_config.latent_dim, input_size=size, rngs=rngs),
                     GatedDense(size, 300, rngs=rngs),
                     GatedDecoder((300,), 600, output_size=base.output_size(model_config), rngs=rngs), 300,
                     model_config.z1_dim, model_config.latent_dim, rngs=rngs)


def conv_hvae(model_config, *, rngs):
  """The convHVAE: q(z2|x) and x's features for q(z1|x, z2) gated convolutions to 294 features, p(x|z1, z2)
  ConvPixels; the networks between codes as the HVAE's. 28 x 28 gray images only, with one output per pixel."""
  shape, likelihood = base.image_shape(model_config), base.likelihood_of(model_config)
  if shape != (28, 28, 1) or likelihood.outputs_per_pixel() != 1:
    raise base.ShapeError(f'the convHVAE takes 28 x 28 x 1 images with one output per pixel (Bernoulli or '
                            f'Gaussian); got {" x ".join(map(str, shape))}, {model_config.likelihood} likelihood')
  impl = convolution.conv_impl(model_config.get('conv_impl', 'auto'))
  return TwoLevelVAE(ConvEncoder(Q_Z2_CONVS, model_config.latent_dim, impl=impl, rngs=rngs),
                     ConvFeatures(Q_Z1_CONVS, impl=impl, rngs=rngs), ConvPixels(impl=impl, rngs=rngs), 294,
                     model_config.z1_dim, model_config.latent_dim, rngs=rngs)


class BottomUpVAE(base.VAE):
  """Burda et al.'s two stochastic layers: `encoder` q(z1|x), `q_z2` q(z2|z1), `p_z1` p(z1|z2), `decoder` p(x|z1)."""

  def __init__(self, encoder, q_z2, p_z1, decoder, z2_dim):
    super().__init__(encoder, decoder)
    self.q_z2, self.p_z1, self.z2_dim = q_z2, p_z1, z2_dim

  def encode(self, x):
    return self.q_z2(self.encoder(x)[0])

  def decode(self, z):
    return self.decoder(self.p_z1(z)[0])

  def __call__(self, x, key):
    return _call(self, x, key)

  def infer(self, x):
    return self.encoder(x), losses.Mixture(*self.prior())

  def noise_size(self, inferred):
    return inferred[0][0].shape[-1] + self.z2_dim

  def draw(self, inferred, eps):
    (mean1, logvar1), prior = inferred
    z1 = mean1 + jnp.exp(0.5 * logvar1) * eps[..., :mean1.shape[-1]]
    mean2, logvar2 = self.q_z2(z1)
    z2 = mean2 + jnp.exp(0.5 * logvar2) * eps[..., mean1.shape[-1]:]
    return self.decoder(z1), (losses.Level(z2, mean2, logvar2, prior),  # z1 was drawn first: sample its KL.
                              losses.Level(z1, mean1, logvar1, losses.SampledGaussian(*self.p_z1(z2))))

  def prior_draw(self, inferred, eps, u):
    (mean1, logvar1), prior = inferred
    z2 = base.mixture_draw(prior, eps[..., mean1.shape[-1]:], u)
    p_mean1, p_logvar1 = self.p_z1(z2)
    z1 = p_mean1 + jnp.exp(0.5 * p_logvar1) * eps[..., :mean1.shape[-1]]
    mean2, logvar2 = self.q_z2(z1)
    return self.decoder(z1), (losses.Level(z2, mean2, logvar2, prior),
                              losses.Level(z1, mean1, logvar1, losses.SampledGaussian(p_mean1, p_logvar1)))

  def generate(self, key, n):
    z2_key, z1_key = jax.random.split(key)
    z2 = base.sample_prior(self.prior(), z2_key, n)
    return self.decoder(base.reparameterize(z1_key, *self.p_z1(z2)))


def two_layer(model_config, *, rngs):
  """x -> encoder_widths -> z1 (model.z1_dim) -> z1_widths -> z2 (model.latent_dim), mirrored for generation;
  Burda et al.: 200-200 to 100, then 100-100 to 50, tanh."""
  act, z1, z2 = base.ACTIVATIONS[model_config.activation], model_config.z1_dim, model_config.latent_dim
  return BottomUpVAE(DenseEncoder(model_config.encoder_widths, z1, act, input_size=base.input_size(
                         model_config), rngs=rngs),
                     DenseEncoder(model_config.z1_widths, z2, act, input_size=z1, rngs=rngs),
                     DenseEncoder(model_config.z1_widths, z1, act, input_size=z2, rngs=rngs),
                     DenseDecoder(model_config.decoder_widths, z1, act,
                                         output_size=base.output_size(model_config), rngs=rngs), z2)
