"""The training loop: data and state onto the device mesh, compiled epochs, evaluation, logging, checkpoints.

`train_and_evaluate(config, workdir)` trains (resuming from the latest checkpoint in `workdir`) and writes
config.json and metrics.jsonl there, then the full evaluation (results.json, figures/, report.md);
`evaluate(config, workdir)` only re-evaluates.
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

from vae import api, checkpoints, data, evaluation, models, records, steps, validation
from vae.errors import VaeError

METRICS = ('recon', 'kl', 'neg_elbo', 'loss')


class Run:
  """Everything one config needs on device: data, keys, mesh, model structure and the compiled functions."""

  def __init__(self, config):
    self.config = config
    validation.check_config(config, jax.device_count())
    dataset = data.load(config.data.name, config.data.dir, config.data.classes)
    self.dataset = dataclasses.replace(  # The first images only, for quick tries and tests.
        dataset, train_images=dataset.train_images[:config.data.max_train_images],
        train_labels=dataset.train_labels[:config.data.max_train_images],
        test_images=dataset.test_images[:config.data.max_test_images],
        test_labels=dataset.test_labels[:config.data.max_test_images])
    validation.check_data(config, self.dataset)

    root = jax.random.key(config.seed)
    init_key, data_key, train_key, eval_key = jax.random.split(root, 4)
    perm_key, binarize_key = jax.random.split(data_key)
    self.keys = {'perm': perm_key, 'binarize': binarize_key, 'train': train_key}
    self.eval_key = eval_key

    self.mesh = jax.make_mesh((jax.device_count(),), ('data',), axis_types=(jax.sharding.AxisType.Auto,))
    self.replicated = NamedSharding(self.mesh, P())
    batch_sharding = NamedSharding(self.mesh, P('data'))

    self.graphdef, params = models.init(config.model, init_key)
    self.optimizer = steps.make_optimizer(config.train)
    self.initial_state = jax.device_put(steps.init_state(params, self.optimizer), self.replicated)

    # The images evaluation sees, uint8: for dynamic binarization, one fixed binarization of each set (as in IWAE).
    self.test_images, self.train_images_fixed = self.dataset.test_images, self.dataset.train_images
    if config.data.preprocessing == 'binarize_dynamic':
      self.test_images, self.train_images_fixed = (
          np.asarray(data.preprocess(images, 'binarize_dynamic', jax.random.fold_in(eval_key, i)) * 255, np.uint8)
          for i, images in enumerate((self.test_images, self.train_images_fixed)))
    test_images = self.test_images
    self.num_test = len(test_images)
    self.train_images = jax.device_put(self.dataset.train_images, self.replicated)
    self.test_batches = jax.device_put(steps.pad_batches(test_images, config.eval.batch_size), self.replicated)

    epoch = functools.partial(steps.train_epoch, graphdef=self.graphdef, optimizer=self.optimizer, config=config,
                              batch_sharding=batch_sharding)
    self.train_epoch = jax.jit(epoch, donate_argnums=0)
    self.evaluate = jax.jit(functools.partial(
        steps.evaluate, num_images=self.num_test, key=self.eval_key, graphdef=self.graphdef, config=config,
        batch_sharding=batch_sharding))

  @property
  def steps_per_epoch(self):
    return len(self.dataset.train_images) // self.config.train.batch_size

  def test_metrics(self, params):
    return {f'test/{k}': float(v) for k, v in self.evaluate(params, self.test_batches).items()}

  def report(self, state, epoch, test_metrics, workdir, metrics_path):
    """Full evaluation of `state` (metrics, figures, report.md); writes results.json and returns its content."""
    model = api.Model(self.config, self.graphdef, state['params'], epoch)
    results = {'epoch': epoch, 'step': int(state['step']), **test_metrics}
    t0 = time.perf_counter()
    try:
      results = evaluation.evaluate(model, self.config, self.dataset, self.test_images, self.train_images_fixed,
                                    results, records.read_jsonl(metrics_path), workdir)
    except OSError as e:  # Figures and report; results.json, written last, keeps its previous content.
      raise VaeError(f'{e.filename or workdir}: cannot write the evaluation ({e.strerror or e})') from None
    logging.info('evaluated in %.1fs: test -elbo %.2f, IW NLL (%d samples) %.2f, active units %d, k-means acc %.3f, '
                 'probe acc %.3f; figures and report.md in %s', time.perf_counter() - t0, results['test/neg_elbo'],
                 self.config.eval.iw_samples, results['test/nll_iw'], results['test/active_units'],
                 results['latent/kmeans_acc'], results['latent/linear_probe_acc'], workdir)
    return results


def train_and_evaluate(config, workdir):
  """Trains `config` in `workdir`, resuming from its latest checkpoint; returns the final test metrics."""
  run = Run(config)
  paths = _prepare_workdir(workdir)
  ckpts = _open_checkpoints(run, workdir, paths)
  try:
    state, start = ckpts.restore_latest(run.initial_state)
    if state is None:
      state = run.initial_state
    else:
      logging.info('resuming from the checkpoint of epoch %d in %s', start, ckpts.directory)
    records.truncate_metrics(paths['metrics'], start)
    num_epochs = config.train.num_epochs
    if start < num_epochs:
      t0 = time.perf_counter()
      compiled = run.train_epoch.lower(state, run.train_images, jnp.int32(1), run.keys).compile()
      logging.info('compiled the epoch (%d steps of %d images) in %.1fs on %d %s device(s)', run.steps_per_epoch,
                   config.train.batch_size, time.perf_counter() - t0, jax.device_count(), jax.default_backend())
    record = None
    epoch_times = []
    for epoch in range(start + 1, num_epochs + 1):
      t0 = time.perf_counter()
      first_step = int(state['step'])
      state, train, health = compiled(state, run.train_images, jnp.int32(epoch), run.keys)
      train = {f'train/{k}': float(v) for k, v in train.items()}
      seconds = time.perf_counter() - t0
      _check_finite(health, epoch, first_step, ckpts.latest_epoch())
      record = {'epoch': epoch, 'step': int(state['step']), **train, **run.test_metrics(state['params']),
                'images_per_sec': run.steps_per_epoch * config.train.batch_size / seconds, 'seconds': seconds}
      records.write_text(paths['config'], config.to_json(indent=2) + '\n')
      records.append_jsonl(paths['metrics'], record)
      if epoch % config.train.checkpoint_every_epochs == 0 or epoch == num_epochs:
        try:
          ckpts.save(epoch, state)
        except VaeError:  # The records past the last checkpoint would be redone on resume: drop them now.
          _try(records.truncate_metrics, paths['metrics'], ckpts.latest_epoch() or 0)
          raise
      epoch_times.append(time.perf_counter() - t0)
      eta = (num_epochs - epoch) * np.mean(epoch_times)
      logging.info('epoch %d/%d  train -elbo %.2f  test -elbo %.2f (recon %.2f, kl %.2f)  %.1fs  %.0f img/s  '
                   'ETA %s', epoch, num_epochs, record['train/neg_elbo'], record['test/neg_elbo'],
                   record['test/recon'], record['test/kl'], seconds, record['images_per_sec'], _duration(eta))
  finally:
    ckpts.close()
  if record is None:  # Nothing left to train: report the last checkpoint.
    logging.info('workdir already holds epoch %d of %d; evaluating it', start, config.train.num_epochs)
    test_metrics = run.test_metrics(state['params'])
  else:
    test_metrics = {k: v for k, v in record.items() if k.startswith('test/')}
  return run.report(state, max(start, num_epochs), test_metrics, workdir, paths['metrics'])


def evaluate(config, workdir):
  """Re-evaluates the latest checkpoint in `workdir` without training; returns and writes its test metrics."""
  run = Run(config)
  paths = _prepare_workdir(workdir)
  ckpts = _open_checkpoints(run, workdir, paths)
  try:
    state, epoch = ckpts.restore_latest(run.initial_state)
    if state is None:
      raise VaeError(f'{ckpts.directory}: no checkpoint to evaluate (train first with --mode=train)')
  finally:
    ckpts.close()
  return run.report(state, epoch, run.test_metrics(state['params']), workdir, paths['metrics'])


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


def _open_checkpoints(run, workdir, paths):
  """The workdir's checkpoints, after refusing those of a different model (nothing has been written yet)."""
  ckpts = checkpoints.Checkpoints(workdir, run.config.train.keep_checkpoints)
  if ckpts.latest_epoch() is not None:
    try:
      if os.path.exists(paths['config']):
        validation.check_same_model(records.read_json(paths['config']), run.config, paths['config'])
      ckpts.check_compatible(run.initial_state)
    except VaeError:
      ckpts.close()
      raise
  return ckpts


def _check_finite(health, epoch, first_step, last_checkpoint):
  """Raises VaeError naming the first step of the epoch whose loss or gradient norm is not finite."""
  bad = {name: np.flatnonzero(~np.isfinite(np.asarray(values))) for name, values in health.items()}
  bad = {name: int(indices[0]) for name, indices in bad.items() if indices.size}
  if bad:
    index = min(bad.values())
    quantities = ', '.join(f'{name} is {float(health[name][index])}' for name in sorted(bad) if bad[name] == index)
    kept = f'the checkpoint of epoch {last_checkpoint} is kept' if last_checkpoint else 'no checkpoint was written'
    raise VaeError(f'epoch {epoch}, step {first_step + index + 1}: {quantities}; training stopped, {kept}')


def _try(fn, *args):
  try:
    fn(*args)
  except VaeError:
    pass


def _duration(seconds):
  seconds = int(round(seconds))
  return f'{seconds // 60}m{seconds % 60:02d}s' if seconds >= 60 else f'{seconds}s'
