"""One run set up on device: data, PRNG keys, the mesh, initial states and the compiled functions.

A run is a list of members (configs that share data and model structure; a plain run is one member). States,
keys and hyper-parameters always carry a leading member axis, sharded over the mesh's 'members' axis, and every
compiled function is `jax.vmap`ped over it with `spmd_axis_name='members'`; each member's batch is sharded over
'data' (vae/layout.py). Host-side results come back per member and are only split where files are written.
"""
import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec as P

from vae import api, data, layout, models, records, steps, validation
from vae.errors import VaeError

TB_IMAGES = 20
KEY_NAMES = ('perm', 'binarize', 'train', 'eval')


def member_keys(seed):
  """The PRNG keys of one run: `seed` -> key -> init / data (perm, binarize) / train / eval."""
  init_key, data_key, train_key, eval_key = jax.random.split(jax.random.key(seed), 4)
  perm_key, binarize_key = jax.random.split(data_key)
  return {'init': init_key, 'perm': perm_key, 'binarize': binarize_key, 'train': train_key, 'eval': eval_key}


class Run:
  """Everything the members of one run need on device: data, keys, mesh, model and compiled functions.

  `configs` are the members; `mesh` a --mesh spec ('members:4,data:2') or None for the automatic layout.
  """

  def __init__(self, configs, mesh=None):
    self.configs = configs
    self.config = config = configs[0]
    self.layout = layout.choose(len(configs), jax.device_count(), mesh)
    for member in configs:
      validation.check_config(member, self.layout.data)
    dataset = data.hold_out(data.load(config.data.name, config.data.dir, config.data.classes, config.data.source,
                                      config.data.get('image_size')),
                            config.data.validation_size, config.data.validation_images)
    for member in configs:  # The images' shape flows into the model (and config.json) from the data.
      validation.set_image_shape(member, dataset.image_shape)
    validation.check_model(config.model)  # The same model for every member (sweeps vary no model key).
    self.dataset = dataclasses.replace(  # The first images only, for quick tries and tests.
        dataset, train_images=dataset.train_images[:config.data.max_train_images],
        train_labels=dataset.train_labels[:config.data.max_train_images],
        test_images=dataset.test_images[:config.data.max_test_images],
        test_labels=dataset.test_labels[:config.data.max_test_images])
    validation.check_data(config, self.dataset)
    flat = data.flat  # Views: the model reads flat (N, H*W*C) images.

    self.mesh = layout.make_mesh(self.layout)
    by_member, replicated = layout.by_member(self.mesh), layout.replicated(self.mesh)
    batch_sharding = NamedSharding(self.mesh, P('data'))  # Inside the member vmap: each member's batch.

    lanes = configs + [configs[-1]] * (self.layout.lanes - len(configs))  # Padding lanes repeat the last member.
    keys = [member_keys(member.seed) for member in configs]
    pixel_mean = (data.mean_input(flat(self.dataset.train_images), config.data.preprocessing)  # output_bias reads it.
                  if config.model.get('output_bias', 'zero') == 'data_mean' else None)
    inits = [models.init(config.model, k['init'], pixel_mean) for k in keys]
    self.graphdef, self.optimizer = inits[0][0], steps.make_optimizer(config.train)
    self.initial_states = [jax.device_get(steps.init_state(params, self.optimizer)) for _, params in inits]
    key_data = [{name: np.asarray(jax.random.key_data(k[name])) for name in KEY_NAMES} for k in keys]
    pad = lambda xs: xs + [xs[-1]] * (len(lanes) - len(xs))
    self.keys = layout.put(stack(pad(key_data)), by_member)
    self.hparams = layout.put(stack([{**jax.device_get(steps.hparams(member)), 'active': np.float32(1)}
                                     for member in lanes]), by_member)
    self._pad, self._by_member = pad, by_member

    # The images evaluation sees, uint8: for dynamic binarization, one fixed binarization of each set (as in IWAE).
    self.test_images, self.train_images_fixed, validation_images = (
        flat(self.dataset.test_images), flat(self.dataset.train_images), flat(self.dataset.validation_images))
    if config.data.preprocessing == 'binarize_dynamic':
      self.test_images, self.train_images_fixed, validation_images = (
          data.binarize_once(images, which) for images, which in
          ((self.test_images, 'test'), (self.train_images_fixed, 'train'), (validation_images, 'validation')))
    self.train_images = layout.put(flat(self.dataset.train_images), replicated)
    # The sets scored after every epoch, one z per image: test, and validation when images are held out.
    scored = {'test': self.test_images, 'validation': validation_images}
    self._scored = {name: layout.put(np.asarray(steps.pad_batches(images, config.eval.batch_size)), replicated)
                    for name, images in scored.items() if len(images)}

    wrap = lambda keys: {name: jax.random.wrap_key_data(k) for name, k in keys.items()}
    members = functools.partial(jax.vmap, spmd_axis_name='members')  # Over the leading member axis.
    # Training at train.matmul_precision; everything reported (the per-epoch scores, previews) at full float32.
    full = functools.partial(steps.at_precision, steps.FULL_PRECISION)
    epoch = members(steps.at_precision(config.train.matmul_precision, lambda state, images, e, keys, hparams:
                                       steps.train_epoch(state, images, e, wrap(keys), hparams, graphdef=self.graphdef,
                                                         optimizer=self.optimizer, config=config,
                                                         batch_sharding=batch_sharding)), in_axes=(0, None, None, 0, 0))
    exemplars = lambda images: steps.evaluation_exemplars(images, config.model)  # None but for the exemplar prior.
    evaluate = lambda num_images: members(full(lambda params, batches, keys, hparams, images: steps.evaluate(
        params, batches, wrap(keys)['eval'], hparams, exemplars(images), num_images=num_images,
        graphdef=self.graphdef, config=config, batch_sharding=batch_sharding)), in_axes=(0, None, 0, 0, None))
    # Metrics come back replicated, so that every process can read them; the state stays where it is.
    self.train_epoch = jax.jit(epoch, donate_argnums=0, out_shardings=(by_member, replicated, replicated))
    self._evaluate = {name: jax.jit(evaluate(len(scored[name])), out_shardings=replicated) for name in self._scored}

    preview_x = data.preprocess(self.test_images[:TB_IMAGES], data.eval_mode(config.data.preprocessing))
    shown_x = self.test_images[:TB_IMAGES].astype(jnp.float32) / 255.0  # As pixels, whatever the model's inputs.
    likelihood = models.likelihood_of(config.model)

    def preview(params, images):  # Test images, their reconstructions (from the posterior means), prior samples.
      mean, _ = models.apply(self.graphdef, params, 'encode', preview_x)
      decode = lambda z: likelihood.mean(models.apply(self.graphdef, params, 'decode', z))
      samples = likelihood.mean(models.apply(self.graphdef, params, 'generate', jax.random.key(0), TB_IMAGES,
                                             *steps.with_exemplars(exemplars(images))))
      return jnp.concatenate([shown_x, decode(mean)]), samples

    self._preview = jax.jit(members(full(preview), in_axes=(0, None)), out_shardings=replicated)

  @property
  def steps_per_epoch(self):
    return len(self.dataset.train_images) // self.config.train.batch_size

  def place(self, states):
    """The members' host states (one per member) as the run's state: stacked, padded, sharded over 'members'."""
    return layout.put(stack(self._pad(list(states))), self._by_member)

  def member_states(self, state):
    """The run's state back on the host, one numpy pytree per (real) member."""
    host = layout.fetch(state)
    return [jax.tree.map(lambda x: x[i], host) for i in range(len(self.configs))]

  def hparams_at(self, epoch, active=None):
    """The hyper-parameters of `epoch` (arguments: no recompile): the learning rate scaled by train.lr_schedule,
    beta by train.beta_schedule, and `active` (per member; False: frozen, its state left as it is)."""
    train = self.config.train
    lr, beta = steps.learning_rate_factor(train.lr_schedule, epoch), steps.beta_factor(train, epoch)
    hparams = dict(self.hparams, learning_rate=self.hparams['learning_rate'] * lr, beta=self.hparams['beta'] * beta)
    if active is not None and not all(active):
      hparams['active'] = layout.put(np.asarray(self._pad(list(active)), np.float32), self._by_member)
    return hparams

  def compile_epoch(self, state):
    return self.train_epoch.lower(state, self.train_images, jnp.int32(1), self.keys, self.hparams).compile()

  def test_metrics(self, state):
    """{'test/recon', ..., and 'validation/recon', ... when images are held out}: per member, lists of floats."""
    scores = jax.device_get({name: self._evaluate[name](state['params'], batches, self.keys, self.hparams,
                                                         self.train_images)
                             for name, batches in self._scored.items()})  # Every set dispatched, then one wait.
    out = {f'{name}/{k}': floats(v[:len(self.configs)]) for name, metrics in scores.items() for k, v in metrics.items()}
    per_bit = models.bits_per_dim(self.config.model)  # 8-bit images: the -ELBO in bits per dimension beside the nats.
    out.update({f'{name}/neg_elbo_bpd': [v * per_bit for v in out[f'{name}/neg_elbo']]
                for name in scores if per_bit})
    return out

  def preview(self, state):
    """(originals above reconstructions, samples) as numpy images (N, H, W, C), per member."""
    shape = models.image_shape(self.config.model)
    return tuple(a.reshape(a.shape[:2] + shape) for a in jax.device_get(self._preview(state['params'],
                                                                                        self.train_images)))

  def report(self, config, state, epoch, test_metrics, workdir, metrics_path):
    """Full evaluation of one member's host `state` (metrics, figures, report.md); writes results.json, returns it."""
    # Imported here, as in workdirs.finished_results: its scipy, scikit-learn and matplotlib take 3 s of a process's
    # start on 2 cores, spared to a run refused at its checks or stopped before its evaluation.
    from vae import evaluation  # pylint: disable=g-import-not-at-top
    model = api.Model(config, self.graphdef, state['params'], epoch,
                      exemplars=api.exemplars_of(config, self.dataset.train_images))
    results = {'epoch': epoch, 'step': int(state['step']), **test_metrics}
    t0 = time.perf_counter()
    try:
      results = evaluation.evaluate(model, config, self.dataset, self.test_images, self.train_images_fixed,
                                    results, records.read_jsonl(metrics_path), workdir)
    except OSError as e:  # Figures and report; results.json, written last, keeps its previous content.
      raise VaeError(f'{e.filename or workdir}: cannot write the evaluation ({e.strerror or e})') from None
    logging.info('evaluated in %.1fs: test -elbo %.2f, IW NLL (%d samples) %.2f, active units %d, k-means acc %s, '
                 'probe acc %s; figures and report.md in %s', time.perf_counter() - t0, results['test/neg_elbo'],
                 config.eval.iw_samples, results['test/nll_iw'], results['test/active_units'],
                 *(f'{results[k]:.3f}' if k in results else 'skipped (no labels)'
                   for k in ('latent/kmeans_acc', 'latent/linear_probe_acc')), workdir)
    return results


def stack(trees):
  return jax.tree.map(lambda *xs: np.stack(xs), *trees)


def select(tree, i):
  """Member `i` of a pytree whose leaves are per-member arrays or lists."""
  return jax.tree.map(lambda x: x[i], tree, is_leaf=lambda x: isinstance(x, list))


def floats(value):
  return [float(v) for v in np.asarray(value)]
