"""Tests of vae/steps.py's optimizers against their update rules written out in numpy."""
import ml_collections
import numpy as np
import jax.numpy as jnp

from vae import steps


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
