"""vae.load and the Model: its numpy methods (shapes, dtypes, input forms, errors, log_likelihood against an
independent estimate), its pure functions under jit, grad and vmap, and a binarized model's preprocessing."""
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import special, stats

import vae
from conftest import REORDERED, ROOT
from vae import api, data, launch, models
from vae.errors import VaeError


@pytest.fixture(scope='module')
def model(trained):
  return vae.load(trained)


@pytest.fixture(scope='module')
def images():
  return data.flat(data.load('fashion_mnist').test_images[:37])  # Flat (N, 784); not a multiple of the batch size.


def test_shapes_and_dtypes(model, images):
  mean, logvar = model.encode(images)
  assert mean.shape == logvar.shape == (37, 128) and mean.dtype == np.float32
  np.testing.assert_array_equal(model.transform(images), mean)
  decoded = model.decode(mean)
  assert decoded.shape == (37, 28, 28) and decoded.min() >= 0 and decoded.max() <= 1
  assert model.reconstruct(images).shape == (37, 784)
  assert model.reconstruct(images.reshape(-1, 28, 28)).shape == (37, 28, 28)
  assert model.reconstruct(images.reshape(-1, 28, 28, 1)).shape == (37, 28, 28, 1)  # The data's own shape.
  assert model.image_shape == (28, 28, 1)
  assert model.generate(n=5, seed=1).shape == (5, 28, 28)
  np.testing.assert_allclose(model.generate(z=mean[:3]), decoded[:3], **REORDERED)  # Another batch shape.
  samples = model.sample(6, seed=0)
  assert samples.shape == (6, 28, 28) and set(np.unique(samples)) <= {0.0, 1.0}
  assert model.log_likelihood(images[:3], num_samples=5).shape == (3,)


def test_no_images_give_empty_outputs(model):
  for none in (np.zeros((0, 784), np.uint8), np.zeros((0, 28, 28), np.float32)):
    mean, logvar = model.encode(none)
    assert mean.shape == logvar.shape == (0, 128) and mean.dtype == np.float32
    assert model.log_likelihood(none, num_samples=3).shape == (0,)
    assert model.reconstruct(none).shape == none.shape
  assert model.decode(np.zeros((0, 128))).shape == (0, 28, 28)


def test_input_forms_agree(model, images):
  as_uint8 = model.encode(images)[0]
  np.testing.assert_allclose(model.encode(images.astype(np.float32) / 255)[0], as_uint8, rtol=1e-6)
  np.testing.assert_allclose(model.encode(images.reshape(-1, 28, 28))[0], as_uint8, rtol=1e-6)
  for dtype in (np.int64, np.int32, np.uint16):  # Integers are 0..255, as uint8.
    np.testing.assert_array_equal(model.encode(images.astype(dtype))[0], as_uint8)
  # Batching is invisible: one image alone encodes as it does among others.
  np.testing.assert_allclose(model.encode(images[5:6])[0][0], as_uint8[5], **REORDERED)
  # bool images are binary: True is 1.0, as 255 and 1.0 are.
  binary = images > 127
  as_bool = model.encode(binary)[0]
  np.testing.assert_array_equal(model.encode(binary.astype(np.uint8) * 255)[0], as_bool)
  np.testing.assert_allclose(model.encode(binary.astype(np.float32))[0], as_bool, rtol=1e-6)
  np.testing.assert_array_equal(model.inputs(binary), binary.astype(np.float32))


@pytest.mark.parametrize('n,sizes', [(0, [1]), (1, [1]), (3, [4]), (37, [64]), (500, [500]), (1001, [500] * 3)])
def test_few_images_are_padded_to_a_power_of_two_not_a_full_batch(model, n, sizes):
  batches = model._batches(np.ones((n, 784), np.float32))
  assert [len(b) for b in batches] == sizes
  stacked = np.concatenate(batches)  # The images, in order, then zeros.
  assert (stacked[:n] == 1).all() and not stacked[n:].any()


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


