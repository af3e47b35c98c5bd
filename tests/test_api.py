"""vae.load and the Model methods: shapes, dtypes, input forms, and log_likelihood against an independent estimate."""
import numpy as np
import pytest
from scipy import special, stats

import vae
from conftest import REORDERED
from vae import data
from vae.errors import VaeError


@pytest.fixture(scope='module')
def model(trained):
  return vae.load(trained)


@pytest.fixture(scope='module')
def images():
  return data.load('fashion_mnist').test_images[:37]  # Not a multiple of the batch size.


def test_shapes_and_dtypes(model, images):
  mean, logvar = model.encode(images)
  assert mean.shape == logvar.shape == (37, 128) and mean.dtype == np.float32
  np.testing.assert_array_equal(model.transform(images), mean)
  decoded = model.decode(mean)
  assert decoded.shape == (37, 28, 28) and decoded.min() >= 0 and decoded.max() <= 1
  assert model.reconstruct(images).shape == (37, 784)
  assert model.reconstruct(images.reshape(-1, 28, 28)).shape == (37, 28, 28)
  assert model.generate(n=5, seed=1).shape == (5, 28, 28)
  np.testing.assert_allclose(model.generate(z=mean[:3]), decoded[:3], **REORDERED)  # Another batch shape.
  samples = model.sample(6, seed=0)
  assert samples.shape == (6, 28, 28) and set(np.unique(samples)) <= {0.0, 1.0}
  assert model.log_likelihood(images[:3], num_samples=5).shape == (3,)


def test_input_forms_agree(model, images):
  as_uint8 = model.encode(images)[0]
  np.testing.assert_allclose(model.encode(images.astype(np.float32) / 255)[0], as_uint8, rtol=1e-6)
  np.testing.assert_allclose(model.encode(images.reshape(-1, 28, 28))[0], as_uint8, rtol=1e-6)
  # Batching is invisible: one image alone encodes as it does among others.
  np.testing.assert_allclose(model.encode(images[5:6])[0][0], as_uint8[5], **REORDERED)
  with pytest.raises(ValueError, match='28, 28'):
    model.encode(images.reshape(-1, 49, 16))


@pytest.mark.parametrize('n,sizes', [(0, []), (1, [1]), (3, [4]), (37, [64]), (500, [500]), (1001, [500] * 3)])
def test_few_images_are_padded_to_a_power_of_two_not_a_full_batch(model, n, sizes):
  batches = model._batches(np.ones((n, 784), np.float32))
  assert [len(b) for b in batches] == sizes
  if n:  # The images, in order, then zeros.
    stacked = np.concatenate(batches)
    assert stacked[:n].min() == 1 and not stacked[n:].any()


def test_log_likelihood_matches_independent_estimate(model, images):
  """The IW estimate recomputed with numpy and scipy from encode/decode alone agrees within a nat on average.

  Both are noisy estimates with independent samples; on this barely trained model the per-image noise at 3000
  samples is about a nat, so single images get more room than the average.
  """
  x = images[:8].astype(np.float64) / 255
  num_samples = 3000
  mean, logvar = (a.astype(np.float64) for a in model.encode(images[:8]))
  std = np.exp(0.5 * logvar)
  z = mean + std * np.random.default_rng(0).normal(size=(num_samples,) + mean.shape)
  p = model.decode(z.reshape(-1, mean.shape[1]).astype(np.float32)).reshape(num_samples, 8, 784).astype(np.float64)
  p = np.clip(p, 1e-7, 1 - 1e-7)
  log_lik = np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=-1)  # Gray pixels: the cross-entropy form.
  log_w = log_lik + stats.norm.logpdf(z).sum(-1) - stats.norm.logpdf(z, mean, std).sum(-1)
  independent = special.logsumexp(log_w, axis=0) - np.log(num_samples)
  estimate = model.log_likelihood(images[:8], num_samples=num_samples, seed=0)
  np.testing.assert_allclose(estimate, independent, atol=3.0)
  assert np.mean(estimate) == pytest.approx(np.mean(independent), abs=1.0)


def test_load_errors(tmp_path):
  with pytest.raises(VaeError, match='config.json'):
    vae.load(str(tmp_path))


@pytest.mark.parametrize('bad,seen', [(255.0, 'to 255'), (np.nan, '1 non-finite values')])
def test_float_images_outside_0_1_are_refused(model, images, bad, seen):
  x = images.astype(np.float32) / 255
  x[0, 0] = bad
  if bad == 255.0:
    x = images.astype(np.float64)  # A PNG read as float: 0..255.
  for method in (model.encode, model.transform, model.reconstruct, model.log_likelihood):
    with pytest.raises(ValueError, match=r'float images must lie in \[0, 1\].*' + seen):
      method(x)
