"""The cost of the VampPrior: one compiled train step of configs/vampprior.py:fashion against :fashion_vamp.

  .venv/bin/python experiments/benchmark/prior_step.py

Prints milliseconds per step (batch 100, 3 repeats of 100 steps, compile excluded) for each prior and their ratio,
then the part of the VampPrior's step that scores the codes: the gradient of losses.mixture_log_prob alone (100
codes, 500 components, 40 dimensions).
"""
import functools
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from vae import launch, losses, models, steps  # pylint: disable=g-import-not-at-top,wrong-import-position


def step_seconds(variant, repeats=3, num_steps=100):
  config = launch.load_config(f'configs/vampprior.py:{variant}')
  graphdef, params = models.init(config.model, jax.random.key(0))
  optimizer = steps.make_optimizer(config.train)
  state = steps.init_state(params, optimizer)
  hparams = {'beta': jnp.float32(1), 'learning_rate': jnp.float32(config.train.learning_rate)}
  step = jax.jit(functools.partial(steps.train_step, hparams=hparams, graphdef=graphdef, optimizer=optimizer,
                                   model_config=config.model, kl_estimator=config.train.kl_estimator))
  x = jax.random.bernoulli(jax.random.key(1), 0.3, (config.train.batch_size, 784)).astype(jnp.float32)
  state, metrics = step(state, x, jax.random.key(2))
  jax.block_until_ready(metrics)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    for i in range(num_steps):
      state, metrics = step(state, x, jax.random.key(i))
    jax.block_until_ready(metrics)
    times.append((time.perf_counter() - start) / num_steps)
  return times


def mixture_gradient_seconds(repeats=3, num_calls=100, n=100, k=500, d=40):
  keys = jax.random.split(jax.random.key(0), 3)
  z, means = jax.random.normal(keys[0], (n, d)), jax.random.normal(keys[1], (k, d))
  logvars = jax.random.uniform(keys[2], (k, d), minval=-6.0, maxval=2.0)  # The encoder's bounds.
  grad = jax.jit(jax.grad(lambda *a: jnp.sum(losses.mixture_log_prob(*a)), argnums=(0, 1, 2)))
  jax.block_until_ready(grad(z, means, logvars))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(num_calls):
      out = grad(z, means, logvars)
    jax.block_until_ready(out)
    times.append((time.perf_counter() - start) / num_calls)
  return times


if __name__ == '__main__':
  results = {variant: step_seconds(variant) for variant in ('fashion', 'fashion_vamp')}
  for variant, times in results.items():
    print(f'{variant:14s} ms per step: {", ".join(f"{1000 * t:.1f}" for t in times)}')
  print(f'VampPrior / standard: {min(results["fashion_vamp"]) / min(results["fashion"]):.2f}x')
  mixture_times = mixture_gradient_seconds()
  print(f'mixture_log_prob gradient (100 x 500 x 40) ms: {", ".join(f"{1000 * t:.2f}" for t in mixture_times)}')