def _one_line_error(fn, *args):
  with pytest.raises(ValueError) as error:
    fn(*args)
  assert '\n' not in str(error.value)
  return str(error.value)


def test_bad_inputs_are_refused_in_one_line(model, images):
  binary01 = (images > 127).astype(np.uint8)  # 0/1: binary, or 0..255 nearly black? Refused, never guessed.
  for method in (model.encode, model.transform, model.reconstruct, model.log_likelihood):
    assert _one_line_error(method, binary01) == (
        'uint8 images hold only 0 and 1, which in 0..255 are nearly black: pass binary images as '
        'images.astype(bool) (or images * 255)')
  assert _one_line_error(model.encode, images.astype(np.int64) + 1) == (
      'int64 images must lie in 0..255 (float images in [0, 1]); got values from 1 to 256')
  assert _one_line_error(model.encode, images.astype(np.int16) - 1) == (
      'int16 images must lie in 0..255 (float images in [0, 1]); got values from -1 to 254')
  assert _one_line_error(model.encode, images.astype(str)) == (
      'images must be integers in 0..255, float in [0, 1] or bool; got dtype <U3')
  assert _one_line_error(model.encode, images.reshape(-1, 49, 16)) == (
      "images must be shaped (N, 28, 28, 1) or (N, 784), the model's image_shape; got (37, 49, 16)")
  # A blank uint8 image is 0 whichever way it is read: accepted.
  assert model.encode(np.zeros((2, 784), np.uint8))[0].shape == (2, 128)
  for z, shape in ((np.zeros((4, 129)), '(4, 129)'), (np.zeros((4, 64)), '(4, 64)'), (np.zeros(128), '(128,)')):
    assert _one_line_error(model.decode, z) == f"codes must be shaped (N, 128), the model's latent_dim; got {shape}"
    assert _one_line_error(lambda z: model.generate(z=z), z).startswith('codes must be shaped (N, 128)')


def test_params_and_module(model, images):
  """params are jax arrays; module is the nnx.Module holding them, a copy: changing it leaves the model as it was."""
  leaves = jax.tree.leaves(model.params)
  assert leaves and all(isinstance(p, jax.Array) and p.dtype == jnp.float32 for p in leaves)
  module = model.module
  assert isinstance(module, nnx.Module) and module is not model.module
  mean, logvar = model.encode(images)
  with jax.default_matmul_precision('float32'):
    got = module.encode(jnp.asarray(images, jnp.float32) / 255)
  np.testing.assert_allclose(got[0], mean, **REORDERED)
  np.testing.assert_allclose(got[1], logvar, **REORDERED)
  kernel = np.asarray(model.params['encoder']['mean']['kernel'])
  module.encoder.mean.kernel[...] = jnp.zeros_like(kernel)
  np.testing.assert_array_equal(model.params['encoder']['mean']['kernel'], kernel)
  np.testing.assert_array_equal(model.encode(images)[0], mean)


@pytest.fixture(scope='module')
def x(model, images):
  """32 images (a power of two: the numpy methods' one batch, unpadded) as the functions take them."""
  inputs = model.inputs(images[:32])
  assert inputs.shape == (32, 784) and inputs.dtype == np.float32
  np.testing.assert_array_equal(inputs, images[:32].astype(np.float32) / np.float32(255))
  return inputs


def test_functions_under_jit_agree_with_the_numpy_methods(model, images, x):
  mean, logvar = jax.jit(model.fns.encode)(model.params, x)
  np.testing.assert_allclose(mean, model.encode(images[:32])[0], **REORDERED)
  np.testing.assert_allclose(logvar, model.encode(images[:32])[1], **REORDERED)
  pixels = jax.jit(model.fns.decode)(model.params, mean)
  assert pixels.shape == (32, 784)
  np.testing.assert_allclose(pixels, model.decode(mean).reshape(32, 784), **REORDERED)
  # The numpy method draws with fold_in(key(seed), batch index): the same draws, so the same estimate.
  log_px = jax.jit(model.fns.log_likelihood, static_argnames='num_samples')(
      model.params, x, jax.random.fold_in(jax.random.key(3), 0), num_samples=20)
  assert log_px.shape == (32,)
  np.testing.assert_allclose(log_px, model.log_likelihood(images[:32], 20, seed=3), **REORDERED)


