"""Tests of vae/latent_metrics.py against brute force, closed forms, numerical integration and Bayes accuracies."""
import itertools
import math

import numpy as np
import pytest
from scipy import integrate, special, stats
from sklearn import linear_model

from vae import latent_metrics


def _rng(seed=0):
  return np.random.default_rng(seed)


def _blobs(num_classes, per_class, dim=16, spread=50.0, seed=0):
  """Well-separated Gaussian blobs (unit noise, centres ~spread apart) and their blob ids, shuffled."""
  rng = _rng(seed)
  centres = spread * rng.normal(size=(num_classes, dim))
  ids = rng.permutation(np.repeat(np.arange(num_classes), per_class))
  return centres[ids] + rng.normal(size=(len(ids), dim)), ids


def _brute_force_accuracy(clusters, labels):
  """The best one-to-one matching of clusters to labels, found by trying every permutation."""
  cluster_values, label_values = sorted(set(clusters.tolist())), sorted(set(labels.tolist()))
  assert len(cluster_values) == len(label_values)
  best = 0
  for perm in itertools.permutations(label_values):
    to_label = dict(zip(cluster_values, perm))
    best = max(best, sum(to_label[c] == l for c, l in zip(clusters.tolist(), labels.tolist())))
  return best / len(labels)


# kmeans_scores and matched_accuracy.


def test_kmeans_perfect_on_separated_blobs():
  latents, ids = _blobs(10, 50)
  scores = latent_metrics.kmeans_scores(latents, ids)
  assert scores == {'kmeans_acc': 1.0, 'kmeans_nmi': pytest.approx(1.0)}


def test_kmeans_perfect_when_labels_permute_cluster_ids():
  latents, ids = _blobs(10, 50, seed=1)
  labels = _rng(2).permutation(10)[ids]
  assert not np.array_equal(labels, ids)
  scores = latent_metrics.kmeans_scores(latents, labels)
  assert scores['kmeans_acc'] == 1.0
  assert scores['kmeans_nmi'] == pytest.approx(1.0)


def test_kmeans_non_contiguous_labels():
  latents, ids = _blobs(2, 100, seed=3)
  labels = np.array([1, 8])[ids]
  scores = latent_metrics.kmeans_scores(latents, labels)
  assert scores['kmeans_acc'] == 1.0
  assert scores['kmeans_nmi'] == pytest.approx(1.0)


def test_kmeans_near_chance_on_unrelated_labels():
  rng = _rng(4)
  latents = rng.normal(size=(2000, 8))
  labels = rng.integers(0, 10, size=2000)
  scores = latent_metrics.kmeans_scores(latents, labels)
  # Chance is 0.1; the best matching of 10 clusters to noise adds a few points, not 10.
  assert 0.1 <= scores['kmeans_acc'] < 0.2
  assert scores['kmeans_nmi'] < 0.03


def test_matched_accuracy_known_confusion():
  # Clusters x labels counts: the diagonal holds 90 of 100 points. Cluster 3 is mostly label 2, so mapping each
  # cluster to its majority label (many-to-one) would score 0.91; one-to-one, label 2 goes to cluster 2 (21 > 10).
  counts = np.array([[30, 0, 0, 0],
                     [0, 30, 0, 0],
                     [0, 0, 21, 0],
                     [0, 0, 10, 9]])
  label_values = np.array([7, 3, 42, 0])
  cluster_ids = np.array([2, 0, 3, 1])
  clusters, labels = [], []
  for c, row in enumerate(counts):
    for l, n in enumerate(row):
      clusters += [cluster_ids[c]] * n
      labels += [label_values[l]] * n
  order = _rng(5).permutation(len(labels))
  clusters, labels = np.array(clusters)[order], np.array(labels)[order]
  assert _brute_force_accuracy(clusters, labels) == 0.9
  assert latent_metrics.matched_accuracy(clusters, labels) == 0.9


