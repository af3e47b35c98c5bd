"""The training loop over a `runs.Run`: compiled epochs, evaluation, logging, TensorBoard, checkpoints, resume.

`train_and_evaluate(config, workdir)` trains (resuming from the latest checkpoint in `workdir`) and writes
config.json and metrics.jsonl there, then the full evaluation (results.json, figures/, report.md), unless
results.json already holds it (the same epoch and config); `evaluate(config, workdir)` only re-evaluates. With
`members` (a sweep: configs that differ from `config` only in the seed and float hyper-parameters, see
vae/sweeps.py) each member has its own folder WORKDIR/members/<i>/; a plain run is the one member in WORKDIR.
All members train at once, one compiled program over the member axis; what each keeps on disk, and how a diverged
member is set aside, is vae/workdirs.py. Only process 0 writes records, figures and TensorBoard events;
every process takes part in the compiled steps and in Orbax's checkpoint saves.
"""
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from vae import checkpoints, layout, progress, records, stopping, sweeps, tensorboard, workdir_lock, workdirs
from vae.runs import Run, floats, select
from vae.errors import VaeError

TB_IMAGES_EVERY = 5  # Epochs between the reconstructions and samples sent to TensorBoard (and the last epoch).


def train_and_evaluate(config, workdir, members=None, mesh=None, restart=False):
  """Trains `config` (or the sweep `members`) in `workdir`, resuming from the latest checkpoints; with `restart`,
  from epoch 1, what the workdir held set aside first (workdirs.set_aside_all).

  `mesh`: a --mesh spec ('members:4,data:2'), None for the automatic layout. Returns the final results, one dict
  per member ({'diverged': why} for a member that diverged); processes other than 0 return [].
  """
  run = Run(members or [config], mesh)
  logging.info('%s', run.layout.describe())
  if restart and jax.process_count() > 1:
    raise VaeError('--restart: set the workdir aside from one process (run it once with --restart alone)')
  kept = workdirs.kept_for_parameters(_folders(workdir, members))
  if kept and not restart:  # Before anything is written.
    raise VaeError(f'{kept}: a finished run kept without its resume checkpoints (results.json, checkpoints-best/): '
                   f'vae.load opens it; to train again use another --workdir, or --restart')
  with _owned(workdir):
    if restart:
      workdirs.set_aside_all(workdir)
    places = workdirs.open_all(run, workdir, sweep=members is not None)
    return _train(run, places, workdir, sweep=members is not None)


