"""The exemplar prior (models.Exemplars, steps.training_exemplars): its density and leave-one-out against scipy, its
variance's gradient against the closed form, the exemplars a step draws, and a run trained, loaded and sampled."""
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import special, stats

from conftest import ROOT, read_json
from vae import models, steps

# Every density here is at full float32, whatever the backend's default.
pytestmark = pytest.mark.usefixtures('full_precision')


@pytest.fixture
def full_precision():
  with jax.default_matmul_precision('float32'):
    yield


def _model_config(**keys):
  return ml_collections.ConfigDict({'name': 'gated', 'encoder_widths': (8,), 'decoder_widths': (8,),
                                    'latent_dim': 3, 'prior': 'exemplar', 'num_exemplars': 6, **keys})


def _model(seed=0):
  graphdef, params = models.init(_model_config(), jax.random.key(seed))
  return graphdef, params


# Six exemplars, training-set indices with one repeated (drawn with replacement); a batch of three images whose own
# indices are 2 (drawn twice: both left out), 4 (not drawn: none left out) and 5.
IDS = np.array([0, 1, 2, 3, 2, 5])
OWN = np.array([2, 4, 5])


def _reference_log_prior(z, means, logvar, ids=None, own=None):
  """log p(z_i) by scipy: the mean over the exemplars it may use of N(z_i; means[k], exp(logvar) I)."""
  out = []
  for i, zi in enumerate(z):
    kept = np.ones(len(means), bool) if own is None else ids != own[i]
    dens = [stats.multivariate_normal.logpdf(zi, means[k], np.exp(logvar) * np.eye(len(zi)))
            for k in np.flatnonzero(kept)]
    out.append(special.logsumexp(dens) - np.log(kept.sum()))
  return np.array(out)


def test_exemplar_prior_density_and_leave_one_out_against_scipy():
  graphdef, params = _model()
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(6, 784)).astype(np.float32)
  z = rng.normal(size=(3, 3)).astype(np.float32)
  means = np.asarray(models.apply(graphdef, params, 'encode', images)[0], np.float64)
  logvar = float(params['exemplar_logvar'])
  # Float32 sums of 3 squared distances and a log-sum-exp over 6 terms, of values of a few nats: 1e-5 relative.
  at_test = models.apply(graphdef, params, 'prior', models.Exemplars(images)).log_prob(z)
  np.testing.assert_allclose(at_test, _reference_log_prior(z, means, logvar), rtol=1e-5)
  training = models.apply(graphdef, params, 'prior', models.Exemplars(images, IDS, OWN)).log_prob(z)
  np.testing.assert_allclose(training, _reference_log_prior(z, means, logvar, IDS, OWN), rtol=1e-5)
  assert abs(float(training[0] - at_test[0])) > 1e-3  # Image 0's own exemplars count: leaving them out changes it.
  # An image that drew only its own exemplar keeps them (no -inf prior, no NaN gradient): the plain mixture.
  alone = lambda p: models.apply(graphdef, p, 'prior', models.Exemplars(images[:2], np.array([3, 3]),
                                                                        np.array([3]))).log_prob(z[:1])
  np.testing.assert_allclose(alone(params), _reference_log_prior(z[:1], means[:2], logvar), rtol=1e-5)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(jax.grad(lambda p: jnp.sum(alone(p)))(params)))


def test_exemplar_variance_gradient_is_the_closed_form():
  """d log p(z) / d logvar = sum_k r_k (||z - m_k||^2 / (2 sigma^2) - D / 2), r_k the components' responsibilities:
  the learnt variance gets the gradient the mixture's density says, through the leave-one-out weights too."""
  graphdef, params = _model(1)
  rng = np.random.default_rng(1)
  images = rng.uniform(size=(6, 784)).astype(np.float32)
  z = rng.normal(size=(3, 3)).astype(np.float32)
  exemplars = models.Exemplars(images, IDS, OWN)
  grad = jax.grad(lambda p: jnp.sum(models.apply(graphdef, p, 'prior', exemplars).log_prob(z)))(params)
  means = np.asarray(models.apply(graphdef, params, 'encode', images)[0], np.float64)
  var = np.exp(float(params['exemplar_logvar']))
  expected = 0.0
  for i, zi in enumerate(z.astype(np.float64)):
    kept = IDS != OWN[i]
    sq = np.sum(np.square(zi - means[kept]), axis=1)
    r = special.softmax(-0.5 * sq / var)
    expected += np.sum(r * (0.5 * sq / var - 0.5 * z.shape[1]))
  # Float32 gradients of sums of a few terms of order 1: 1e-4 relative.
  np.testing.assert_allclose(float(grad['exemplar_logvar']), expected, rtol=1e-4)
  # The exemplars are encoded with gradients, as in their code: every weight of their posterior means gets one.
  mean_path = {k: v for k, v in grad['encoder'].items() if k != 'logvar'}
  assert all(np.abs(np.asarray(g)).sum() > 0 for g in jax.tree.leaves(mean_path))


