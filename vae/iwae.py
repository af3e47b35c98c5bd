"""Importance-weighted estimates of log p(x) (Burda et al., 2016), vectorised over samples and chunked on device.

log p(x) >= E[log (1/K) sum_k p(x, z_k) / q(z_k | x)], z_k ~ q(z | x): K = 1 is the ELBO, and the bound rises to
log p(x) as K grows.
"""
import math

import jax
import jax.numpy as jnp

from vae import losses, models

# Largest decoder intermediate (samples x images x its size per sample) one chunk may hold, in floats, on a device
# that does not report its memory (the CPU): 128 MB already keeps the CPU's matmuls busy; larger only costs RAM.
CHUNK_FLOATS = 2 ** 25
MAX_CHUNK_FLOATS = 2 ** 30


def iw_log_likelihood(log_joint, mean, logvar, key, num_samples, chunk_size):
  """Per-image IW estimate of log p(x) from `log_joint(z) -> log p(x, z)` and q(z|x) = N(mean, exp(logvar)).

  `log_joint` maps z of shape (C, B, D) to (C, B). Samples are drawn `chunk_size` at a time, key fold_in(key, c)
  for chunk c, and combined by one log-sum-exp, so memory does not grow with `num_samples`.
  """
  num_chunks = -(-num_samples // chunk_size)

  def chunk(c):
    eps = jax.random.normal(jax.random.fold_in(key, c), (chunk_size,) + mean.shape, mean.dtype)
    z = mean + jnp.exp(0.5 * logvar) * eps
    log_w = log_joint(z) - losses.diag_gaussian_log_prob(z, mean, logvar)
    valid = c * chunk_size + jnp.arange(chunk_size) < num_samples  # The last chunk may overhang.
    return jax.nn.logsumexp(jnp.where(valid[:, None], log_w, -jnp.inf), axis=0)

  per_chunk = jax.lax.map(chunk, jnp.arange(num_chunks))
  return jax.nn.logsumexp(per_chunk, axis=0) - math.log(num_samples)


def chunk_floats(device=None):
  """CHUNK_FLOATS, or on a device that reports its memory (GPU, TPU) a share of what is free; default the first."""
  stats = (device or jax.local_devices()[0]).memory_stats()
  if not stats or 'bytes_limit' not in stats:
    return CHUNK_FLOATS
  # 1/8 of the free memory: a chunk holds a few arrays the size of the largest at once, beside XLA's own buffers;
  # at most 2^30 floats, so that no array's element count nears int32's range.
  return min((stats['bytes_limit'] - stats.get('bytes_in_use', 0)) // (8 * 4), MAX_CHUNK_FLOATS)


def _largest_intermediate(decode, latent_dim):
  """Floats in the largest array `decode` makes for one code (a conv decoder's patches dwarf its output)."""
  jaxpr = jax.make_jaxpr(decode)(jnp.zeros((1, latent_dim)))
  return max(math.prod(v.aval.shape) for eqn in jaxpr.eqns for v in eqn.outvars)


def model_log_likelihood(graphdef, params, x, key, num_samples, likelihood, sigma):
  """IW estimate of log p(x) per image of the batch `x` (B, 784) under the VAE (graphdef, params)."""
  mean, logvar = models.apply(graphdef, params, 'encode', x)
  prior = models.apply(graphdef, params, 'prior')

  def log_joint(z):
    out = models.apply(graphdef, params, 'decode', z)
    return losses.log_likelihood(out, x, likelihood, sigma) + losses.mixture_log_prob(z, *prior)

  # Per sample and image: the decoder's largest array, the image, the prior's K x D squared distances.
  per_sample = max(_largest_intermediate(lambda z: models.apply(graphdef, params, 'decode', z), mean.shape[-1]),
                   prior[0].size)
  chunk_size = int(max(1, min(num_samples, chunk_floats() // (x.shape[0] * max(per_sample, x.shape[1])))))
  return iw_log_likelihood(log_joint, mean, logvar, key, num_samples, chunk_size)