def _train(run, places, workdir, sweep):
  config, lead = run.config, layout.is_lead()
  writers = []
  try:
    state, start = workdirs.restore(run, places)
    if start == 0:
      for _, place in workdirs.live(places):
        workdirs.refuse_to_start_over(place)
    for place in places:  # Best epochs saved after the resumed checkpoint (a kill in between) are redone.
      if place.best:
        place.best.delete_after(start)
    if lead:
      for _, place in workdirs.live(places):
        records.truncate_metrics(place.paths['metrics'], start)
        workdirs.keep_model_file(place)  # As the file is when the run begins (kept from the first start on).
    trackers = [_tracker(place, start) for place in places]
    writers.extend(tensorboard.Writer(place.workdir, start * run.steps_per_epoch, enabled=lead) for place in places)
    if start == 0:
      for writer, place in zip(writers, places):
        writer.hparams(place.config)
    num_epochs = config.train.num_epochs
    if start < num_epochs:
      t0 = time.perf_counter()
      compiled = run.compile_epoch(state)
      logging.info('compiled the epoch (%d steps of %d images, %d member(s)) in %.1fs', run.steps_per_epoch,
                   config.train.batch_size, len(places), time.perf_counter() - t0)
    epoch_records, epoch_times, last = None, [], start
    bar = progress.Progress(num_epochs - start, 'epochs', log_every_seconds=float('inf'))  # A bar on terminals.
    for epoch in range(start + 1, num_epochs + 1):
      if all(place.diverged or tracker.stopped for place, tracker in zip(places, trackers)):
        logging.info('every member has stopped early; evaluating the best validation epochs')
        break
      t0 = time.perf_counter()
      first_step = (epoch - 1) * run.steps_per_epoch  # Every member resumes from the same whole epoch.
      active = [not tracker.stopped for tracker in trackers]  # A member stopped early is frozen.
      state, train, health = compiled(state, run.train_images, jnp.int32(epoch), run.keys,
                                      run.hparams_at(epoch, active))
      last = epoch
      train, health = jax.device_get((train, health))  # The epoch's one wait: its means and per-step health.
      train = {f'train/{k}': floats(v) for k, v in train.items()}
      seconds = time.perf_counter() - t0
      workdirs.check_finite(places, health, epoch, first_step)
      test = run.test_metrics(state)
      images_per_sec = len(places) * run.steps_per_epoch * config.train.batch_size / seconds
      epoch_records = {}
      for i, place in workdirs.live(places):
        if trackers[i].stopped:
          continue
        record = {'epoch': epoch, 'step': first_step + run.steps_per_epoch, **select(train, i), **select(test, i),
                  'images_per_sec': images_per_sec, 'seconds': seconds}
        if lead:
          records.write_text(place.paths['config'], place.config.to_json(indent=2) + '\n')
          records.append_jsonl(place.paths['metrics'], record)
        epoch_records[i] = record
        writers[i].scalars(record['step'], {k: v for k, v in record.items() if '/' in k or k == 'images_per_sec'})
      if epoch % TB_IMAGES_EVERY == 0 or epoch == num_epochs:
        recons, samples = run.preview(state)
        for i, record in epoch_records.items():
          writers[i].images(record['step'], 'reconstructions (test images above)', recons[i])
          writers[i].images(record['step'], 'samples', samples[i])
      best = [i for i, record in epoch_records.items() if trackers[i].update(epoch, record.get(stopping.METRIC))]
      if best:  # Early stopping's best validation epoch, kept beside the regular checkpoints.
        states = run.member_states(state)
        for i in best:
          places[i].best.save(epoch, workdirs.best_part(states[i]))
      if epoch % config.train.checkpoint_every_epochs == 0 or epoch == num_epochs or any(
          t.stopped for t in trackers):  # A stop ends the run where the checkpoints are: a rerun resumes there.
        _save(run, places, state, epoch)
      epoch_times.append(time.perf_counter() - t0)
      if epoch_records:  # Empty when the last member still training diverged beside members stopped early.
        _log_epoch(list(epoch_records.values()), epoch, num_epochs, seconds,
                   (num_epochs - epoch) * np.mean(epoch_times))
      bar.update()
    bar.close()
    for _, place in workdirs.live(places):  # The last saves, written while the loop went on, are on disk.
      _saving(place, place.ckpts.finish)
      if place.best:
        place.best.drop_superseded(place.ckpts.latest_epoch() or 0)
    states = run.member_states(state)
    if epoch_records is None:  # Nothing left to train: report the last checkpoint, keeping finished evaluations.
      logging.info('workdir already holds epoch %d of %d; evaluating it', start, num_epochs)
    test = run.test_metrics(state) if epoch_records is None else {}
    latest = {i: (last, states[i], select(test, i) if epoch_records is None else epoch_records.get(i, {}))
              for i, _ in workdirs.live(places)}
    final = _final(run, places, trackers, latest)
  finally:
    for place in places:
      place.close()
    for writer in writers:
      writer.close()
  return _report(run, places, workdir, final, sweep, keep_finished=epoch_records is None)


def _final(run, places, trackers, latest):
  """{i: (epoch, host state, test metrics)} of what each live member reports: `latest[i]`, or with early stopping
  its best validation epoch, from checkpoints-best/ and that epoch's record."""
  final = {}
  for i, (epoch, state, metrics) in latest.items():
    if trackers[i].enabled:
      epoch = trackers[i].best_epoch
      metrics = next(r for r in records.read_jsonl(places[i].paths['metrics']) if r['epoch'] == epoch)
      state = places[i].best.restore(epoch, workdirs.best_part(run.initial_states[0]))
    final[i] = (epoch, state, {k: v for k, v in metrics.items() if k.startswith('test/')})
  return final


def evaluate(config, workdir, members=None, mesh=None):
  """Re-evaluates the latest checkpoint(s) in `workdir` (with early stopping, the best validation epoch) without
  training; returns and writes the results."""
  run = Run(members or [config], mesh)
  folders = _folders(workdir, members)
  if not any(checkpoints.complete_epochs(f) for f in folders):  # Refused before anything is written.
    kept = workdirs.kept_for_parameters(folders)
    if kept:
      raise VaeError(f'{kept}: a finished run kept for its parameters alone: vae.load opens it (--mode=eval needs '
                     f'the resume checkpoints, which it no longer has)')
    raise VaeError(f'{workdir}: no checkpoint to evaluate (train first with --mode=train)')
  with _owned(workdir):
    places = workdirs.open_all(run, workdir, sweep=members is not None)
    try:
      state, epoch = workdirs.restore(run, places)
      if epoch == 0:
        raise VaeError(f'{places[0].ckpts.directory}: no checkpoint to evaluate (train first with --mode=train)')
      test, states = run.test_metrics(state), run.member_states(state)
      trackers = [_tracker(place, epoch) for place in places]
      final = _final(run, places, trackers, {i: (epoch, states[i], select(test, i)) for i, _ in workdirs.live(places)})
    finally:
      for place in places:
        place.close()
    return _report(run, places, workdir, final, sweep=members is not None)


