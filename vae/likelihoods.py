"""Observation models p(x | decoder output): each owns its per-pixel distribution, its log-density in nats per image,
its means (for figures) and its samples, behind one interface, so a decoder only needs `outputs_per_pixel()`.

Conventions: x is (..., H*W*C), pixels in [0, 1] laid out (H, W, C); a decoder output is (..., H*W*P), P =
outputs_per_pixel() per pixel; log_prob sums over the last axis and broadcasts over any leading (sample, batch)
axes. The classes are hashable NamedTuples of Python numbers: close over them (or pass them static) under jit.
"""
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from vae import losses

NAMES = ('bernoulli', 'gaussian', 'discretized_logistic')
MIN_LOG_SCALE = -7.0  # PixelCNN++'s clamp: a narrower logistic puts all its mass in one bin anyway.


class Bernoulli(NamedTuple):
  """One logit per subpixel; x*l - softplus(l) is log sigmoid(l)^x (1 - sigmoid(l))^(1-x)."""
  channels: int = 1
  discrete = False

  def outputs_per_pixel(self):
    return self.channels

  def log_prob(self, out, x):
    return losses.bernoulli_log_prob(out, x)

  def mean(self, out):
    return jax.nn.sigmoid(out)

  def sample(self, key, out):
    return jax.random.bernoulli(key, jax.nn.sigmoid(out)).astype(out.dtype)


class Gaussian(NamedTuple):
  """N(x; sigmoid(out), sigma^2) per subpixel, the normalising constant included, so it is a true density."""
  sigma: float = 1.0
  channels: int = 1
  discrete = False

  def outputs_per_pixel(self):
    return self.channels

  def log_prob(self, out, x):
    return losses.gaussian_log_prob(jax.nn.sigmoid(out), x, self.sigma)

  def mean(self, out):
    return jax.nn.sigmoid(out)

  def sample(self, key, out):
    """Not clipped to [0, 1]: a draw from the density that log_prob scores."""
    return self.mean(out) + self.sigma * jax.random.normal(key, out.shape, out.dtype)