@pytest.mark.parametrize('seed', range(20))
def test_matched_accuracy_equals_brute_force(seed):
  # Small skewed samples, where a greedy or many-to-one assignment of clusters to labels would often be wrong.
  rng = _rng(seed)
  k = 4
  labels = rng.choice([1, 5, 6, 9], size=30, p=[0.4, 0.3, 0.2, 0.1])
  clusters = rng.choice(k, size=30, p=[0.1, 0.2, 0.3, 0.4])
  labels[:k], clusters[:k] = [1, 5, 6, 9], np.arange(k)  # Every value present, so there are k of each.
  assert latent_metrics.matched_accuracy(clusters, labels) == pytest.approx(_brute_force_accuracy(clusters, labels))


# linear_probe_acc.


def test_probe_perfect_on_separable_data():
  latents, ids = _blobs(10, 300, seed=6, spread=10.0)
  acc = latent_metrics.linear_probe_acc(latents[:2000], ids[:2000], latents[2000:], ids[2000:])
  assert acc == 1.0


def test_probe_near_chance_on_random_labels():
  rng = _rng(7)
  latents = rng.normal(size=(4000, 16))
  labels = rng.integers(0, 10, size=4000)
  acc = latent_metrics.linear_probe_acc(latents[:2000], labels[:2000], latents[2000:], labels[2000:])
  assert abs(acc - 0.1) < 0.03  # Chance 0.1; the binomial sd over 2000 test points is 0.0067.


def test_probe_reaches_bayes_accuracy():
  # Two classes N(+-mu e_0, I) in 8 dims, equally likely: the Bayes classifier is linear, with accuracy Phi(mu).
  rng = _rng(8)
  mu = 1.0
  labels = rng.integers(0, 2, size=25000)
  latents = rng.normal(size=(25000, 8))
  latents[:, 0] += np.where(labels == 1, mu, -mu)
  acc = latent_metrics.linear_probe_acc(latents[:5000], labels[:5000], latents[5000:], labels[5000:])
  assert acc == pytest.approx(stats.norm.cdf(mu), abs=0.01)  # sd over 20000 test points is 0.0026.


def _softmax_objective(x, labels, coef, intercept):
  """sklearn's LogisticRegression(C=1) objective in float64: mean cross-entropy + |coef|^2 / (2N) (binomial for
  two classes, whose single coef_ is passed as (1, D))."""
  if coef.shape[0] == 1:  # Binomial: the two-class softmax with scores (0, w x + b).
    coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.append(0.0, intercept)
  scores = x @ coef.T + intercept
  cross_entropy = np.mean(special.logsumexp(scores, axis=1) - scores[np.arange(len(x)), labels])
  return cross_entropy + 0.5 / len(x) * np.sum(np.square(coef))


@pytest.mark.parametrize('num_classes', [2, 3, 10])
def test_logistic_regression_reaches_sklearns_optimum(num_classes):
  """The fit minimises sklearn's LogisticRegression() objective: against sklearn's own L-BFGS run in float64 to a
  tolerance of 1e-12, the same loss to float32 resolution, the same coefficients and the same predictions."""
  rng = _rng(10 + num_classes)
  centres, labels = 1.5 * rng.normal(size=(num_classes, 6)), rng.integers(0, num_classes, size=5000)
  x = centres[labels] + rng.normal(size=(5000, 6))  # Overlapping classes.
  classes, coef, intercept = latent_metrics.logistic_regression(x[:3000], labels[:3000])
  reference = linear_model.LogisticRegression(tol=1e-12, max_iter=100000).fit(x[:3000], labels[:3000])
  np.testing.assert_array_equal(classes, reference.classes_)
  ours = coef if num_classes > 2 else (coef[1] - coef[0])[None]
  ours_intercept = intercept if num_classes > 2 else intercept[1:] - intercept[:1]
  best = _softmax_objective(x[:3000], labels[:3000], reference.coef_, reference.intercept_)
  # Our loss is float32 (resolution 1.2e-7 relative): the fit stops where it sees no decrease, within a few units
  # of that of the optimum (about one here).
  assert _softmax_objective(x[:3000], labels[:3000], ours, ours_intercept) == pytest.approx(best, rel=5e-7)
  # A loss within delta of the optimum puts the coefficients within sqrt(2 delta / curvature), widest along the
  # flattest direction, whose curvature is the penalty's 1 / 3000: with losses below 0.6, sqrt(2 * 3e-7 * 3000).
  np.testing.assert_allclose(ours, reference.coef_, atol=0.04)
  np.testing.assert_allclose(ours_intercept, reference.intercept_, atol=0.04)
  predictions = classes[np.argmax(x[3000:] @ coef.T + intercept, axis=1)]
  assert np.mean(predictions == reference.predict(x[3000:])) > 0.998  # Only points on a boundary may differ.


