"""Burda et al.'s setting: the 3^i-pass learning-rate schedule, the IWAE training objective, the :quick run."""
import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import read_json, read_jsonl
from vae import iwae, likelihoods, models, steps
from test_training import _config


def test_schedule_passes_and_rates():
  factors = [steps.learning_rate_factor('burda', epoch) for epoch in range(1, 3281)]
  rates, counts = np.unique(np.round(np.log10(factors) * -7, 6), return_counts=True)
  np.testing.assert_allclose(rates, np.arange(8), atol=1e-9)  # 10^(-i/7), i = 0..7.
  assert counts.tolist() == [3 ** i for i in range(8)]  # 3^i passes each, 3280 in all.
  assert factors[0] == 1.0 and factors[1] == factors[3] == 10 ** (-1 / 7) and factors[4] == 10 ** (-2 / 7)
  assert steps.learning_rate_factor('constant', 17) == 1.0


@pytest.mark.parametrize('k', [1, 5])
def test_iwae_objective_is_the_k_sample_bound(k):
  """The IWAE training loss averages to -L_k, as the evaluation's (independently tested) IW estimator does."""
  config = _config('burda_mnist')
  graphdef, params = models.init(config.model, jax.random.key(0))
  x = jnp.asarray(jax.random.bernoulli(jax.random.key(1), 0.3, (4, 784)), jnp.float32)
  loss = jax.jit(jax.vmap(lambda key: steps.loss_fn(params, graphdef, x, key, config.model, 1.0, 'iwae', k)[0]))
  estimate = jax.jit(jax.vmap(lambda key: -jnp.mean(iwae.model_log_likelihood(
      graphdef, params, x, key, k, likelihoods.Bernoulli()))))
  keys_a = jax.random.split(jax.random.key(2), 4000)
  keys_b = jax.random.split(jax.random.key(3), 4000)
  a, b = np.asarray(loss(keys_a)), np.asarray(estimate(keys_b))
  stderr = math.sqrt(a.var() / a.size + b.var() / b.size)
  assert abs(a.mean() - b.mean()) < 4 * stderr + 1e-3


def test_iwae_bound_rises_with_k():
  config = _config('burda_mnist')
  graphdef, params = models.init(config.model, jax.random.key(0))
  x = jnp.asarray(jax.random.bernoulli(jax.random.key(1), 0.3, (8, 784)), jnp.float32)
  # 100 draws of each: the means' standard errors are 0.26, 0.19 and 0.10 nats, the steps between them 8 and 6.5 nats
  # (measured with 500 draws: 571.9, 563.9, 557.4): each inequality holds by over 25 standard errors.
  keys = jax.random.split(jax.random.key(4), 100)
  mean_loss = {k: float(jnp.mean(jax.jit(jax.vmap(functools.partial(
      lambda key, k: steps.loss_fn(params, graphdef, x, key, config.model, 1.0, 'iwae', k)[0], k=k)))(keys)))
      for k in (1, 5, 50)}
  assert mean_loss[1] > mean_loss[5] > mean_loss[50]  # -L_1 > -L_5 > -L_50.


def test_quick_variant_runs_end_to_end_with_the_iwae_objective(quick_iwae):
  """The :quick smoke run with iwae5's objective (train.objective=iwae, num_samples=5): one CLI run checks both
  (conftest.QUICK_IWAE: the variant on 400 of its 2,000 training images and 100 of its 500 test images)."""
  quick = _config('burda_mnist', 'quick')
  assert (quick.train.num_epochs, quick.train.batch_size, quick.eval.iw_samples) == (4, 20, 50)
  records = read_jsonl(os.path.join(quick_iwae, 'metrics.jsonl'))
  assert [r['epoch'] for r in records] == [1, 2, 3, 4] and records[-1]['step'] == 4 * 400 // 20
  # The IWAE loss is a tighter bound than the single-sample -ELBO of the same batches.
  assert all(r['train/loss'] < r['train/neg_elbo'] for r in records)
  results = read_json(os.path.join(quick_iwae, 'results.json'))
  assert results['eval/iw_samples'] == 50
  assert results['test/nll_iw'] <= results['test/neg_elbo'] < 784 * math.log(2)


def test_two_layer_starts_its_output_bias_at_the_logit_of_the_training_mean():
  """The two-layer rows' model.output_bias='data_mean' (yburda/iwae's): with the decoder's last weights zeroed, the
  pixel probabilities it decodes are the training images' mean pixel, clipped to [0.001, 0.999], computed here with
  numpy from the run's own images; under 'zero' they are 1/2. Float32's sigmoid of a logit: within 1e-6."""
  from vae import data, runs  # pylint: disable=g-import-not-at-top
  for output_bias in ('data_mean', 'zero'):
    config = _config('burda_mnist', 'two_layer')
    config.data.max_train_images, config.data.max_test_images, config.model.output_bias = 500, 100, output_bias
    run = runs.Run([config])
    params = jax.tree.map(jnp.asarray, run.initial_states[0]['params'])
    last = params['decoder']['layers'][len(params['decoder']['layers']) - 1]
    last['kernel'] = jnp.zeros_like(last['kernel'])
    probs = np.asarray(jax.nn.sigmoid(models.apply(run.graphdef, params, 'decode', jnp.ones((3, 50)))))
    images = data.load('mnist').train_images[:500].reshape(500, -1)
    expected = np.clip(images.mean(0) / 255, 0.001, 0.999) if output_bias == 'data_mean' else np.full(784, 0.5)
    np.testing.assert_allclose(probs, np.broadcast_to(expected, probs.shape), atol=1e-6)
    assert output_bias == 'zero' or 0.001 in expected and expected.max() > 0.5  # Both the clip and the ink.


@pytest.mark.parametrize('change', [{'likelihood': 'gaussian'}, {'name': 'conv'}])
def test_output_bias_data_mean_is_refused_where_it_means_nothing(change):
  """Only the Bernoulli logits of a dense decoder start at the data's mean: any other model or likelihood is refused
  in one line naming the key, before anything runs."""
  from vae import validation  # pylint: disable=g-import-not-at-top
  from vae.errors import VaeError  # pylint: disable=g-import-not-at-top
  config = _config('burda_mnist', 'two_layer')
  config.model.update(change)
  with pytest.raises(VaeError, match=r"^model.output_bias='data_mean': .*not model.name") as e:
    validation.check_config(config, 1)
  assert '\n' not in str(e.value)


def test_a_workdir_saved_before_output_bias_existed_resumes_only_at_zero():
  """A config.json without model.output_bias was trained from a zero bias: the two-layer rows' 'data_mean' is
  another model there (refused), 'zero' the same one."""
  from vae import validation  # pylint: disable=g-import-not-at-top
  from vae.errors import VaeError  # pylint: disable=g-import-not-at-top
  config = _config('burda_mnist', 'two_layer')
  saved = config.to_dict()
  del saved['model']['output_bias']
  with pytest.raises(VaeError, match='model.output_bias=zero there, data_mean now'):
    validation.check_same_model(saved, config, 'config.json')
  config.model.output_bias = 'zero'
  validation.check_same_model(saved, config, 'config.json')
  assert validation.check_resume(saved, config, 'config.json') == {}
