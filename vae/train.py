"""The training loop: data and state onto the device mesh, compiled epochs, evaluation, logging, checkpoints.

`train_and_evaluate(config, workdir)` trains (resuming from the latest checkpoint in `workdir`) and writes
config.json and metrics.jsonl there, then the full evaluation (results.json, figures/, report.md);
`evaluate(config, workdir)` only re-evaluates. With `members` (configs that differ from `config` only in the seed
and float hyper-parameters, see vae/sweeps.py) all of them train at once, by `jax.vmap` over a leading member axis
of the state, each in its own folder WORKDIR/members/<i>/.
"""
import dataclasses
import functools
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec as P

from vae import (api, checkpoints, data, evaluation, losses, models, progress, records, steps, sweeps, tensorboard,
                 validation)
from vae.errors import VaeError

# The test set of a dynamically binarized run is binarized once, with this seed whatever the run's: every run and
# sweep member is scored on the same binary images.
TEST_BINARIZATION_SEED = 0
TB_IMAGES_EVERY = 5  # Epochs between the reconstructions and samples sent to TensorBoard (and the last epoch).
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
        jax.device_put(_stack(xs) if batched else xs[0], self.replicated) for xs in (states, keys, hparams))

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

  def compile_epoch(self, state):
    return self.train_epoch.lower(state, self.train_images, jnp.int32(1), self.keys, self.hparams).compile()

  def test_metrics(self, params):
    """{'test/recon', ...}: floats, or per member lists of floats when batched."""
    metrics = jax.device_get(self._evaluate(params, self.test_batches, self.keys['eval'], self.hparams))
    return {f'test/{k}': _floats(v) for k, v in metrics.items()}

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


@dataclasses.dataclass
class _Member:
  """One trained config's place on disk."""
  config: object
  workdir: str
  paths: dict
  ckpts: object = None


def train_and_evaluate(config, workdir, members=None):
  """Trains `config` (or the sweep `members`) in `workdir`, resuming from the latest checkpoints.

  Returns the final results: a dict, or for a sweep the list of the members' dicts.
  """
  run = Run(members or [config], batched=members is not None)
  places = _open(run, workdir)
  writers = []
  try:
    state, start = _restore(run, places)
    for place in places:
      records.truncate_metrics(place.paths['metrics'], start)
    writers.extend(tensorboard.Writer(place.workdir, start * run.steps_per_epoch) for place in places)
    if start == 0:
      for writer, place in zip(writers, places):
        writer.hparams(place.config)
    num_epochs = config.train.num_epochs
    if start < num_epochs:
      t0 = time.perf_counter()
      compiled = run.compile_epoch(state)
      logging.info('compiled the epoch (%d steps of %d images%s) in %.1fs on %d %s device(s)', run.steps_per_epoch,
                   config.train.batch_size, f', {len(places)} members' if run.batched else '',
                   time.perf_counter() - t0, jax.device_count(), jax.default_backend())
    epoch_records, epoch_times = None, []
    bar = progress.Progress(num_epochs - start, 'epochs', log_every_seconds=float('inf'))  # A bar on terminals.
    for epoch in range(start + 1, num_epochs + 1):
      t0 = time.perf_counter()
      first_step = int(np.max(state['step']))
      state, train, health = compiled(state, run.train_images, jnp.int32(epoch), run.keys, run.hparams)
      train = {f'train/{k}': _floats(v) for k, v in jax.device_get(train).items()}
      seconds = time.perf_counter() - t0
      health = jax.device_get(health)
      for i, place in enumerate(places):
        _check_finite(_member(health, i, run.batched), epoch, first_step, place.ckpts.latest_epoch(),
                      place.workdir if run.batched else None)
      test = run.test_metrics(state['params'])
      images_per_sec = len(places) * run.steps_per_epoch * config.train.batch_size / seconds
      epoch_records = []
      for i, place in enumerate(places):
        record = {'epoch': epoch, 'step': first_step + run.steps_per_epoch, **_member(train, i, run.batched),
                  **_member(test, i, run.batched), 'images_per_sec': images_per_sec, 'seconds': seconds}
        records.write_text(place.paths['config'], place.config.to_json(indent=2) + '\n')
        records.append_jsonl(place.paths['metrics'], record)
        epoch_records.append(record)
        writers[i].scalars(record['step'], {k: v for k, v in record.items() if '/' in k or k == 'images_per_sec'})
      if epoch % TB_IMAGES_EVERY == 0 or epoch == num_epochs:
        recons, samples = run.preview(state['params'])
        for i, writer in enumerate(writers):
          step = epoch_records[i]['step']
          writer.images(step, 'reconstructions (test images above)', _member(recons, i, run.batched))
          writer.images(step, 'samples', _member(samples, i, run.batched))
      if epoch % config.train.checkpoint_every_epochs == 0 or epoch == num_epochs:
        for i, place in enumerate(places):
          try:
            place.ckpts.save(epoch, _member(state, i, run.batched))
          except VaeError:  # The records past the last checkpoint would be redone on resume: drop them now.
            _try(records.truncate_metrics, place.paths['metrics'], place.ckpts.latest_epoch() or 0)
            raise
      epoch_times.append(time.perf_counter() - t0)
      _log_epoch(epoch_records, epoch, num_epochs, seconds, (num_epochs - epoch) * np.mean(epoch_times))
      bar.update()
    bar.close()
  finally:
    for place in places:
      place.ckpts.close()
    for writer in writers:
      writer.close()
  if epoch_records is None:  # Nothing left to train: report the last checkpoint.
    logging.info('workdir already holds epoch %d of %d; evaluating it', start, num_epochs)
    test = run.test_metrics(state['params'])
    tests = [_member(test, i, run.batched) for i in range(len(places))]
  else:
    tests = [{k: v for k, v in r.items() if k.startswith('test/')} for r in epoch_records]
  results = [run.report(place.config, _member(state, i, run.batched), max(start, num_epochs), tests[i],
                        place.workdir, place.paths['metrics']) for i, place in enumerate(places)]
  if not run.batched:
    return results[0]
  sweeps.write_summary(workdir, [p.config for p in places], results, members_of(workdir))
  return results