def test_elbo_matches_numpy_recomputation(model, x):
  """One draw per image, z = mean + exp(logvar / 2) eps with eps = normal(key, (N, latent_dim)): log p(x|z) in
  float64 from the decoder's logits, minus the closed-form KL to N(0, I). float32 sums of 784 and 128 terms: 1e-4."""
  key = jax.random.key(7)
  elbo = jax.jit(model.fns.elbo)(model.params, x, key)
  assert elbo.shape == (32,)
  mean, logvar = (np.asarray(a, np.float64) for a in model.fns.encode(model.params, x))
  z = mean + np.exp(0.5 * logvar) * np.asarray(jax.random.normal(key, mean.shape), np.float64)
  with jax.default_matmul_precision('float32'):
    logits = np.asarray(model.module.decode(jnp.asarray(z, jnp.float32)), np.float64)
  pixels = x.astype(np.float64)
  log_px_z = np.sum(pixels * logits - np.logaddexp(0, logits), axis=-1)
  kl = 0.5 * np.sum(np.exp(logvar) + mean ** 2 - 1 - logvar, axis=-1)
  np.testing.assert_allclose(elbo, log_px_z - kl, rtol=1e-4)


@pytest.fixture(scope='module')
def smooth(model):
  """The trained model's architecture with tanh for ReLU, untrained: for finite differences, which across a ReLU's
  kink are off by the slope's jump (the trained model's decode gradient by up to 0.1 at every h from 5e-4 to 0.1)."""
  config = model.config.copy_and_resolve_references()
  config.model.activation = 'tanh'
  return api.Model(config, *models.init(config.model, jax.random.key(0)))


def test_functions_under_grad(model, smooth, x):
  grads = jax.jit(jax.grad(lambda p: jnp.mean(model.fns.elbo(p, x, jax.random.key(0)))))(model.params)
  assert jax.tree.structure(grads) == jax.tree.structure(model.params)
  for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(model.params)):
    assert g.shape == p.shape and g.dtype == p.dtype and np.isfinite(g).all()
  layers = grads['decoder']['layers']  # A pure dict: {0: ..., 1: ..., 2: ...}.
  assert np.abs(layers[max(layers)]['bias']).max() > 1e-3  # The output bias moves every image's pixels.
  z = np.asarray(model.fns.encode(model.params, x)[0])
  dz = jax.grad(lambda z: jnp.sum(model.fns.decode(model.params, z)))(z)
  assert dz.shape == z.shape and np.isfinite(dz).all()

  # d sum(decode(z)) / dz against central differences in float32, all 128 coordinates of one code at once. The sum
  # (~400, accumulated in float64 from float32 pixels) is off by ~3e-6, 5e-5 over 2h = 0.06; the truncation,
  # h^2 / 6 |f'''|, ~1e-4 (measured: both together under 1e-4); gradient entries reach ~1.5.
  z = np.asarray(smooth.fns.encode(smooth.params, x[:1])[0])
  grad = np.asarray(jax.grad(lambda z: jnp.sum(smooth.fns.decode(smooth.params, z)))(z))[0]
  h, eye = 3e-2, np.eye(z.shape[1], dtype=np.float32)  # Row i: the code moved along axis i.
  total = lambda z: np.sum(np.asarray(jax.jit(smooth.fns.decode)(smooth.params, z), np.float64), axis=-1)
  np.testing.assert_allclose(grad, (total(z + h * eye) - total(z - h * eye)) / (2 * h), atol=1e-3)

  # The ELBO's gradient in the parameters (one fixed draw: the reparameterised ELBO is a smooth function of them),
  # along its own direction, where the derivative is its norm (~80): f ~ -580 is off by ~1e-4, 5e-3 over 2h = 0.02,
  # ~6e-5 relative; the truncation ~5e-5 (measured); 1e-3.
  elbo = jax.jit(lambda p: jnp.mean(smooth.fns.elbo(p, x, jax.random.key(0))))
  grads = jax.grad(elbo)(smooth.params)
  norm = np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in jax.tree.leaves(grads)))
  moved = lambda h: float(elbo(jax.tree.map(lambda p, g: p + h * g / norm, smooth.params, grads)))
  assert (moved(1e-2) - moved(-1e-2)) / 2e-2 == pytest.approx(norm, rel=1e-3)


