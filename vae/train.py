"""The training loop over a `runs.Run`: compiled epochs, evaluation, logging, TensorBoard, checkpoints, resume.

`train_and_evaluate(config, workdir)` trains (resuming from the latest checkpoint in `workdir`) and writes
config.json and metrics.jsonl there, then the full evaluation (results.json, figures/, report.md), unless
results.json already holds it (the same epoch and config); `evaluate(config, workdir)` only re-evaluates. With
`members` (configs that differ from `config` only in the seed and float hyper-parameters, see vae/sweeps.py) all
of them train at once, by `jax.vmap` over a leading member axis of the state, each in its own folder
WORKDIR/members/<i>/. A member whose loss turns non-finite is set aside (its
folder keeps its last good checkpoint and gets diverged.json) while the others go on; a plain run stops there.
"""
import dataclasses
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from vae import checkpoints, evaluation, progress, records, sweeps, tensorboard, validation
from vae.runs import Run, floats, select, stack
from vae.errors import VaeError

TB_IMAGES_EVERY = 5  # Epochs between the reconstructions and samples sent to TensorBoard (and the last epoch).


@dataclasses.dataclass
class _Member:
  """One trained config's place on disk."""
  config: object
  workdir: str
  paths: dict
  ckpts: object = None
  diverged: str = None  # Why the member stopped (a sweep member whose loss turned non-finite), from diverged.json.


def train_and_evaluate(config, workdir, members=None):
  """Trains `config` (or the sweep `members`) in `workdir`, resuming from the latest checkpoints.

  Returns the final results: a dict, or for a sweep the list of the members' dicts ({'diverged': why} for a member
  that diverged).
  """
  run = Run(members or [config], batched=members is not None)
  places = _open(run, workdir)
  writers = []
  try:
    state, start = _restore(run, places)
    for _, place in _live(places):
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
      steps = np.asarray(state['step'])
      first_step = int(steps[_live(places)[0][0]] if run.batched else steps)  # Not a diverged member's count.
      state, train, health = compiled(state, run.train_images, jnp.int32(epoch), run.keys, run.hparams_at(epoch))
      train = {f'train/{k}': floats(v) for k, v in jax.device_get(train).items()}
      seconds = time.perf_counter() - t0
      health = jax.device_get(health)
      _check_finite(run, places, health, epoch, first_step)
      test = run.test_metrics(state['params'])
      images_per_sec = len(places) * run.steps_per_epoch * config.train.batch_size / seconds
      epoch_records = {}
      for i, place in _live(places):
        record = {'epoch': epoch, 'step': first_step + run.steps_per_epoch, **select(train, i, run.batched),
                  **select(test, i, run.batched), 'images_per_sec': images_per_sec, 'seconds': seconds}
        records.write_text(place.paths['config'], place.config.to_json(indent=2) + '\n')
        records.append_jsonl(place.paths['metrics'], record)
        epoch_records[i] = record
        writers[i].scalars(record['step'], {k: v for k, v in record.items() if '/' in k or k == 'images_per_sec'})
      if epoch % TB_IMAGES_EVERY == 0 or epoch == num_epochs:
        recons, samples = run.preview(state['params'])
        for i, record in epoch_records.items():
          writers[i].images(record['step'], 'reconstructions (test images above)', select(recons, i, run.batched))
          writers[i].images(record['step'], 'samples', select(samples, i, run.batched))
      if epoch % config.train.checkpoint_every_epochs == 0 or epoch == num_epochs:
        for i, place in _live(places):
          try:
            place.ckpts.save(epoch, select(state, i, run.batched))
          except VaeError:  # The records past the last checkpoint would be redone on resume: drop them now.
            _try(records.truncate_metrics, place.paths['metrics'], place.ckpts.latest_epoch() or 0)
            raise
      epoch_times.append(time.perf_counter() - t0)
      _log_epoch(list(epoch_records.values()), epoch, num_epochs, seconds, (num_epochs - epoch) * np.mean(epoch_times))
      bar.update()
    bar.close()
  finally:
    for place in places:
      place.ckpts.close()
    for writer in writers:
      writer.close()
  if epoch_records is None:  # Nothing left to train: report the last checkpoint, keeping finished evaluations.
    logging.info('workdir already holds epoch %d of %d; evaluating it', start, num_epochs)
    test = run.test_metrics(state['params'])
    tests = {i: select(test, i, run.batched) for i, _ in _live(places)}
    return _report(run, places, workdir, state, start, tests, keep_finished=True)
  tests = {i: {k: v for k, v in r.items() if k.startswith('test/')} for i, r in epoch_records.items()}
  return _report(run, places, workdir, state, num_epochs, tests)


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
  return _report(run, places, workdir, state, epoch,
                 {i: select(test, i, run.batched) for i, _ in _live(places)})


def _report(run, places, workdir, state, epoch, tests, keep_finished=False):
  """Each member's full evaluation (and a sweep's summary); the results dict, or a sweep's list of them.

  With `keep_finished` (the same command run again on a trained workdir), a member whose results.json already
  holds epoch `epoch` under the same config is not evaluated again: a sweep's evaluation cut off after some of
  its members resumes with the next one.
  """
  results = []
  for i, place in enumerate(places):
    if place.diverged:
      results.append({'diverged': place.diverged})
    elif keep_finished and (finished := _finished_results(place, epoch)):
      logging.info('%s already holds the evaluation of epoch %d; kept (--mode=eval evaluates again)',
                   place.paths['results'], epoch)
      results.append(finished)
    else:
      results.append(run.report(place.config, select(state, i, run.batched), epoch, tests[i], place.workdir,
                                place.paths['metrics']))
  if not run.batched:
    return results[0]
  sweeps.write_summary(workdir, [p.config for p in places], results, members_of(workdir))
  return results


