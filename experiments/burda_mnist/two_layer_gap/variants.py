"""The two-layer row's gap, part by part: run.py with parts of yburda/iwae's protocol swapped in (variants.json).

  GAP=adam,std .venv/bin/python experiments/burda_mnist/two_layer_gap/variants.py \
      --config=configs/burda_mnist.py:two_layer --workdir=runs/gap_adam_std --config.model.output_bias=zero \
      --config.train.num_epochs=40 --config.eval.iw_samples=100
  GAP=adam,std .venv/bin/python experiments/burda_mnist/two_layer_gap/variants.py units runs/gap_adam_std

GAP names the parts of their code (a measurement, not a feature: each is patched in here):
  adam:   their Adam (optimizers.py: beta1 0.99, the second moment from ones, its bias correction, eps 1e-4, each
          update from the previous step's moments) on the batch-summed loss (the gradients x the batch size);
  std:    std = exp(linear) (logvar = 2 linear) in every Gaussian layer;
  glorot: Glorot-uniform weights from RandomState(123) for each layer (same-shape layers alike, as theirs), zero
          biases.
The decoder's output bias is the config's model.output_bias ('data_mean' is theirs). `units`: the active units of
z1 and z2 (Burda et al.'s: the variance over 2,000 test images of q's mean above 0.01; z2's at a draw of z1).
"""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..'))
from vae import steps  # pylint: disable=wrong-import-position
from vae.models import dense, hierarchical  # pylint: disable=wrong-import-position

GAP = set(filter(None, os.environ.get('GAP', '').split(',')))


def their_adam(eps=1e-4, b1=0.99, b2=0.999, batch_size=20):
  def init(params):
    return {'m': jax.tree.map(jnp.zeros_like, params), 'v': jax.tree.map(jnp.ones_like, params),
            't': jnp.ones([], jnp.float32)}

  def update(g, state, params=None):
    del params
    alpha = jnp.sqrt(1 - b2 ** state['t']) / (1 - b1 ** state['t'])
    step = jax.tree.map(lambda m, v: alpha * m / (jnp.sqrt(v) + eps), state['m'], state['v'])
    g = jax.tree.map(lambda x: x * batch_size, g)
    return step, {'m': jax.tree.map(lambda m, x: b1 * m + (1 - b1) * x, state['m'], g),
                  'v': jax.tree.map(lambda v, x: b2 * v + (1 - b2) * x * x, state['v'], g), 't': state['t'] + 1}
  return optax.GradientTransformation(init, update)


if 'adam' in GAP:
  steps.OPTIMIZERS['adam'] = lambda eps: their_adam()
if 'std' in GAP:
  _gaussian = dense.DenseEncoder.__call__
  dense.DenseEncoder.__call__ = lambda self, x: (lambda mean, linear: (mean, 2 * linear))(*_gaussian(self, x))
if 'glorot' in GAP:
  _two_layer = hierarchical.two_layer

  def glorot_two_layer(model_config, *, rngs):
    model = _two_layer(model_config, rngs=rngs)
    for _, module in nnx.iter_graph(model):
      if isinstance(module, nnx.Linear):
        n_in, n_out = module.kernel.shape
        scale = np.sqrt(6. / (n_in + n_out))
        module.kernel[...] = np.random.RandomState(123).uniform(-scale, scale, (n_in, n_out)).astype(np.float32)
        module.bias[...] = jnp.zeros_like(module.bias[...])
    return model
  hierarchical.two_layer = glorot_two_layer


def units(workdir):
  import vae  # pylint: disable=g-import-not-at-top
  from vae import data  # pylint: disable=g-import-not-at-top
  model = vae.load(workdir)
  test = data.binarize_once(data.load('mnist').test_images, 'test')[:2000]
  module = model.module
  (mean1, logvar1), _ = module.infer(jnp.asarray(test.reshape(len(test), -1), jnp.float32) / 255)
  z1 = mean1 + jnp.exp(0.5 * logvar1) * jax.random.normal(jax.random.key(0), mean1.shape)
  mean2, _ = module.q_z2(z1)
  active = [int((np.var(np.asarray(m), axis=0) > 0.01).sum()) for m in (mean1, mean2)]
  print(f'{workdir}: active units z1 {active[0]} of {mean1.shape[1]}, z2 {active[1]} of {mean2.shape[1]}')


if __name__ == '__main__':
  if sys.argv[1:2] == ['units']:
    units(sys.argv[2])
  else:
    from vae import cli  # pylint: disable=g-import-not-at-top
    cli.run()