class DiscretizedLogisticMixture(NamedTuple):
  """PixelCNN++'s likelihood (Salimans et al., 2017) for 8-bit pixels, as NVAE uses it.

  x = k/255 is rescaled to 2x - 1 in [-1, 1], the centre of a bin of width 2/255; bins 0 and 255 are open to -inf and
  +inf. One of K components is shared by a pixel's C channels; channel c is Logistic(mu_c + sum_{j<c}
  tanh(coeff_cj) x_j, exp(log_scale_c)), the x_j the pixel's earlier channels in [-1, 1]. Per pixel,
  P = K (1 + 2C + C(C-1)/2) outputs, in this order, each block row-major:
    [logits (K) | mu (K, C) | log_scale (K, C) | coeff (K, C(C-1)/2)],
  coeff_k's pairs (c, j), j < c, in the order (1,0), (2,0), (2,1), ...: index c(c-1)/2 + j. C = 1 has no coeffs.
  """
  num_mixtures: int = 10
  channels: int = 1
  discrete = True

  def outputs_per_pixel(self):
    k, c = self.num_mixtures, self.channels
    return k * (1 + 2 * c + c * (c - 1) // 2)

  def _params(self, out):
    """logits (..., N, K), mu and log_scale (..., N, K, C), tanh(coeff) (..., N, K, C(C-1)/2); N = H*W."""
    k, c = self.num_mixtures, self.channels
    out = out.reshape(out.shape[:-1] + (-1, self.outputs_per_pixel()))
    block = lambda start, size: out[..., start:start + k * size].reshape(out.shape[:-1] + (k, size))
    logits = out[..., :k]
    mu, log_scale = block(k, c), jnp.maximum(block(k + k * c, c), MIN_LOG_SCALE)
    coeff = jnp.tanh(block(k + 2 * k * c, c * (c - 1) // 2))
    return logits, mu, log_scale, coeff

  def log_prob(self, out, x):
    if out.shape[-1] * self.channels != x.shape[-1] * self.outputs_per_pixel():  # Else one pixel would broadcast.
      raise ValueError(f'{out.shape[-1]} decoder outputs ({self.outputs_per_pixel()} a pixel) for images of '
                       f'{x.shape[-1]} values ({self.channels} a pixel)')
    logits, mu, log_scale, coeff = self._params(out)
    x = 2 * x.reshape(x.shape[:-1] + (-1, self.channels)) - 1  # (..., N, C)
    earlier = [x[..., None, j] for j in range(self.channels)]  # Each (..., N, 1): broadcast over components.
    loc = jnp.stack(jnp.broadcast_arrays(*[_loc(mu, coeff, earlier[:c], c) for c in range(self.channels)]), axis=-1)
    log_p = _log_bin_mass(x[..., None, :], loc, log_scale)  # (..., N, K, C)
    log_p_pixel = jax.nn.logsumexp(jax.nn.log_softmax(logits) + jnp.sum(log_p, axis=-1), axis=-1)
    return jnp.sum(log_p_pixel, axis=-1)

  def mean(self, out):
    """An approximation: sum_k pi_k loc_kc with the earlier channels at their means (the exact E[x_c] would average
    over them, and the clipping of the end bins is ignored); clipped to [-1, 1] and mapped back to [0, 1]."""
    logits, mu, _, coeff = self._params(out)
    weights = jax.nn.softmax(logits)
    means = []
    for c in range(self.channels):
      loc = _loc(mu, coeff, [m[..., None] for m in means], c)
      means.append(jnp.clip(jnp.sum(weights * loc, axis=-1), -1.0, 1.0))
    return ((jnp.stack(means, axis=-1) + 1) / 2).reshape(out.shape[:-1] + (-1,))

  def sample(self, key, out):
    """Ancestral: a component per pixel, then each channel given the earlier ones' drawn (rounded) values."""
    logits, mu, log_scale, coeff = self._params(out)
    component_key, noise_key = jax.random.split(key)
    chosen = jax.nn.one_hot(jax.random.categorical(component_key, logits), self.num_mixtures, dtype=mu.dtype)
    noise = jax.random.logistic(noise_key, mu.shape[:-2] + (self.channels,), mu.dtype)  # (..., N, C)
    ks = []
    for c in range(self.channels):
      loc = _loc(mu, coeff, [2 * (k[..., None] / 255) - 1 for k in ks], c)
      y = jnp.sum(chosen * loc, axis=-1) + jnp.sum(chosen * jnp.exp(log_scale[..., c]), axis=-1) * noise[..., c]
      # Clipping then rounding to the nearest of the 256 centres is exactly the bins' rule, end bins included.
      ks.append(jnp.round((jnp.clip(y, -1.0, 1.0) + 1) * 127.5))
    return (jnp.stack(ks, axis=-1) / 255).reshape(out.shape[:-1] + (-1,))


def _loc(mu, coeff, earlier, c):
  """Channel c's location mu_c + sum_{j<c} tanh(coeff_cj) x_j, `earlier` the x_j (each broadcasting with mu[..., c])."""
  loc = mu[..., c]
  for j, x_j in enumerate(earlier):
    loc = loc + coeff[..., c * (c - 1) // 2 + j] * x_j
  return loc


def _log_bin_mass(x, loc, log_scale):
  """log P(x's bin) under Logistic(loc, exp(log_scale)), x in [-1, 1] on the grid of 256 centres.

  The end bins are log sigmoid(upper) and log (1 - sigmoid(lower)) as softplus forms, as in PixelCNN++. An interior
  bin uses sigmoid(u) - sigmoid(l) = sigmoid(u) (1 - sigmoid(l)) (1 - exp(l - u)), every factor in log space: exact
  where PixelCNN++'s difference of CDFs cancels or underflows (its fallback, the density at the centre times the
  width, is off by nats in the tails of a narrow component). The widths below 1e-5 (log_scale > 6.7) take
  log(1 - exp(-w)) = log w (error < w/2); `maximum` keeps the unused branch's gradient finite.
  """
  inv_scale = jnp.exp(-log_scale)
  upper, lower = inv_scale * (x - loc + 1 / 255), inv_scale * (x - loc - 1 / 255)
  log_cdf_upper, log_sf_lower = -jax.nn.softplus(-upper), -jax.nn.softplus(lower)
  width = (2 / 255) * inv_scale
  log_1m_exp = jnp.where(width > 1e-5, jnp.log(-jnp.expm1(-jnp.maximum(width, 1e-5))), math.log(2 / 255) - log_scale)
  interior = log_cdf_upper + log_sf_lower + log_1m_exp
  return jnp.where(x < -0.999, log_cdf_upper, jnp.where(x > 0.999, log_sf_lower, interior))


def make(name, *, sigma=1.0, num_mixtures=10, channels=1):
  """The likelihood `name` (one of NAMES) for images of `channels` channels."""
  if name == 'bernoulli':
    return Bernoulli(channels)
  if name == 'gaussian':
    return Gaussian(sigma, channels)
  if name == 'discretized_logistic':
    return DiscretizedLogisticMixture(num_mixtures, channels)
  raise ValueError(f'unknown likelihood {name!r} (allowed: {", ".join(NAMES)})')
