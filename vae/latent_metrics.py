"""Latent-space metrics: k-means and linear-probe accuracy against the labels, active units and the KL per dimension.

All are functions of numpy arrays: latents or posterior means and log-variances (N, D), integer labels (N,).
"""
import numpy as np
import threadpoolctl
from scipy import optimize, special, stats
from sklearn import cluster, linear_model, metrics, pipeline, preprocessing

# The fits run in one thread: sklearn's default of one OpenBLAS / OpenMP thread per core spin-waits when other
# processes hold the cores. The probe on 60000 x 128 (MNIST through 128 PCA components, as a stand-in for latents)
# took 15-70 s with two threads and 1.1 s with one on a busy 2-core machine; 2.2-3.0 s against 1.1-1.4 s on a quiet one.


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

  L-BFGS at sklearn's default tolerance converges on 60000 x 128 with 10 classes (about 45 iterations, ~1 s), so
  the whole train set is used. lbfgs is deterministic; `seed` only matters to stochastic solvers.
  """
  probe = pipeline.make_pipeline(preprocessing.StandardScaler(),
                                 linear_model.LogisticRegression(max_iter=1000, random_state=seed))
  with threadpoolctl.threadpool_limits(limits=1):
    probe.fit(train_latents, train_labels)
  return float(probe.score(test_latents, test_labels))


def active_units(means, threshold=0.01):
  """The number of dimensions d with Cov_x(E_q[z_d | x]) > threshold (Burda et al. 2016), over images (N, D).

  The variance is the population one (ddof=0), as in the definition: a moment of the data set, not an estimate.
  """
  return int(np.sum(np.var(np.asarray(means, np.float64), axis=0) > threshold))


def kl_per_dim(means, logvars, prior=None, seed=0, chunk=256):
  """The mean over images of KL(q(z_d | x) || p(z_d)) per dimension, (D,) in float64, p(z_d) the prior's marginal.

  `prior`: (means, logvars) of its K components, (K, D); None is N(0, I). With one component it is the closed form,
  and sums to the mean KL. A mixture's marginals (the VampPrior's) have none: one draw of each q(z_d | x) per
  image, from `seed`, estimates it without bias; the marginals' KLs need not sum to the joint KL.
  """
  means, logvars = np.asarray(means, np.float64), np.asarray(logvars, np.float64)
  if prior is None:
    prior = np.zeros((1, means.shape[1])), np.zeros((1, means.shape[1]))
  prior_means, prior_logvars = (np.asarray(a, np.float64) for a in prior)
  if len(prior_means) == 1:
    return np.mean(0.5 * (prior_logvars - logvars - 1.0
                          + (np.exp(logvars) + np.square(means - prior_means)) * np.exp(-prior_logvars)), axis=0)
  z = means + np.exp(0.5 * logvars) * np.random.default_rng(seed).standard_normal(means.shape)
  log_q = stats.norm.logpdf(z, means, np.exp(0.5 * logvars))
  log_p = np.concatenate([  # (n, K, D) at a time: the 1-D mixture density of each code's every coordinate.
      special.logsumexp(stats.norm.logpdf(z[i:i + chunk, None], prior_means, np.exp(0.5 * prior_logvars)), axis=1)
      for i in range(0, len(z), chunk)]) - np.log(len(prior_means))
  return np.mean(log_q - log_p, axis=0)