def test_functions_under_vmap(model, x):
  """vmap over a leading axis (images, a stack of batches, parameter sets, keys) agrees with the batched call."""
  encode, decode = jax.jit(model.fns.encode), jax.jit(model.fns.decode)
  mean, logvar = encode(model.params, x)
  per_image = jax.jit(jax.vmap(model.fns.encode, in_axes=(None, 0)))(model.params, x)
  np.testing.assert_allclose(per_image[0], mean, **REORDERED)
  np.testing.assert_allclose(per_image[1], logvar, **REORDERED)
  stacked = jax.jit(jax.vmap(model.fns.decode, in_axes=(None, 0)))(model.params, mean.reshape(4, 8, -1))
  np.testing.assert_allclose(stacked.reshape(32, 784), decode(model.params, mean), **REORDERED)
  # Two parameter sets at once (a sweep's members): each as its own call.
  other = jax.tree.map(lambda p: 0.9 * p, model.params)
  both = jax.tree.map(lambda a, b: jnp.stack([a, b]), model.params, other)
  means = jax.jit(jax.vmap(model.fns.encode, in_axes=(0, None)))(both, x)[0]
  np.testing.assert_allclose(means[0], mean, **REORDERED)
  np.testing.assert_allclose(means[1], encode(other, x)[0], **REORDERED)
  # One key per image: each image's ELBO as if scored alone with its key.
  keys = jax.random.split(jax.random.key(1), 4)
  elbo = jax.jit(model.fns.elbo)
  elbos = jax.jit(jax.vmap(model.fns.elbo, in_axes=(None, 0, 0)))(model.params, x[:4], keys)
  np.testing.assert_allclose(elbos, [elbo(model.params, x[i], keys[i]) for i in range(4)], **REORDERED)
  # Several seeds of the IW estimate at once.
  log_likelihood = jax.jit(model.fns.log_likelihood, static_argnums=3)
  seeds = jax.vmap(jax.random.key)(jnp.arange(3))
  got = jax.jit(jax.vmap(model.fns.log_likelihood, in_axes=(None, None, 0, None)), static_argnums=3)(
      model.params, x[:8], seeds, 10)
  assert got.shape == (3, 8)
  for s in range(3):
    np.testing.assert_allclose(got[s], log_likelihood(model.params, x[:8], seeds[s], 10), **REORDERED)


def _precisions(lowered):
  """The precision of every dot_general in a lowered program's StableHLO ('DEFAULT' where none is set)."""
  lines = [line for line in lowered.as_text().splitlines() if 'stablehlo.dot_general' in line]
  return [m.group(1) if (m := re.search(r'precision = \[(\w+), \w+\]', line)) else 'DEFAULT' for line in lines]