def _folders(workdir, members):
  """The run's folder, or its members' (WORKDIR/members/<i>/)."""
  return [os.path.join(workdirs.members_of(workdir), str(i)) for i in range(len(members))] if members else [workdir]


class _owned:
  """Holds the workdir's lock for a run (process 0 only: the others follow its lead)."""

  def __init__(self, workdir):
    self.workdir, self.lock = workdir, None

  def __enter__(self):
    if layout.is_lead():
      workdirs.prepare_workdir(self.workdir)
      self.lock = workdir_lock.acquire(self.workdir)

  def __exit__(self, *exc):
    if self.lock is not None:
      self.lock.release()


def _tracker(place, start):
  """The member's early-stopping state after epoch `start`, from its records (a resumed run's included)."""
  train = place.config.train
  done = [r for r in records.read_jsonl(place.paths['metrics']) if r['epoch'] <= start]
  return stopping.from_records(done, train.early_stopping_patience,
                               train.warmup_epochs if train.beta_schedule == 'linear' else 0)


def _save(run, places, state, epoch):
  """Each live member's checkpoint of `epoch` (every process takes part in Orbax's save)."""
  states = run.member_states(state)
  for i, place in workdirs.live(places):
    _saving(place, place.ckpts.finish)  # The save before (which `save` waits for anyway) is on disk.
    if place.best:  # The best epoch as of the last complete checkpoint stays, for a resume from it.
      place.best.drop_superseded(place.ckpts.latest_epoch() or 0)
    _saving(place, place.ckpts.save, epoch, states[i])


def _saving(place, fn, *args):
  """fn(*args), a save or the wait for one; if it (or the save before it) failed, the member's records past its
  last complete checkpoint are dropped (a rerun redoes those epochs) and the VaeError goes on."""
  try:
    fn(*args)
  except VaeError:
    if layout.is_lead():
      _try(records.truncate_metrics, place.paths['metrics'], place.ckpts.latest_epoch() or 0)
    raise


def _report(run, places, workdir, final, sweep, keep_finished=False):
  """Each member's full evaluation (and a sweep's summary), on process 0; the list of the members' results.

  `final[i]`: (epoch, host state, test metrics) of what member i reports. With `keep_finished` (the same command
  run again on a trained workdir), a member whose results.json already holds that epoch under the same config is
  not evaluated again: a sweep's evaluation cut off after some of its members resumes with the next one.
  """
  if not layout.is_lead():  # The others wait in JAX's shutdown barrier while process 0 evaluates (run.py sets its timeout).
    return []
  results = []
  for i, place in enumerate(places):
    if place.diverged:
      results.append({'diverged': place.diverged})
      continue
    epoch, state, test = final[i]
    if keep_finished and (finished := workdirs.finished_results(place, epoch)):
      logging.info('%s already holds the evaluation of epoch %d; kept (--mode=eval evaluates again)',
                   place.paths['results'], epoch)
      results.append(finished)
    else:
      results.append(run.report(place.config, state, epoch, test, place.workdir, place.paths['metrics']))
  if sweep:
    sweeps.write_summary(workdir, [p.config for p in places], results, workdirs.members_of(workdir))
  return results


def _log_epoch(epoch_records, epoch, num_epochs, seconds, eta):
  r = epoch_records[0]
  if len(epoch_records) == 1:
    validation = f'  validation -elbo {r["validation/neg_elbo"]:.2f}' if 'validation/neg_elbo' in r else ''
    median = f'median {r["test/neg_elbo_median"]:.2f}, ' if 'test/neg_elbo_median' in r else ''
    logging.info('epoch %d/%d  train -elbo %.2f%s  test -elbo %.2f (%srecon %.2f, kl %.2f)  %.1fs  %.0f img/s  ETA %s',
                 epoch, num_epochs, r['train/neg_elbo'], validation, r['test/neg_elbo'], median, r['test/recon'],
                 r['test/kl'], seconds, r['images_per_sec'], progress.duration(eta))
  else:
    ranges = ''.join(f'  {split} -elbo {min(v):.2f} .. {max(v):.2f}' for split in ('validation', 'test')
                     if (v := [m[f'{split}/neg_elbo'] for m in epoch_records if f'{split}/neg_elbo' in m]))
    logging.info('epoch %d/%d  %d members%s  %.1fs  %.0f img/s (all members)  ETA %s', epoch, num_epochs,
                 len(epoch_records), ranges, seconds, r['images_per_sec'], progress.duration(eta))


def _try(fn, *args):
  try:
    fn(*args)
  except VaeError:
    pass