def _finished_results(place, epoch):
  """The member's results.json if it is the evaluation of `epoch` under its current config, else None."""
  try:
    results = records.read_json(place.paths['results'])
  except VaeError:  # Absent or unreadable: evaluate again.
    return None
  same = results.get('epoch') == epoch and results.get('config') == evaluation.evaluated_config(place.config)
  return results if same else None


def members_of(workdir):
  return os.path.join(workdir, 'members')


def _live(places):
  """[(i, place)] of the members that have not diverged."""
  return [(i, place) for i, place in enumerate(places) if not place.diverged]


def _open(run, workdir):
  """Each member's folder, checked writable, and its checkpoints, after refusing another model's."""
  folders = [os.path.join(members_of(workdir), str(i)) for i in range(len(run.configs))] if run.batched else [
      workdir]
  places = [_Member(member, folder, _prepare_workdir(folder)) for member, folder in zip(run.configs, folders)]
  for place in places:
    if run.batched and os.path.exists(place.paths['diverged']):
      place.diverged = records.read_json(place.paths['diverged']).get('message', 'diverged')
  try:
    for place, like in zip(places, run.initial_states):
      place.ckpts = checkpoints.Checkpoints(place.workdir, place.config.train.keep_checkpoints)
      if place.ckpts.latest_epoch() is not None or place.diverged:
        if os.path.exists(place.paths['config']):
          saved = records.read_json(place.paths['config'])
          validation.check_same_model(saved, place.config, place.paths['config'])
          if run.batched:
            sweeps.check_member(saved, place.config, place.paths['config'])
        if place.ckpts.latest_epoch() is not None:
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
  if not _live(places):
    raise VaeError(f'{os.path.dirname(places[0].workdir)}: every sweep member has diverged (each one\'s '
                   f'diverged.json says where); to try again use another --workdir or other values')
  epoch = min(e for (_, e), place in zip(restored, places) if not place.diverged)
  if epoch == 0:
    return run.initial_state, 0
  states = []
  for (state, e), place, like in zip(restored, places, run.initial_states):
    if place.diverged:  # Set aside: it trains along (vmap needs its lane) but nothing of it is kept.
      state = like if state is None else state
    elif e != epoch:  # A member ahead of the others (a kill between members' saves): redo its epochs with them.
      state = place.ckpts.restore(epoch, like)
      place.ckpts.delete_after(epoch)
    states.append(state)
  logging.info('resuming from the checkpoint%s of epoch %d in %s', 's' if run.batched else '', epoch,
               places[0].ckpts.directory if not run.batched else os.path.dirname(places[0].workdir))
  state = stack(states) if run.batched else states[0]
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
          for name, ext in (('config', 'json'), ('metrics', 'jsonl'), ('results', 'json'), ('diverged', 'json'))}


def _check_finite(run, places, health, epoch, first_step):
  """Stops each member at the first step of the epoch whose loss or gradient norm is not finite.

  A plain run raises VaeError naming the step. In a sweep, such members are set aside (diverged.json in their
  folders, which keep their last checkpoints) and the others go on; if none would be left, VaeError as for a run.
  """
  stopped = {}
  for i, place in _live(places):
    member = select(health, i, run.batched)
    bad = {name: np.flatnonzero(~np.isfinite(np.asarray(values))) for name, values in member.items()}
    bad = {name: int(indices[0]) for name, indices in bad.items() if indices.size}
    if bad:
      index = min(bad.values())
      quantities = ', '.join(f'{name} is {float(member[name][index])}' for name in sorted(bad) if bad[name] == index)
      last = place.ckpts.latest_epoch()
      kept = f'the checkpoint of epoch {last} is kept' if last else 'no checkpoint was written'
      step = first_step + index + 1
      stopped[i] = {'epoch': epoch, 'step': step,
                    'message': f'epoch {epoch}, step {step}: {quantities}; training stopped, {kept}'}
  if not stopped:
    return
  if not run.batched:
    raise VaeError(stopped[0]['message'])
  if len(stopped) == len(_live(places)):
    i = min(stopped)
    others = f' (and {len(stopped) - 1} more: no sweep member is left training)' if len(stopped) > 1 else (
        ' (the last sweep member still training)')
    raise VaeError(f'{places[i].workdir}: {stopped[i]["message"]}{others}')
  for i, why in stopped.items():
    _set_aside(places[i], why)


def _set_aside(place, why):
  """Marks a diverged sweep member in its folder (diverged.json, and config.json for a rerun's check)."""
  paths = place.paths
  records.write_text(paths['config'], place.config.to_json(indent=2) + '\n')
  if os.path.exists(paths['results']):  # An earlier, shorter run's: kept, but not where it reads as current.
    earlier = records.read_json(paths['results']).get('epoch', 'earlier')
    os.replace(paths['results'], os.path.join(place.workdir, f'results-epoch{earlier}.json'))
  records.write_json(paths['diverged'], why)
  place.diverged = why['message']
  logging.error('%s: %s; the other members go on (this one is left out of the summary)', place.workdir,
                why['message'])


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


def _try(fn, *args):
  try:
    fn(*args)
  except VaeError:
    pass