def test_functions_run_at_full_float32_under_a_fast_default(model, x):
  """Forward and backward passes at HIGHEST (full float32) whatever JAX's default: read off StableHLO."""
  key = jax.random.key(0)
  with jax.default_matmul_precision('bfloat16'):
    programs = {
        'encode': jax.jit(model.fns.encode).lower(model.params, x),
        'grad decode': jax.jit(jax.grad(lambda z: jnp.sum(model.fns.decode(model.params, z)))).lower(x[:, :128]),
        'grad elbo': jax.jit(jax.grad(lambda p: jnp.sum(model.fns.elbo(p, x, key)))).lower(model.params),
        'vmap log_likelihood': jax.jit(jax.vmap(model.fns.log_likelihood, in_axes=(None, 0, None, None)),
                                       static_argnums=3).lower(model.params, x, key, 4)}
  for name, lowered in programs.items():
    found = _precisions(lowered)
    assert found and set(found) == {'HIGHEST'}, name


# A dynamically binarized model (configs/burda_mnist.py), tiny.
BINARIZED = {'data.max_train_images': 200, 'data.max_test_images': 100, 'train.batch_size': 40,
             'eval.batch_size': 50, 'eval.iw_samples': 10, 'eval.manifold_size': 5, 'train.num_epochs': 1,
             'model.encoder_widths': (32,), 'model.decoder_widths': (32,), 'model.latent_dim': 4}


def test_binarized_model_scores_gray_images_as_its_evaluation_did(quick_iwae):
  """A dynamically binarized run (conftest.QUICK_IWAE: 100 test images) scored its test set binarized once
  (data.binarize_once): the test set passed gray gets the same binary images, so the IW NLL matches results.json's,
  exactly with the run's seed and draws (one batch, as the evaluation's), within the estimate's noise with others;
  preprocess=False scores the gray pixels."""
  model = vae.load(quick_iwae)
  with open(os.path.join(quick_iwae, 'results.json')) as f:
    results = json.load(f)
  reported, k = results['test/nll_iw'], results['eval/iw_samples']
  gray = data.flat(data.load('mnist').test_images[:100])
  binary = data.binarize_once(gray, 'test')
  np.testing.assert_array_equal(model.inputs(gray), binary / np.float32(255))
  np.testing.assert_array_equal(model.inputs(gray, preprocess=False), gray / np.float32(255))
  np.testing.assert_array_equal(model.encode(gray)[0], model.encode(binary)[0])
  assert -np.mean(model.log_likelihood(gray, k, seed=model.config.seed)) == pytest.approx(reported, rel=1e-6)
  # Other draws: the per-image spread over 8 seeds gives the standard error of one estimate's mean over images.
  runs = np.array([model.log_likelihood(gray, k, seed=s) for s in range(1, 9)])
  standard_error = np.sqrt(np.mean(np.var(runs, axis=0, ddof=1)) / len(gray))
  assert abs(-np.mean(runs[0]) - reported) < 4 * np.sqrt(2) * standard_error  # Two independent estimates: 4 sigma.
  as_gray = model.log_likelihood(gray, k, seed=1, preprocess=False)
  assert not np.allclose(as_gray, runs[0])


def test_binary_images_pass_a_binarized_model_unchanged():
  """Binary images (0/255, 0.0/1.0, bool) are what evaluation scores: untouched, alone or beside gray ones, whose
  rows are binarized as in an array of gray images only."""
  config = launch.configure(os.path.join(ROOT, 'configs/burda_mnist.py:quick'), BINARIZED)
  model = api.Model(config, *models.init(config.model, jax.random.key(0)))
  gray = data.flat(data.load('mnist').test_images[:6])
  binary = data.binarize_once(gray, 'test')
  for form in (binary, binary / np.float32(255), binary > 0):
    np.testing.assert_array_equal(model.inputs(form), binary / np.float32(255))
  mixed = np.concatenate([binary[:3], gray[3:]])
  np.testing.assert_array_equal(model.inputs(mixed), binary / np.float32(255))
  assert np.mean(model.inputs(gray[3:]) != gray[3:] / 255) > 0.01  # Gray pixels were drawn.
