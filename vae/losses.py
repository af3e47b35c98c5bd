"""Log-likelihoods, the KL term and the negative ELBO: pure functions, every figure in nats per image.

Conventions: images and decoder outputs are flat (..., H*W*C); sums run over the last axis, so every function
returns one value per image and broadcasts over any leading (batch, sample) axes. The likelihoods p(x|z) built on
the first two are vae/likelihoods.py's.
"""
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

LOG_2PI = math.log(2 * math.pi)


def bernoulli_log_prob(logits, x):
  """log p(x | logits) for pixels x in [0, 1]; x*l - softplus(l) is log sigmoid(l)^x (1 - sigmoid(l))^(1-x)."""
  return jnp.sum(x * logits - jax.nn.softplus(logits), axis=-1)


def gaussian_log_prob(mean, x, sigma):
  """log N(x; mean, sigma^2 I), the normalising constant included, so it is a true density."""
  return jnp.sum(-0.5 * jnp.square((x - mean) / sigma) - math.log(sigma) - 0.5 * LOG_2PI, axis=-1)


def diag_gaussian_log_prob(z, mean, logvar):
  """log N(z; mean, diag(exp(logvar)))."""
  return jnp.sum(-0.5 * (jnp.square(z - mean) * jnp.exp(-logvar) + logvar + LOG_2PI), axis=-1)


def mixture_log_prob(z, means, logvars, log_weights=None):
  """log (1/K) sum_k N(z; means[k], diag(exp(logvars[k]))): z (..., D), means and logvars (K, D) -> (...).

  `log_weights`, (..., K) broadcasting with z's leading axes: the components' log-weights in place of log(1/K) (an
  exemplar prior's leave-one-out: -inf for an image's own exemplar, log(1/(K - left out)) for the others).

  Each component's density directly, from (z - means[k])^2: the expanded form z^2 - 2 z m + m^2, which needs
  memory (..., K) instead of (..., K, D), loses 0.01-0.07 nats in float32 at the encoder's narrowest posteriors
  (logvar -6). The IW estimate sizes its chunks for the (..., K, D) array.
  """
  mahalanobis = _mahalanobis(z, means, jnp.exp(-logvars))
  log_components = -0.5 * (mahalanobis + jnp.sum(logvars, axis=-1) + means.shape[-1] * LOG_2PI)
  if log_weights is None:
    return jax.nn.logsumexp(log_components, axis=-1) - math.log(means.shape[0])
  return jax.nn.logsumexp(log_components + log_weights, axis=-1)


@jax.custom_vjp
def _mahalanobis(z, means, inv_var):
  """sum_d (z[..., d] - means[k, d])^2 inv_var[k, d] -> (..., K), with a backward pass of matrix products.

  XLA's own backward of this reduction sums (..., K, D) arrays over their leading and middle axes, which on CPU
  took 13 ms for 100 codes against 500 components of 40 dimensions, a third of a VampPrior train step; this one
  takes 3 ms (experiments/published/README.md). The gradients in z and in the means are expanded into products,
  where float32 loses nothing that matters (|z - m| inv_var against |z| inv_var); the one in inv_var, a sum of
  squares whose expansion would cancel, is summed from (z - m)^2 directly. Reverse mode only: jax.jvp, jacfwd and
  hessian of mixture_log_prob raise (nothing here uses them).
  """
  return jnp.sum(jnp.square(z[..., None, :] - means) * inv_var, axis=-1)


def _mahalanobis_fwd(z, means, inv_var):
  return _mahalanobis(z, means, inv_var), (z, means, inv_var)


def _mahalanobis_bwd(residuals, g):
  z, means, inv_var = residuals
  flat_z, flat_g = z.reshape(-1, z.shape[-1]), g.reshape(-1, g.shape[-1])  # (N, D), (N, K)
  # Full float32 products: the expansions cancel up to |z| / |z - m| (100-200 at narrow components far from zero),
  # which the default TF32 of GPUs and bfloat16 of TPUs would turn into errors of a few percent.
  dot = functools.partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)
  d_z = 2 * (flat_z * dot(flat_g, inv_var) - dot(flat_g, inv_var * means))
  d_means = -2 * inv_var * (dot(flat_g.T, flat_z) - means * jnp.sum(flat_g, axis=0)[:, None])
  d_inv_var = jnp.einsum('nk,nkd->kd', flat_g, jnp.square(flat_z[:, None, :] - means),
                         precision=jax.lax.Precision.HIGHEST)
  return d_z.reshape(z.shape), d_means, d_inv_var


_mahalanobis.defvjp(_mahalanobis_fwd, _mahalanobis_bwd)


def gaussian_kl(mean, logvar, prior_mean, prior_logvar):
  """KL(N(mean, diag(exp(logvar))) || N(prior_mean, diag(exp(prior_logvar)))) in closed form."""
  return 0.5 * jnp.sum(prior_logvar - logvar - 1.0
                       + (jnp.exp(logvar) + jnp.square(mean - prior_mean)) * jnp.exp(-prior_logvar), axis=-1)


def kl_standard_normal(mean, logvar):
  """KL(N(mean, diag(exp(logvar))) || N(0, I)) in closed form."""
  return gaussian_kl(mean, logvar, 0.0, 0.0)


