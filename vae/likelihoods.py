"""Observation models p(x | decoder output): each owns its per-pixel distribution, its log-density in nats per image,
its means (for figures) and its samples, behind one interface, so a decoder only needs `outputs_per_pixel()`.

Conventions: x is (..., H*W*C), pixels in [0, 1] laid out (H, W, C); a decoder output is (..., H*W*P), P =
outputs_per_pixel() per pixel; log_prob sums over the last axis and broadcasts over any leading (sample, batch)
axes. The classes are hashable NamedTuples of Python numbers: close over them (or pass them static) under jit.
"""
import functools
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
    lead = jnp.broadcast_shapes(out.shape[:-1], x.shape[:-1])
    out = jnp.broadcast_to(out, lead + out.shape[-1:]).reshape(lead + (-1, self.outputs_per_pixel()))
    x = 2 * jnp.broadcast_to(x, lead + x.shape[-1:]).reshape(lead + (-1, self.channels)) - 1  # (..., N, C)
    # Pixels last, (..., P, N) and (..., C, N): XLA's CPU loops vectorise along the last axis, which in the decoder's
    # layout would make the (..., K, C) arrays below 3 wide under RGB.
    return jnp.sum(_pixel_log_prob(jnp.swapaxes(out, -1, -2), jnp.swapaxes(x, -1, -2), self.num_mixtures), axis=-1)

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


