"""The cost of the VampPrior: one compiled train step of configs/vampprior.py:fashion against :fashion_vamp.

  .venv/bin/python experiments/benchmark/prior_step.py

Prints milliseconds per step (batch 100, 3 repeats of 100 steps, compile excluded) for each prior and their ratio.
"""
import functools
import os
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from vae import launch, models, steps  # pylint: disable=g-import-not-at-top,wrong-import-position


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


if __name__ == '__main__':
  results = {variant: step_seconds(variant) for variant in ('fashion', 'fashion_vamp')}
  for variant, times in results.items():
    print(f'{variant:14s} ms per step: {", ".join(f"{1000 * t:.1f}" for t in times)}')
  print(f'VampPrior / standard: {min(results["fashion_vamp"]) / min(results["fashion"]):.2f}x')
