"""Importance-weighted estimates of log p(x) (Burda et al., 2016), vectorised over samples and chunked on device.

log p(x) >= E[log (1/K) sum_k p(x, z_k) / q(z_k | x)], z_k ~ q(z | x): K = 1 is the ELBO, and the bound rises to
log p(x) as K grows.
"""
import math

import jax
import jax.numpy as jnp

from vae import losses, models

# Largest decoder intermediate (samples x images x its size per sample) one chunk may hold, in floats, on a device
# that does not report its memory (the CPU). It sets how the draws are keyed (one key per chunk), so it stays what
# it was when the reported estimates were computed; the work is done in blocks of CPU_BLOCK_FLOATS.
CHUNK_FLOATS = 2 ** 25
MAX_CHUNK_FLOATS = 2 ** 30
# The CPU decodes a block of samples at a time whose largest array stays in its caches (one sample of a batch of
# 500 images under a dense decoder, 1.5 MB): on 2 busy cores, 500 images x 100 samples took 0.94 s in blocks of one
# sample against 1.27 s in one block of 85, whose 133 MB arrays go through main memory.
CPU_BLOCK_FLOATS = 2 ** 20


def iw_log_likelihood(log_weight, noise_shape, key, num_samples, chunk_size, block_size=None):
  """Per-image IW estimate of log p(x) from `log_weight(eps) -> log w`, for standard-normal draws eps.

  `log_weight` maps eps of shape (S,) + noise_shape to the (S, B) log-weights log p(x, z) - log q(z|x) of the draws
  they make (losses.log_weight). Draws are made `chunk_size` at a time, key fold_in(key, c) for chunk c (a last,
  shorter chunk draws the first of its chunk's draws: threefry's counters are the flat index), and weighed in
  blocks of at most `block_size` (the largest divisor of the chunk's size; default a whole chunk), all combined by
  log-sum-exps, so memory does not grow with `num_samples`.
  """
  def log_sum_weights(eps):  # (S,) + noise_shape draws -> (B,) log sum_s w_s, weighed in blocks.
    size = _largest_divisor(eps.shape[0], block_size or chunk_size)
    block = lambda eps: jax.nn.logsumexp(log_weight(eps), axis=0)
    return jax.nn.logsumexp(jax.lax.map(block, eps.reshape((-1, size) + eps.shape[1:])), axis=0)

  draws = lambda c, n: jax.random.normal(jax.random.fold_in(key, c), (n,) + tuple(noise_shape))
  num_full, rest = divmod(num_samples, chunk_size)
  per_chunk = []
  if num_full:
    per_chunk.append(jax.lax.map(lambda c: log_sum_weights(draws(c, chunk_size)), jnp.arange(num_full)))
  if rest:  # Only the samples asked for: no overhang decoded, then masked out.
    per_chunk.append(log_sum_weights(draws(num_full, rest))[None])
  return jax.nn.logsumexp(jnp.concatenate(per_chunk), axis=0) - math.log(num_samples)


def _largest_divisor(n, at_most):
  return max(d for d in range(1, max(1, min(n, at_most)) + 1) if n % d == 0)


def chunk_floats(device=None):
  """CHUNK_FLOATS, or on a device that reports its memory (GPU, TPU) a share of what is free; default the first."""
  stats = _memory_stats(device)
  if stats is None:
    return CHUNK_FLOATS
  # 1/8 of the free memory: a chunk holds a few arrays the size of the largest at once, beside XLA's own buffers;
  # at most 2^30 floats, so that no array's element count nears int32's range.
  return min((stats['bytes_limit'] - stats.get('bytes_in_use', 0)) // (8 * 4), MAX_CHUNK_FLOATS)


def block_floats(device=None):
  """CPU_BLOCK_FLOATS on a device that does not report its memory (the CPU); else chunk_floats, one block a chunk:
  an accelerator's matmuls want the largest."""
  return chunk_floats(device) if _memory_stats(device) else CPU_BLOCK_FLOATS


def _memory_stats(device):
  stats = (device or jax.local_devices()[0]).memory_stats()
  return stats if stats and 'bytes_limit' in stats else None


def _largest_intermediate(fn, shape):
  """Floats in the largest array `fn` makes from an input of `shape` (a conv decoder's patches dwarf its output)."""
  jaxpr = jax.make_jaxpr(fn)(jnp.zeros(shape))
  return max(math.prod(v.aval.shape) for eqn in jaxpr.eqns for v in eqn.outvars)


def model_log_likelihood(graphdef, params, x, key, num_samples, likelihood, exemplars=None, defensive=0.0):
  """IW estimate of log p(x) per image of the batch `x` (B, H*W*C) under the VAE (graphdef, params) and its
  `likelihood` (vae/likelihoods.py), of any number of levels (under the exemplar prior, given its
  models.Exemplars): the x-only work (models' `infer`) once, the draws in chunks.

  `defensive` in (0, 1): the defensive mixture estimate (Hesterberg, 1995) instead of the standard one: that
  fraction of the draws (rounded, at least one) from the prior down every level (the model's `prior_draw`), the
  rest from q(z|x), every draw weighed by p(x, z) / ((1 - defensive) q(z|x) + defensive p(z))
  (losses.defensive_log_weight). Unbiased for p(x) like the standard one, but no draw's weight can exceed
  p(x|z) / defensive, so one image whose q misses its posterior cannot dominate the mean.
  """
  extra = () if exemplars is None else (exemplars,)
  inferred = models.apply(graphdef, params, 'infer', x, *extra)
  noise_shape = x.shape[:-1] + (models.apply(graphdef, params, 'noise_size', inferred),)

  # The deterministic mixture: exactly this many draws from the prior, and the weights' mixture of the same share.
  from_prior = min(max(1, round(defensive * num_samples)), num_samples - 1) if defensive else 0
  fraction = from_prior / num_samples

  def log_weight(eps):
    logits, levels = models.apply(graphdef, params, 'draw', inferred, eps)
    if defensive:
      return losses.defensive_log_weight(likelihood.log_prob(logits, x), levels, fraction)
    return losses.log_weight(likelihood.log_prob(logits, x), levels)

  def prior_log_weight(eps):  # The last column picks the mixture component: u = Phi(eps) is uniform.
    u = jax.scipy.special.ndtr(eps[..., -1])
    logits, levels = models.apply(graphdef, params, 'prior_draw', inferred, eps[..., :-1], u)
    return losses.defensive_log_weight(likelihood.log_prob(logits, x), levels, fraction)

  # Per draw of the batch: the largest array of its log-weight (decoder, image), or the prior's B x K x D squared
  # distances (inside the mixture's custom gradient, which the jaxpr's top level does not show).
  prior = models.apply(graphdef, params, 'prior', *extra)
  per_batch_sample = max(_largest_intermediate(log_weight, (1,) + noise_shape), x.shape[0] * prior[0].size)
  chunk_size = int(max(1, min(num_samples, chunk_floats() // per_batch_sample)))
  block_size = int(max(1, min(chunk_size, block_floats() // per_batch_sample)))
  if not defensive:
    return iw_log_likelihood(log_weight, noise_shape, key, num_samples, chunk_size, block_size)
  from_q = num_samples - from_prior
  sums = [iw_log_likelihood(log_weight, noise_shape, jax.random.fold_in(key, 0), from_q, chunk_size, block_size)
          + math.log(from_q),
          iw_log_likelihood(prior_log_weight, noise_shape[:-1] + (noise_shape[-1] + 1,), jax.random.fold_in(key, 1),
                            from_prior, chunk_size, block_size) + math.log(from_prior)]
  return jnp.logaddexp(*sums) - math.log(num_samples)