def _loc(mu, coeff, earlier, c, axis=-1):
  """Channel c's location mu_c + sum_{j<c} tanh(coeff_cj) x_j, `earlier` the x_j (each broadcasting with mu's channel
  c), the channels on `axis` of mu and coeff (-1; -2 with the pixels last)."""
  at = lambda a, i: a[(Ellipsis, i) + (slice(None),) * (-1 - axis)]
  loc = at(mu, c)
  for j, x_j in enumerate(earlier):
    loc = loc + at(coeff, c * (c - 1) // 2 + j) * x_j
  return loc


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _pixel_log_prob(out, x, num_mixtures):
  """log p(pixel) (..., N) under DiscretizedLogisticMixture of the outputs `out` (..., P, N) at x (..., C, N), x in
  [-1, 1]; pixels last.

  Its backward pass is a product with the gradients that the forward pass computes beside the values, in closed form
  from the same exponentials (_log_bin_mass), where XLA's own differentiation keeps a dozen (..., K, C, N)
  intermediates and recomputes exponentials for them. With the pixels last and _log_bin_mass's one log, configs/
  cifar10.py's train step went from about 200 to 270 images/s on a 2-core CPU (experiments/benchmark). Reverse mode
  only (jax.jvp raises; nothing here uses it).
  """
  return _pixel_log_prob_and_grads(out, x, num_mixtures, with_grads=False)[0]


def _pixel_log_prob_fwd(out, x, num_mixtures):
  return _pixel_log_prob_and_grads(out, x, num_mixtures, with_grads=True)


def _pixel_log_prob_bwd(num_mixtures, grads, g):
  del num_mixtures
  d_out, d_x = grads
  return g[..., None, :] * d_out, g[..., None, :] * d_x


_pixel_log_prob.defvjp(_pixel_log_prob_fwd, _pixel_log_prob_bwd)


def _pixel_log_prob_and_grads(out, x, k, with_grads):
  """(log p(pixel), None), or with `with_grads` (log p(pixel), (its gradients in out and in x))."""
  (c, n), lead = x.shape[-2:], out.shape[:-2]
  block = lambda start, size: out[..., start:start + k * size, :].reshape(lead + (k, size, n))
  logits, mu, raw_log_scale = out[..., :k, :], block(k, c), block(k + k * c, c)  # (..., K, N), (..., K, C, N)
  log_scale, coeff = jnp.maximum(raw_log_scale, MIN_LOG_SCALE), jnp.tanh(block(k + 2 * k * c, c * (c - 1) // 2))
  x = x[..., None, :, :]  # (..., 1, C, N): broadcast over components.
  earlier = [x[..., j, :] for j in range(c)]
  loc = jnp.stack([_loc(mu, coeff, earlier[:i], i, axis=-2) for i in range(c)], axis=-2)
  log_bin = _log_bin_mass(x, loc, log_scale, with_grads)  # (..., K, C, N), with its slopes.
  log_mix = jax.nn.log_softmax(logits, axis=-2) + jnp.sum(log_bin[0] if with_grads else log_bin, axis=-2)
  log_p = jax.nn.logsumexp(log_mix, axis=-2)  # (..., N)
  if not with_grads:
    return log_p, None
  _, d_loc, d_log_scale = log_bin
  resp = jnp.exp(log_mix - log_p[..., None, :])  # The components' posterior: d log_p / d log_mix.
  d_loc = resp[..., None, :] * d_loc  # d log_p / d loc, = d log_p / d mu.
  # jnp.maximum's slope as JAX differentiates it: 1 above the clamp, 1/2 at it.
  clamp = jnp.where(raw_log_scale > MIN_LOG_SCALE, 1.0, jnp.where(raw_log_scale == MIN_LOG_SCALE, 0.5, 0.0))
  pairs = [(i, j) for i in range(c) for j in range(i)]  # coeff's order.
  d_coeff = [d_loc[..., i, :] * (1 - jnp.square(coeff[..., p, :])) * earlier[j] for p, (i, j) in enumerate(pairs)]
  d_out = [resp - jax.nn.softmax(logits, axis=-2), d_loc.reshape(lead + (k * c, n)),
           (resp[..., None, :] * d_log_scale * clamp).reshape(lead + (k * c, n))]
  if pairs:
    d_out.append(jnp.stack(d_coeff, axis=-2).reshape(lead + (k * len(pairs), n)))
  # x_j enters its own bin (x - loc: minus d loc) and the later channels' locations (through tanh(coeff)).
  d_x = jnp.stack([jnp.sum(-d_loc[..., j, :] + sum(d_loc[..., i, :] * coeff[..., i * (i - 1) // 2 + j, :]
                                                   for i in range(j + 1, c)), axis=-2) for j in range(c)], axis=-2)
  return log_p, (jnp.concatenate(d_out, axis=-2), d_x)


def _log_bin_mass(x, loc, log_scale, with_grads=False):
  """log P(x's bin) under Logistic(loc, exp(log_scale)), x in [-1, 1] on the grid of 256 centres; with `with_grads`,
  (it, its derivative in loc, its derivative in log_scale).

  The end bins are log sigmoid(upper) and log (1 - sigmoid(lower)), as in PixelCNN++. An interior bin uses
  sigmoid(u) - sigmoid(l) = sigmoid(u) (1 - sigmoid(l)) (1 - exp(l - u)), every factor kept from cancelling: exact
  where PixelCNN++'s difference of CDFs cancels or underflows (its fallback, the density at the centre times the
  width, is off by nats in the tails of a narrow component). As log sigmoid(u) = -relu(-u) + log sigmoid(|u|) and
  log (1 - sigmoid(l)) = -relu(l) + log sigmoid(|l|), the factors' logs are one log of their product (in
  [1e-5 / 4, 1]), and exp(-|u|), sigmoid(|u|) give the slopes too: four exponentials and one log an element. The
  widths below 1e-5 (log_scale > 6.7) take log(1 - exp(-w)) = log w (error < w/2).
  """
  inv_scale = jnp.exp(-log_scale)
  centred = x - loc
  upper, lower = inv_scale * (centred + 1 / 255), inv_scale * (centred - 1 / 255)
  width = (2 / 255) * inv_scale
  bottom, top = x < -0.999, x > 0.999  # The end bins: log sigmoid(upper) alone, log (1 - sigmoid(lower)) alone.
  narrow = (width <= 1e-5) & ~bottom & ~top
  exp_upper, exp_lower = jnp.exp(-jnp.abs(upper)), jnp.exp(-jnp.abs(lower))
  sig_upper = jnp.where(top, 1.0, 1 / (1 + exp_upper))  # sigmoid(|upper|); 1 where the bin has no such factor.
  sig_lower = jnp.where(bottom, 1.0, 1 / (1 + exp_lower))
  gap = jnp.where(bottom | top | narrow, 1.0, -jnp.expm1(-width))  # 1 - exp(-width), in [1e-5, 1]
  linear = (jnp.where(narrow, math.log(2 / 255) - log_scale, 0.0) - jnp.where(top, 0.0, jnp.maximum(-upper, 0.0))
            - jnp.where(bottom, 0.0, jnp.maximum(lower, 0.0)))
  log_bin = linear + jnp.log(gap * sig_upper * sig_lower)
  if not with_grads:
    return log_bin
  # sigmoid(-upper) and sigmoid(lower), the slopes of log sigmoid(upper) and of -log(1 - sigmoid(lower)).
  slope_upper = jnp.where(top, 0.0, jnp.where(upper >= 0, exp_upper * sig_upper, sig_upper))
  slope_lower = jnp.where(bottom, 0.0, jnp.where(lower >= 0, sig_lower, exp_lower * sig_lower))
  d_gap = jnp.where(bottom | top | narrow, 0.0, width * (1 - gap) / gap)  # -d/d log_scale of log(1 - exp(-width))
  return (log_bin, inv_scale * (slope_lower - slope_upper),
          lower * slope_lower - upper * slope_upper - d_gap - narrow.astype(log_scale.dtype))


def make(name, *, sigma=1.0, num_mixtures=10, channels=1):
  """The likelihood `name` (one of NAMES) for images of `channels` channels."""
  if name == 'bernoulli':
    return Bernoulli(channels)
  if name == 'gaussian':
    return Gaussian(sigma, channels)
  if name == 'discretized_logistic':
    return DiscretizedLogisticMixture(num_mixtures, channels)
  raise ValueError(f'unknown likelihood {name!r} (allowed: {", ".join(NAMES)})')
