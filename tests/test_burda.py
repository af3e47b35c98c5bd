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