def test_training_exemplars_are_gray_training_images_drawn_with_replacement():
  images = np.random.default_rng(2).integers(0, 256, size=(40, 784), dtype=np.uint8)
  batch = jnp.array([3, 7, 11])
  config = _model_config(num_exemplars=30)
  exemplars = steps.training_exemplars(jnp.asarray(images), batch, jax.random.key(3), config)
  ids = np.asarray(exemplars.ids)
  assert ids.shape == (30,) and ids.min() >= 0 and ids.max() < 40
  # 30 draws of 40 with replacement repeat one with probability 1 - 40! / (10! 40^30) > 0.9999; without, never.
  assert len(np.unique(ids)) < 30
  # Within an ulp: XLA may divide by 255 as a product with its reciprocal.
  np.testing.assert_allclose(np.asarray(exemplars.images), images[ids].astype(np.float32) / 255.0, rtol=2e-7)
  np.testing.assert_array_equal(np.asarray(exemplars.own_ids), np.asarray(batch))
  other = steps.training_exemplars(jnp.asarray(images), batch, jax.random.key(4), config)
  assert not np.array_equal(np.asarray(other.ids), ids)  # Each step's own draw.
  assert steps.training_exemplars(jnp.asarray(images), batch, jax.random.key(3), _model_config(prior='vamp')) is None


def test_exemplar_run_trains_loads_and_generates(tmp_path):
  import vae  # pylint: disable=g-import-not-at-top
  from vae import data  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'run')
  overrides = {'data.max_train_images': 300, 'data.max_test_images': 100, 'data.validation_size': 100,
               'model.num_exemplars': 50, 'train.num_epochs': 2, 'train.warmup_epochs': 1, 'eval.iw_samples': 20,
               'model.encoder_widths': (20,), 'model.decoder_widths': (20,), 'model.latent_dim': 4,
               'eval.manifold_size': 3, 'eval.batch_size': 100}
  vae.train(os.path.join(ROOT, 'configs', 'vampprior.py:mnist_exemplar'), workdir, overrides, verbose=False)
  results = read_json(os.path.join(workdir, 'results.json'))
  assert np.isfinite(results['test/nll_iw']) and results['test/nll_iw'] < results['test/neg_elbo']  # A tighter bound.
  model = vae.load(workdir)
  dataset = data.hold_out(data.load('mnist'), 100, 'last')
  # The loaded prior is made of every training image the run trained on, gray.
  np.testing.assert_allclose(np.asarray(model.exemplars.images), data.flat(dataset.train_images[:300]) / np.float32(255),
                             rtol=2e-7)  # Within an ulp, as above.
  means, logvars = model.prior()
  assert means.shape == (300, 4) and np.all(logvars == logvars[0, 0])  # One shared variance.
  samples = model.generate(n=5, seed=0)
  assert samples.shape == (5, 28, 28) and np.all((samples >= 0) & (samples <= 1))


def test_exemplar_prior_refused_where_it_does_not_apply():
  """One line before anything runs: a model of two levels, the analytic KL, and inputs in [-1, 1]."""
  from test_configs import load  # pylint: disable=g-import-not-at-top
  from vae import validation  # pylint: disable=g-import-not-at-top
  from vae.errors import VaeError  # pylint: disable=g-import-not-at-top
  config = load('vampprior', 'fashion_hvae')
  config.model.prior = 'exemplar'
  with pytest.raises(VaeError, match="model.name='hvae': .* hvae is not a models.VAE of one level"):
    validation.check_model(config.model)
  config = load('vampprior', 'fashion_exemplar')
  config.train.kl_estimator = 'analytic'
  with pytest.raises(VaeError, match="the KL to the exemplar prior .* has no closed form"):
    validation.check_config(config, 1)
  config = load('vampprior', 'fashion_exemplar')
  config.data.preprocessing, config.model.likelihood = 'signed', 'gaussian'
  with pytest.raises(VaeError, match=r"the exemplar prior's inputs are pixels in \[0, 1\]"):
    validation.check_config(config, 1)


@pytest.mark.parametrize('wiring', ['as trained', 'none left out'])
def test_a_training_step_leaves_each_images_own_exemplar_out(wiring, monkeypatch):
  """Two training images, one a batch: with its own left out, each image's prior is the other image's one Gaussian
  whatever the draws, so an epoch's loss does not depend on how many exemplars it draws (up to float rounding of a
  log-sum-exp of equal terms). The same check with own ids that match none (an image keeping its own exemplar, in a
  mixture whose weights vary with the draws) must fail, or the check would prove nothing."""
  from test_configs import load  # pylint: disable=g-import-not-at-top
  from vae import runs  # pylint: disable=g-import-not-at-top
  if wiring == 'none left out':
    draw = steps.training_exemplars
    monkeypatch.setattr(steps, 'training_exemplars', lambda images, batch_indices, key, config: draw(
        images, jnp.full_like(batch_indices, -1), key, config))
  losses = []
  for num_exemplars in (16, 64):
    config = load('vampprior', 'mnist_exemplar')
    config.data.max_train_images, config.data.validation_size, config.data.max_test_images = 2, 100, 10
    config.train.batch_size, config.model.num_exemplars = 1, num_exemplars
    config.model.encoder_widths, config.model.decoder_widths, config.model.latent_dim = (8,), (8,), 3
    run = runs.Run([config])
    _, metrics, _ = run.train_epoch(run.place(run.initial_states), run.train_images, jnp.int32(1), run.keys,
                                    run.hparams)
    losses.append(float(np.asarray(metrics['loss']).ravel()[0]))
  same = losses[0] == pytest.approx(losses[1], rel=1e-6)  # Float32 rounding of the two log-sum-exps: 1e-6.
  assert same if wiring == 'as trained' else not same, losses
