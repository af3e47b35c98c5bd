"""Latent-space metrics: k-means and linear-probe accuracy against the labels, active units and the KL per dimension.

All are functions of numpy arrays: latents or posterior means and log-variances (N, D), integer labels (N,).
"""
import jax
import jax.numpy as jnp
import numpy as np
import threadpoolctl
from scipy import linalg, optimize, special, stats
from sklearn import cluster, metrics, preprocessing

# k-means runs in one thread: sklearn's default of one OpenBLAS / OpenMP thread per core spin-waits when other
# processes hold the cores. A logistic regression on 60000 x 128 (MNIST through 128 PCA components) took 15-70 s
# with two threads and 1.1 s with one on a busy 2-core machine; 2.2-3.0 s against 1.1-1.4 s on a quiet one.

# The probe's fit: L-BFGS in coordinates where the Hessian over about HESSIAN_ROWS evenly spaced training points is
# the identity, that Hessian taken at zero for a first, rough round, then at its result. DAMPING keeps it positive
# definite along the shift of every class's score by one amount (which the softmax ignores) and above its float32
# rounding (~1e-5 for 10,000 standardised points).
HESSIAN_ROWS = 10000
DAMPING = 1e-4
PROBE_ROUNDS = (1e-2, 1e-6)  # L-BFGS's gradient tolerance in each round's coordinates.


def matched_accuracy(clusters, labels):
  """The fraction of points whose cluster is matched to their label, under the best one-to-one matching."""
  # Rows and columns index the distinct values, so labels need not be 0..k-1 (e.g. the MNIST subset {1, 8}).
  contingency = metrics.cluster.contingency_matrix(labels, clusters)
  rows, cols = optimize.linear_sum_assignment(contingency, maximize=True)
  return float(contingency[rows, cols].sum() / len(labels))


def kmeans_scores(latents, labels, seed=0):
  """Accuracy (best one-to-one matching) and NMI of k-means with k = the number of distinct labels."""
  k = len(np.unique(labels))
  with threadpoolctl.threadpool_limits(limits=1):
    clusters = cluster.KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(latents)
  return {'kmeans_acc': matched_accuracy(clusters, labels),
          'kmeans_nmi': float(metrics.normalized_mutual_info_score(labels, clusters))}


def linear_probe_acc(train_latents, train_labels, test_latents, test_labels, seed=0):
  """Test accuracy of a multinomial logistic regression on standardised latents, fitted on the train set.

  The model of scikit-learn's LogisticRegression() (C = 1), fitted to its optimum by `logistic_regression`: sklearn's
  own L-BFGS stopped at its default tolerance after ~525 iterations (14 s on 2 cores) on a fashion_dense run's
  60000 x 128 latents, where its accuracy moved by up to 1e-3 with the order of the training rows; the optimum's
  does not. `seed` is unused: the fit is deterministic.
  """
  del seed
  scaler = preprocessing.StandardScaler().fit(train_latents)
  classes, coef, intercept = logistic_regression(scaler.transform(train_latents), train_labels)
  scores = scaler.transform(test_latents) @ coef.T + intercept
  return float(np.mean(classes[np.argmax(scores, axis=1)] == np.asarray(test_labels)))


