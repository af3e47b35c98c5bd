"""Tests of vae/steps.py: the optimizers against their update rules written out in numpy; the matmul precision."""
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from test_models import load_config
from vae import api, runs, steps


def test_keras_rmsprop_puts_epsilon_outside_the_root():
  """Keras's RMSprop: v = rho v + (1 - rho) g^2 from v = 0, direction g / (sqrt(v) + eps); optax's default adds
  eps inside the root. A large eps makes the two differ."""
  grads = [{'w': jnp.array([0.3, -2.0, 1e-3])}, {'w': jnp.array([-0.1, 1.5, 2e-3])}]
  for name, inside in (('rmsprop_keras', False), ('rmsprop', True)):
    optimizer = steps.make_optimizer(ml_collections.ConfigDict({'optimizer': name, 'optimizer_eps': 0.25}))
    state, v = optimizer.init(grads[0]), np.zeros(3)
    for g in grads:
      direction, state = optimizer.update(g, state)
      v = 0.9 * v + 0.1 * np.asarray(g['w'], np.float64) ** 2
      want = g['w'] / (np.sqrt(v + 0.25) if inside else np.sqrt(v) + 0.25)
      np.testing.assert_allclose(direction['w'], want, rtol=1e-5)


def _precisions(lowered):
  """The precision attribute of every dot_general in a lowered program's StableHLO ('DEFAULT' where none is set)."""
  lines = [line for line in lowered.as_text().splitlines() if 'stablehlo.dot_general' in line]
  return [m.group(1) if (m := re.search(r'precision = \[(\w+), \w+\]', line)) else 'DEFAULT' for line in lines]


def test_matmul_precision_trains_at_the_setting_and_scores_at_float32(monkeypatch):
  """train.matmul_precision sets the precision of the epoch's matmuls (JAX's HIGH is TF32's, HIGHEST full float32),
  while the per-epoch scores and vae.load's functions run at full float32 whatever the setting or JAX's default.
  Read off the compiled programs' StableHLO, so it holds on a CPU, whose matmuls are float32 at any setting."""
  config = load_config('fashion_dense')
  with config.unlocked():
    config.data.max_train_images, config.data.max_test_images, config.train.matmul_precision = 200, 100, 'tensorfloat32'
  run = runs.Run([config])
  state = run.place(run.initial_states)
  train = _precisions(run.train_epoch.lower(state, run.train_images, jnp.int32(1), run.keys, run.hparams))
  assert train and set(train) == {'HIGH'}
  with jax.default_matmul_precision('bfloat16'):  # A global fast default does not reach the scores.
    scores = _precisions(run._evaluate['test'].lower(state['params'], run._scored['test'], run.keys, run.hparams,
                                                          run.train_images))
    model = api.Model(config, run.graphdef, run.initial_states[0]['params'])
    x = np.zeros((4, 784), np.float32)
    log_px = _precisions(model._log_likelihood.lower(model.params, x, jax.random.key(0), num_samples=3))
    encode = _precisions(model._encode.lower(model.params, x))
  for name, found in (('scores', scores), ('log_likelihood', log_px), ('encode', encode)):
    assert found and set(found) == {'HIGHEST'}, name