class Gaussian(NamedTuple):
  """N(mean, diag(exp(logvar))), its parameters broadcasting with the z it scores: a conditional prior p(z1|z2)."""
  mean: Any
  logvar: Any

  def log_prob(self, z):
    return diag_gaussian_log_prob(z, self.mean, self.logvar)

  def kl_from(self, mean, logvar):
    """KL(N(mean, diag(exp(logvar))) || self) in closed form."""
    return gaussian_kl(mean, logvar, self.mean, self.logvar)


class SampledGaussian(NamedTuple):
  """A conditional Gaussian prior p(z1|z2) whose closed-form KL does not apply: the posterior drew z2 after z1
  (bottom-up inference, q(z1|x) q(z2|z1)), so KL(q(z1|x) || p(z1|z2)) at the drawn z2 is biased. Only the
  one-sample estimate log q - log p is; 'auto' takes it, 'analytic' refuses."""
  mean: Any
  logvar: Any

  def log_prob(self, z):
    return diag_gaussian_log_prob(z, self.mean, self.logvar)

  def kl_from(self, mean, logvar):
    raise ValueError('a level drawn before the levels its prior depends on has no closed-form KL (bottom-up '
                     'inference): use the sample estimate')


class Mixture(NamedTuple):
  """(1/K) sum_k N(means[k], diag(exp(logvars[k]))), means and logvars (K, D): a top-level prior p(z).

  N(0, I) is one component at zero; the VampPrior is the posteriors of K pseudo-inputs; the exemplar prior those of
  K training images' means, with one shared variance.
  """
  means: Any
  logvars: Any

  def log_prob(self, z):
    return mixture_log_prob(z, self.means, self.logvars)

  def kl_from(self, mean, logvar):
    if self.means.shape[0] != 1:
      raise ValueError(f'the KL to a mixture of {self.means.shape[0]} Gaussians has no closed form')
    return gaussian_kl(mean, logvar, self.means[0], self.logvars[0])


class WeightedMixture(NamedTuple):
  """sum_k w[n, k] N(means[k], diag(exp(logvars[k]))) for image n, log w = `log_weights` (N, K): the exemplar prior
  in training, where each image's own exemplar has weight 0 and the others share 1 (leave-one-out)."""
  means: Any
  logvars: Any
  log_weights: Any

  def log_prob(self, z):
    return mixture_log_prob(z, self.means, self.logvars, self.log_weights)

  def kl_from(self, mean, logvar):
    raise ValueError('the KL to a mixture of Gaussians has no closed form')


def as_prior(prior):
  """A model's prior() as a distribution: a Mixture or WeightedMixture as it is, (means, logvars) as a Mixture."""
  return prior if isinstance(prior, (Mixture, WeightedMixture)) else Mixture(*prior)


class Level(NamedTuple):
  """One stochastic layer of a draw: z drawn from q = N(mean, diag(exp(logvar))), scored under `prior` (a Gaussian
  or a Mixture). A model's draw is a tuple of levels; every term below sums over them."""
  z: Any
  mean: Any
  logvar: Any
  prior: Any


def kl(levels, estimator):
  """Per-image KL(q(z|x) || p(z)), summed over the levels of one draw.

  'analytic': each level's closed form given the levels above it (needs a prior of one Gaussian at every level);
  'sample': log q(z|x) - log p(z) at the draw (unbiased, as the VampPrior code trains; the only estimate under a
  mixture); 'auto': the closed form where a level has one, else the sample.
  """
  total = 0.0
  for level in levels:
    one_gaussian = isinstance(level.prior, Gaussian) or (isinstance(level.prior, Mixture) and
                                                         level.prior.means.shape[0] == 1)
    if estimator == 'analytic' or (estimator == 'auto' and one_gaussian):
      total = total + level.prior.kl_from(level.mean, level.logvar)
    else:
      total = total + diag_gaussian_log_prob(level.z, level.mean, level.logvar) - level.prior.log_prob(level.z)
  return total


def log_weight(log_px_z, levels):
  """log w = log p(x|z) + sum over levels of (log p(z_l | above) - log q(z_l | x, ...)): its mean over draws is the
  ELBO, its log-mean-exp over k draws the IWAE bound (Burda et al., 2016)."""
  return log_px_z - kl(levels, 'sample')


def log_densities(levels):
  """(log q(z|x), log p(z)) of one draw, each summed over its levels."""
  log_q = sum(diag_gaussian_log_prob(level.z, level.mean, level.logvar) for level in levels)
  return log_q, sum(level.prior.log_prob(level.z) for level in levels)


def defensive_log_weight(log_px_z, levels, fraction):
  """log p(x, z) - log r(z|x) under the defensive mixture r = (1 - fraction) q(z|x) + fraction p(z) (Hesterberg,
  1995): bounded by log p(x|z) - log fraction, so a draw where q misses the posterior cannot blow the estimate up.
  With fraction of the draws from p and the rest from q (the deterministic mixture), its mean is p(x) exactly."""
  log_q, log_p = log_densities(levels)
  log_r = jnp.logaddexp(math.log1p(-fraction) + log_q, math.log(fraction) + log_p)
  return log_px_z + log_p - log_r


def batch_metrics(recon, kl, beta):
  """Means over images of recon, kl, neg_elbo (= recon + kl, the true bound) and loss (= recon + beta * kl).

  `loss` is what is minimised; with beta != 1 it is not a bound on -log p(x), so it is reported apart.
  """
  recon_mean, kl_mean = jnp.mean(recon), jnp.mean(kl)
  return {'recon': recon_mean, 'kl': kl_mean, 'neg_elbo': recon_mean + kl_mean, 'loss': recon_mean + beta * kl_mean}
