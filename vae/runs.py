"""One run or sweep set up on device: data, PRNG keys, mesh, initial states and the compiled functions.

`Run(configs, batched)` is what `vae/train.py` loops over. Its members share data and model structure; with
`batched`, states, keys and hyper-parameters carry a leading member axis and every compiled function is
`jax.vmap`ped over it.
"""
import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec as P

from vae import api, data, evaluation, losses, models, records, steps, validation
from vae.errors import VaeError

# The test set of a dynamically binarized run is binarized once, with this seed whatever the run's: every run and
# sweep member is scored on the same binary images.
TEST_BINARIZATION_SEED = 0
TB_IMAGES = 20


def member_keys(seed):
  """The PRNG keys of one run: `seed` -> key -> init / data (perm, binarize) / train / eval."""
  init_key, data_key, train_key, eval_key = jax.random.split(jax.random.key(seed), 4)
  perm_key, binarize_key = jax.random.split(data_key)
  return {'init': init_key, 'perm': perm_key, 'binarize': binarize_key, 'train': train_key, 'eval': eval_key}


class Run:
  """Everything the configs of one run or sweep need on device: data, keys, mesh, model and compiled functions.

  `configs` are the members (one for a plain run); they share data and model structure. With `batched`, states,
  keys and hyper-parameters carry a leading member axis and the compiled functions are vmapped over it.
  """

  def __init__(self, configs, batched=False):
    self.configs, self.batched = configs, batched
    self.config = config = configs[0]
    for member in configs:
      validation.check_config(member, jax.device_count())
    dataset = data.load(config.data.name, config.data.dir, config.data.classes, config.data.source)
    self.dataset = dataclasses.replace(  # The first images only, for quick tries and tests.
        dataset, train_images=dataset.train_images[:config.data.max_train_images],
        train_labels=dataset.train_labels[:config.data.max_train_images],
        test_images=dataset.test_images[:config.data.max_test_images],
        test_labels=dataset.test_labels[:config.data.max_test_images])
    validation.check_data(config, self.dataset)

    self.mesh = jax.make_mesh((jax.device_count(),), ('data',), axis_types=(jax.sharding.AxisType.Auto,))
    self.replicated = NamedSharding(self.mesh, P())
    batch_sharding = NamedSharding(self.mesh, P('data'))

    keys = [member_keys(member.seed) for member in configs]
    self.graphdef, _ = models.init(config.model, keys[0]['init'])
    self.optimizer = steps.make_optimizer(config.train)
    states = [steps.init_state(models.init(config.model, k['init'])[1], self.optimizer) for k in keys]
    hparams = [steps.hparams(member) for member in configs]
    keys = [{name: k[name] for name in ('perm', 'binarize', 'train', 'eval')} for k in keys]
    self.initial_states = states
    self.initial_state, self.keys, self.hparams = (
        jax.device_put(stack(xs) if batched else xs[0], self.replicated) for xs in (states, keys, hparams))

    # The images evaluation sees, uint8: for dynamic binarization, one fixed binarization of each set (as in IWAE).
    self.test_images, self.train_images_fixed = self.dataset.test_images, self.dataset.train_images
    if config.data.preprocessing == 'binarize_dynamic':
      fixed = jax.random.key(TEST_BINARIZATION_SEED)
      self.test_images, self.train_images_fixed = (
          np.asarray(data.preprocess(images, 'binarize_dynamic', jax.random.fold_in(fixed, i)) * 255, np.uint8)
          for i, images in enumerate((self.test_images, self.train_images_fixed)))
    self.train_images = jax.device_put(self.dataset.train_images, self.replicated)
    self.test_batches = jax.device_put(steps.pad_batches(self.test_images, config.eval.batch_size), self.replicated)

    epoch = functools.partial(steps.train_epoch, graphdef=self.graphdef, optimizer=self.optimizer, config=config,
                              batch_sharding=batch_sharding)
    evaluate = functools.partial(steps.evaluate, num_images=len(self.test_images), graphdef=self.graphdef,
                                 config=config, batch_sharding=batch_sharding)
    if batched:  # Members along axis 0 of state, keys, hyper-parameters; the data is shared.
      epoch = jax.vmap(epoch, in_axes=(0, None, None, 0, 0))
      evaluate = jax.vmap(evaluate, in_axes=(0, None, 0, 0))
    self.train_epoch = jax.jit(epoch, donate_argnums=0)
    self._evaluate = jax.jit(evaluate)

    preview_x = data.preprocess(self.test_images[:TB_IMAGES], 'gray' if config.data.preprocessing ==
                                'binarize_dynamic' else config.data.preprocessing)
    preview_z = jax.random.normal(jax.random.key(0), (TB_IMAGES, config.model.latent_dim))
    likelihood = config.model.likelihood

    def preview(params):  # Test images, their reconstructions (from the posterior means), prior samples.
      mean, _ = models.apply(self.graphdef, params, 'encode', preview_x)
      decode = lambda z: losses.pixel_mean(models.apply(self.graphdef, params, 'decode', z), likelihood)
      return jnp.concatenate([preview_x, decode(mean)]), decode(preview_z)

    self._preview = jax.jit(jax.vmap(preview) if batched else preview)

  @property
  def steps_per_epoch(self):
    return len(self.dataset.train_images) // self.config.train.batch_size

  def hparams_at(self, epoch):
    """The hyper-parameters of `epoch`: the learning rate scaled by train.lr_schedule (an argument: no recompile)."""
    factor = steps.learning_rate_factor(self.config.train.lr_schedule, epoch)
    return dict(self.hparams, learning_rate=self.hparams['learning_rate'] * factor) if factor != 1.0 else self.hparams

  def compile_epoch(self, state):
    return self.train_epoch.lower(state, self.train_images, jnp.int32(1), self.keys, self.hparams).compile()

  def test_metrics(self, params):
    """{'test/recon', ...}: floats, or per member lists of floats when batched."""
    metrics = jax.device_get(self._evaluate(params, self.test_batches, self.keys['eval'], self.hparams))
    return {f'test/{k}': floats(v) for k, v in metrics.items()}

  def preview(self, params):
    """(originals above reconstructions, samples) as numpy, per member when batched."""
    return jax.device_get(self._preview(params))

  def report(self, config, state, epoch, test_metrics, workdir, metrics_path):
    """Full evaluation of one member's `state` (metrics, figures, report.md); writes results.json, returns it."""
    model = api.Model(config, self.graphdef, state['params'], epoch)
    results = {'epoch': epoch, 'step': int(state['step']), **test_metrics}
    t0 = time.perf_counter()
    try:
      results = evaluation.evaluate(model, config, self.dataset, self.test_images, self.train_images_fixed,
                                    results, records.read_jsonl(metrics_path), workdir)
    except OSError as e:  # Figures and report; results.json, written last, keeps its previous content.
      raise VaeError(f'{e.filename or workdir}: cannot write the evaluation ({e.strerror or e})') from None
    logging.info('evaluated in %.1fs: test -elbo %.2f, IW NLL (%d samples) %.2f, active units %d, k-means acc %.3f, '
                 'probe acc %.3f; figures and report.md in %s', time.perf_counter() - t0, results['test/neg_elbo'],
                 config.eval.iw_samples, results['test/nll_iw'], results['test/active_units'],
                 results['latent/kmeans_acc'], results['latent/linear_probe_acc'], workdir)
    return results


def stack(trees):
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def select(tree, i, batched):
  """Member `i` of a batched pytree (arrays or per-member lists); the tree itself when not batched."""
  if not batched:
    return tree
  return jax.tree.map(lambda x: x[i], tree, is_leaf=lambda x: isinstance(x, list))


def floats(value):
  value = np.asarray(value)
  return float(value) if value.ndim == 0 else [float(v) for v in value]