# active_units.


def _means_with_variances(stds, n=1000, seed=9):
  """Means (n, D) whose column d has population variance exactly stds[d]^2, around random offsets."""
  signs = np.tile([-1.0, 1.0], n // 2)  # Mean 0 and population variance 1, exactly.
  offsets = _rng(seed).normal(size=len(stds))
  return offsets + signs[:, None] * np.array(stds)


def test_active_units_counts_dims_above_threshold():
  means = _means_with_variances([0.0, 0.05, 0.2, 1.0, 0.0, 0.5])  # Variances 0, 0.0025, 0.04, 1, 0, 0.25.
  assert latent_metrics.active_units(means) == 3
  assert latent_metrics.active_units(means, threshold=0.001) == 4
  assert latent_metrics.active_units(means, threshold=0.3) == 1
  assert latent_metrics.active_units(means, threshold=2.0) == 0


def test_active_units_threshold_is_strict():
  means = _means_with_variances([0.5, 0.5, 0.25])  # Variances 0.25, 0.25, 0.0625: exact in binary.
  assert latent_metrics.active_units(means, threshold=0.25) == 0
  assert latent_metrics.active_units(means, threshold=0.2499) == 2
  assert latent_metrics.active_units(means, threshold=0.0625) == 2
  assert latent_metrics.active_units(means, threshold=0.0624) == 3


def test_active_units_uses_population_variance():
  means = np.array([[-1.0], [1.0]])  # Population variance 1, sample variance (ddof=1) 2.
  assert latent_metrics.active_units(means, threshold=1.5) == 0
  assert latent_metrics.active_units(means, threshold=0.5) == 1


def test_active_units_matches_covariance_diagonal():
  rng = _rng(10)
  means = rng.normal(size=(500, 32)) * np.exp(rng.uniform(-4, 1, size=32)) + rng.normal(size=32)
  expected = int(np.sum(np.diag(np.cov(means, rowvar=False, bias=True)) > 0.01))
  assert 0 < expected < 32
  assert latent_metrics.active_units(means.astype(np.float32)) == expected


# kl_per_dim.


def _kl_normals(m1, s1, m2, s2):
  """KL(N(m1, s1^2) || N(m2, s2^2)) for scalars or arrays, the general closed form."""
  return np.log(s2 / s1) + (s1**2 + (m1 - m2)**2) / (2 * s2**2) - 0.5


def test_kl_per_dim_matches_general_closed_form():
  rng = _rng(11)
  means = rng.normal(scale=2.0, size=(300, 6))
  logvars = rng.normal(scale=1.5, size=(300, 6))
  expected = _kl_normals(means, np.exp(0.5 * logvars), 0.0, 1.0).mean(axis=0)
  got = latent_metrics.kl_per_dim(means, logvars)
  assert got.shape == (6,)
  np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize('mean, logvar', [(0.0, 0.0), (0.7, -0.4), (-2.0, 1.3), (1.5, -3.0)])
def test_kl_per_dim_matches_numerical_integral(mean, logvar):
  q = stats.norm(mean, math.exp(0.5 * logvar))
  lo, hi = q.ppf(1e-12), q.isf(1e-12)
  expected, _ = integrate.quad(lambda z: q.pdf(z) * (q.logpdf(z) - stats.norm.logpdf(z)), lo, hi)
  got = latent_metrics.kl_per_dim(np.array([[mean]]), np.array([[logvar]]))
  np.testing.assert_allclose(got, [expected], rtol=1e-7, atol=1e-10)


def test_kl_per_dim_sums_to_mean_total_kl():
  # Total KL(N(m, diag(v)) || N(0, I)) = 1/2 [tr(diag v) + m^T m - k - log det diag(v)], per image, then averaged.
  rng = _rng(12)
  means = rng.normal(size=(50, 5))
  logvars = rng.normal(size=(50, 5))
  totals = []
  for m, lv in zip(means, logvars):
    cov = np.diag(np.exp(lv))
    totals.append(0.5 * (np.trace(cov) + m @ m - len(m) - np.linalg.slogdet(cov)[1]))
  assert latent_metrics.kl_per_dim(means, logvars).sum() == pytest.approx(np.mean(totals), rel=1e-12)


def test_kl_per_dim_computes_in_float64():
  # Near the prior exp(logvar) - 1 - logvar cancels to O(logvar^2): float32 would keep about one digit of it.
  means = np.array([[1e-3, 0.5], [2e-3, -0.5]], np.float32)
  logvars = np.array([[1e-3, 0.1], [-1e-3, 0.2]], np.float32)
  m, lv = means.astype(np.float64), logvars.astype(np.float64)
  expected = _kl_normals(m, np.exp(0.5 * lv), 0.0, 1.0).mean(axis=0)
  got = latent_metrics.kl_per_dim(means, logvars)
  assert got.dtype == np.float64
  np.testing.assert_allclose(got, expected, rtol=1e-9)


@pytest.mark.parametrize('images_used', [20000, 2000])  # 2000: a larger mixture's images drawn (MIXTURE_WORK).
def test_kl_per_dim_to_a_mixture_prior_matches_numerical_integrals(images_used, monkeypatch):
  """Under a mixture prior (the VampPrior) each dimension's KL is to the prior's 1-D marginal mixture: one draw per
  image estimates it; against scipy's quadrature of the same integral, within the estimate's standard error (of the
  images it used: a mixture too large for all of them uses MIXTURE_WORK // (K D))."""
  monkeypatch.setattr(latent_metrics, 'MIXTURE_WORK', images_used * 6)
  prior_means = np.array([[-1.0, 0.5], [1.5, 0.0], [0.0, -2.0]])
  prior_logvars = np.log(np.array([[0.3, 1.0], [0.8, 0.2], [1.5, 0.5]]))
  mean, logvar = np.array([0.4, -1.0]), np.log(np.array([0.5, 0.1]))
  n = 20000
  got = latent_metrics.kl_per_dim(np.tile(mean, (n, 1)), np.tile(logvar, (n, 1)), (prior_means, prior_logvars),
                                  seed=0)
  for d in range(2):
    q = stats.norm(mean[d], math.exp(0.5 * logvar[d]))
    log_p = lambda z, d=d: np.log(np.mean([stats.norm.pdf(z, m, math.exp(0.5 * lv))
                                           for m, lv in zip(prior_means[:, d], prior_logvars[:, d])]))
    integrand = lambda z, log_p=log_p: q.pdf(z) * (q.logpdf(z) - log_p(z))
    expected, _ = integrate.quad(integrand, q.ppf(1e-12), q.isf(1e-12))
    second, _ = integrate.quad(lambda z, log_p=log_p: q.pdf(z) * (q.logpdf(z) - log_p(z)) ** 2,
                               q.ppf(1e-12), q.isf(1e-12))
    stderr = math.sqrt((second - expected ** 2) / images_used)
    assert abs(got[d] - expected) < 5 * stderr, (d, got[d], expected, stderr)
  if images_used < n:  # Fewer draws than the images': another estimate than all 20,000 give.
    monkeypatch.setattr(latent_metrics, 'MIXTURE_WORK', n * 6)
    assert not np.allclose(got, latent_metrics.kl_per_dim(np.tile(mean, (n, 1)), np.tile(logvar, (n, 1)),
                                                           (prior_means, prior_logvars), seed=0))
  # One component is the closed form (no sampling): KL between two Gaussians per dimension.
  one = latent_metrics.kl_per_dim(mean[None], logvar[None], (prior_means[:1], prior_logvars[:1]))
  np.testing.assert_allclose(one, _kl_normals(mean, np.exp(0.5 * logvar), prior_means[0],
                                              np.exp(0.5 * prior_logvars[0])), rtol=1e-12)
