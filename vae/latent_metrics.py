"""How much a learnt latent space says about the labels (k-means, linear probe) and how much of it is in use (active
units, KL per dimension): functions of numpy arrays, latents (N, D) and integer labels (N,)."""
import numpy as np
import threadpoolctl
from scipy import optimize
from sklearn import cluster, linear_model, metrics, pipeline, preprocessing


def matched_accuracy(clusters, labels):
  """The fraction of points whose cluster is matched to their label, under the best one-to-one matching."""
  # Rows and columns index the distinct values, so labels need not be 0..k-1 (e.g. the MNIST subset {1, 8}).
  contingency = metrics.cluster.contingency_matrix(labels, clusters)
  rows, cols = optimize.linear_sum_assignment(contingency, maximize=True)
  return float(contingency[rows, cols].sum() / len(labels))


def kmeans_scores(latents, labels, seed=0):
  """Accuracy (best one-to-one matching) and NMI of k-means with k = the number of distinct labels."""
  k = len(np.unique(labels))
  clusters = cluster.KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(latents)
  return {'kmeans_acc': matched_accuracy(clusters, labels),
          'kmeans_nmi': float(metrics.normalized_mutual_info_score(labels, clusters))}


def linear_probe_acc(train_latents, train_labels, test_latents, test_labels, seed=0):
  """Test accuracy of a multinomial logistic regression on standardised latents, fitted on the train set.

  L-BFGS converges (about 45 iterations on 60000 x 128, 10 classes) in ~2 s with one OpenMP thread. sklearn's loss
  is parallel by OpenMP, and when other processes hold the cores its threads spin-wait on each other: the same fit
  took 9-57 s with two threads on a busy 2-core machine, hence the limit. lbfgs is deterministic; `seed` only
  matters to stochastic solvers.
  """
  probe = pipeline.make_pipeline(preprocessing.StandardScaler(),
                                 linear_model.LogisticRegression(max_iter=1000, random_state=seed))
  with threadpoolctl.threadpool_limits(limits=1, user_api='openmp'):
    probe.fit(train_latents, train_labels)
  return float(probe.score(test_latents, test_labels))


def active_units(means, threshold=0.01):
  """The number of dimensions d with Cov_x(E_q[z_d | x]) > threshold (Burda et al. 2016), over images (N, D).

  The variance is the population one (ddof=0), as in the definition: a moment of the data set, not an estimate.
  """
  return int(np.sum(np.var(np.asarray(means, np.float64), axis=0) > threshold))


def kl_per_dim(means, logvars):
  """The mean over images of KL(q(z_d | x) || N(0, 1)) per dimension, (D,) in float64; it sums to the mean KL."""
  means, logvars = np.asarray(means, np.float64), np.asarray(logvars, np.float64)
  return np.mean(0.5 * (np.exp(logvars) + np.square(means) - 1.0 - logvars), axis=0)