def logistic_regression(x, labels, c=1.0):
  """(classes, coef (K, D), intercept (K,)) minimising sklearn's LogisticRegression(C=c) objective on x (N, D).

  That objective is the mean cross-entropy of a softmax over the K classes plus |coef|^2 / (2 c N), the intercepts
  unpenalised; with two classes it is the binomial loss, a two-class softmax whose penalty is doubled (at the
  optimum coef[1] = -coef[0], and sklearn's single coef_ is their difference). The loss is float32 at full
  precision; L-BFGS is preconditioned by a Hessian (HESSIAN_ROWS, PROBE_ROUNDS), which takes it to the optimum in
  ~100 evaluations of the loss where plain L-BFGS needs many hundreds (the latents' classes are nearly separable in
  places, and only the weak penalty bounds the weights there).
  """
  classes, y = np.unique(labels, return_inverse=True)
  (n, d), k = x.shape, len(classes)
  l2 = (2.0 if k == 2 else 1.0) / (c * n)
  penalised = np.tile(np.append(np.ones(d), 0.0), k)
  rows = jnp.asarray(np.hstack([x, np.ones((n, 1))]), jnp.float32)  # x and the intercept's constant 1.
  args = rows, jax.nn.one_hot(y, k), l2, jnp.asarray(penalised, jnp.float32)
  theta = np.zeros(k * (d + 1))  # Each class's coefficients, then its intercept.
  with threadpoolctl.threadpool_limits(limits=1):  # numpy's small solves and products: see the note at the top.
    for gtol in PROBE_ROUNDS:
      h = np.asarray(_hessian(jnp.asarray(theta.reshape(k, d + 1), jnp.float32), rows[::max(1, n // HESSIAN_ROWS)]))
      chol = np.linalg.cholesky(h.astype(np.float64) + np.diag(l2 * penalised + DAMPING))
      theta = _preconditioned_lbfgs(lambda t: _loss_and_grad(t, *args), theta, chol, gtol)
  theta = theta.reshape(k, d + 1)
  return classes, theta[:, :d], theta[:, d] - np.mean(theta[:, d])  # Intercepts summing to 0, as sklearn's.


def _loss(theta, rows, onehot, l2, penalised):
  """sklearn's objective at theta (K (D + 1),) on `rows` (N, D + 1): cross-entropy plus l2 / 2 |coef|^2."""
  scores = _dot(rows, theta.reshape(onehot.shape[1], rows.shape[1]).T)
  cross_entropy = jnp.mean(jax.nn.logsumexp(scores, axis=1) - jnp.sum(scores * onehot, axis=1))
  return cross_entropy + 0.5 * l2 * jnp.sum(jnp.square(theta) * penalised)


_loss_and_grad = jax.jit(jax.value_and_grad(_loss))


def _dot(a, b):
  return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)  # Full float32 on every backend.


def _softmax_hessian(theta, rows):
  """The Hessian of the mean softmax cross-entropy over `rows` (M, D + 1) at theta (K, D + 1): (K (D+1), K (D+1)).

  Block (k, l) is the mean of p_k (delta_kl - p_l) a a^T over the rows a, p their softmax probabilities.
  """
  p = jax.nn.softmax(_dot(rows, theta.T), axis=1)
  (m, width), k = rows.shape, p.shape[1]
  weighted = (p[:, :, None] * rows[:, None, :]).reshape(m, k * width)  # p_k a, class-major.
  diagonal = _dot(weighted.T, rows).reshape(k, width, width)
  blocks = jnp.einsum('kl,kab->kalb', jnp.eye(k), diagonal).reshape(k * width, k * width)
  return (blocks - _dot(weighted.T, weighted)) / m


_hessian = jax.jit(_softmax_hessian)


def _preconditioned_lbfgs(loss_and_grad, theta, chol, gtol):
  """L-BFGS from theta in the coordinates u = chol^T theta, in which chol chol^T is the identity."""
  to_theta = lambda u: linalg.solve_triangular(chol, u, lower=True, trans='T')

  def fun(u):
    value, grad = loss_and_grad(jnp.asarray(to_theta(u), jnp.float32))
    return float(value), linalg.solve_triangular(chol, np.asarray(grad, np.float64), lower=True)

  result = optimize.minimize(fun, chol.T @ theta, jac=True, method='L-BFGS-B', options={
      'maxiter': 1000, 'maxls': 50, 'gtol': gtol, 'ftol': 64 * np.finfo(float).eps})  # sklearn's, but gtol.
  return to_theta(result.x)


def active_units(means, threshold=0.01):
  """The number of dimensions d with Cov_x(E_q[z_d | x]) > threshold (Burda et al. 2016), over images (N, D).

  The variance is the population one (ddof=0), as in the definition: a moment of the data set, not an estimate.
  """
  return int(np.sum(np.var(np.asarray(means, np.float64), axis=0) > threshold))


# The most component densities kl_per_dim evaluates for a mixture prior (images x components x dimensions).
MIXTURE_WORK = 2 ** 29


def kl_per_dim(means, logvars, prior=None, seed=0, chunk=256):
  """The mean over images of KL(q(z_d | x) || p(z_d)) per dimension, (D,) in float64, p(z_d) the prior's marginal.

  `prior`: (means, logvars) of its K components, (K, D); None is N(0, I). With one component it is the closed form,
  and sums to the mean KL. A mixture's marginals (the VampPrior's) have none: one draw of each q(z_d | x) per
  image, from `seed`, estimates it without bias; the marginals' KLs need not sum to the joint KL. Over at most
  MIXTURE_WORK // (K D) images, drawn without replacement (all of them under a VampPrior of 500 components; 268 of
  them under an exemplar prior of 50,000, whose every image would take half an hour here).
  """
  means, logvars = np.asarray(means, np.float64), np.asarray(logvars, np.float64)
  if prior is None:
    prior = np.zeros((1, means.shape[1])), np.zeros((1, means.shape[1]))
  prior_means, prior_logvars = (np.asarray(a, np.float64) for a in prior)
  if len(prior_means) == 1:
    return np.mean(0.5 * (prior_logvars - logvars - 1.0
                          + (np.exp(logvars) + np.square(means - prior_means)) * np.exp(-prior_logvars)), axis=0)
  z = means + np.exp(0.5 * logvars) * np.random.default_rng(seed).standard_normal(means.shape)
  if len(z) * prior_means.size > MIXTURE_WORK:
    rows = np.sort(np.random.default_rng([seed, 1]).choice(len(z), MIXTURE_WORK // prior_means.size, replace=False))
    z, means, logvars = z[rows], means[rows], logvars[rows]
  log_q = stats.norm.logpdf(z, means, np.exp(0.5 * logvars))
  chunk = max(1, min(chunk, 2 ** 23 // prior_means.size))  # At most 64 MB of float64 (an exemplar prior's K is 50,000).
  log_p = np.concatenate([  # (n, K, D) at a time: the 1-D mixture density of each code's every coordinate.
      special.logsumexp(stats.norm.logpdf(z[i:i + chunk, None], prior_means, np.exp(0.5 * prior_logvars)), axis=1)
      for i in range(0, len(z), chunk)]) - np.log(len(prior_means))
  return np.mean(log_q - log_p, axis=0)