def evaluate(config, workdir, members=None):
  """Re-evaluates the latest checkpoint(s) in `workdir` without training; returns and writes the results."""
  run = Run(members or [config], batched=members is not None)
  places = _open(run, workdir)
  try:
    state, epoch = _restore(run, places)
    if epoch == 0:
      raise VaeError(f'{places[0].ckpts.directory}: no checkpoint to evaluate (train first with --mode=train)')
  finally:
    for place in places:
      place.ckpts.close()
  test = run.test_metrics(state['params'])
  results = [run.report(place.config, _member(state, i, run.batched), epoch, _member(test, i, run.batched),
                        place.workdir, place.paths['metrics']) for i, place in enumerate(places)]
  if not run.batched:
    return results[0]
  sweeps.write_summary(workdir, [p.config for p in places], results, members_of(workdir))
  return results


def members_of(workdir):
  return os.path.join(workdir, 'members')


def _open(run, workdir):
  """Each member's folder, checked writable, and its checkpoints, after refusing another model's."""
  folders = [os.path.join(members_of(workdir), str(i)) for i in range(len(run.configs))] if run.batched else [
      workdir]
  places = [_Member(member, folder, _prepare_workdir(folder)) for member, folder in zip(run.configs, folders)]
  try:
    for place, like in zip(places, run.initial_states):
      place.ckpts = checkpoints.Checkpoints(place.workdir, place.config.train.keep_checkpoints)
      if place.ckpts.latest_epoch() is not None:
        if os.path.exists(place.paths['config']):
          saved = records.read_json(place.paths['config'])
          validation.check_same_model(saved, place.config, place.paths['config'])
          if run.batched:
            sweeps.check_member(saved, place.config, place.paths['config'])
        place.ckpts.check_compatible(like)
  except VaeError:
    for place in places:
      if place.ckpts is not None:
        place.ckpts.close()
    raise
  return places


def _restore(run, places):
  """(state, epoch): the newest checkpoint every member has (the initial state and 0 if one has none)."""
  restored = [place.ckpts.restore_latest(like) for place, like in zip(places, run.initial_states)]
  epoch = min(e for _, e in restored)
  if epoch == 0:
    return run.initial_state, 0
  states = [s if e == epoch else place.ckpts.restore(epoch, like)
            for (s, e), place, like in zip(restored, places, run.initial_states)]
  logging.info('resuming from the checkpoint%s of epoch %d in %s', 's' if run.batched else '', epoch,
               places[0].ckpts.directory if not run.batched else os.path.dirname(places[0].workdir))
  state = _stack(states) if run.batched else states[0]
  return jax.device_put(state, run.replicated), epoch


def _prepare_workdir(workdir):
  """Creates `workdir` and makes sure it is writable; writes nothing else."""
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise VaeError(f'workdir {workdir}: cannot write ({e.strerror or e})') from None
  return {name: os.path.join(workdir, f'{name}.{ext}')
          for name, ext in (('config', 'json'), ('metrics', 'jsonl'), ('results', 'json'))}


def _check_finite(health, epoch, first_step, last_checkpoint, member=None):
  """Raises VaeError naming the first step of the epoch whose loss or gradient norm is not finite."""
  bad = {name: np.flatnonzero(~np.isfinite(np.asarray(values))) for name, values in health.items()}
  bad = {name: int(indices[0]) for name, indices in bad.items() if indices.size}
  if bad:
    index = min(bad.values())
    quantities = ', '.join(f'{name} is {float(health[name][index])}' for name in sorted(bad) if bad[name] == index)
    kept = f'the checkpoint of epoch {last_checkpoint} is kept' if last_checkpoint else 'no checkpoint was written'
    where = f'{member}: ' if member else ''
    raise VaeError(f'{where}epoch {epoch}, step {first_step + index + 1}: {quantities}; training stopped, {kept}')


def _log_epoch(epoch_records, epoch, num_epochs, seconds, eta):
  r = epoch_records[0]
  if len(epoch_records) == 1:
    logging.info('epoch %d/%d  train -elbo %.2f  test -elbo %.2f (recon %.2f, kl %.2f)  %.1fs  %.0f img/s  ETA %s',
                 epoch, num_epochs, r['train/neg_elbo'], r['test/neg_elbo'], r['test/recon'], r['test/kl'], seconds,
                 r['images_per_sec'], progress.duration(eta))
  else:
    test = [m['test/neg_elbo'] for m in epoch_records]
    logging.info('epoch %d/%d  %d members  test -elbo %.2f .. %.2f  %.1fs  %.0f img/s (all members)  ETA %s', epoch,
                 num_epochs, len(test), min(test), max(test), seconds, r['images_per_sec'], progress.duration(eta))


def _stack(trees):
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _member(tree, i, batched):
  """Member `i` of a batched pytree (arrays or per-member lists); the tree itself when not batched."""
  if not batched:
    return tree
  return jax.tree.map(lambda x: x[i], tree, is_leaf=lambda x: isinstance(x, list))


def _floats(value):
  value = np.asarray(value)
  return float(value) if value.ndim == 0 else [float(v) for v in value]


def _try(fn, *args):
  try:
    fn(*args)
  except VaeError:
    pass
