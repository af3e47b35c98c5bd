"""Each member's place on disk: its folder and files, its checkpoints, the epoch it resumes from, divergence.

A plain run is the one member in WORKDIR; sweep member i lives in WORKDIR/members/<i>/ like a run of its own. A
member whose loss turns non-finite is set aside (its folder keeps its last good checkpoint and gets diverged.json)
while the others go on; when none is left, the run stops with the first one's reason.
"""
import dataclasses
import os
import tempfile
import time

import numpy as np
from absl import logging

from vae import checkpoints, layout, records, registry, sweeps, validation, workdir_lock
from vae.errors import VaeError
from vae.runs import select


@dataclasses.dataclass
class Place:
  """One trained config's place on disk."""
  config: object
  workdir: str
  paths: dict
  ckpts: object = None
  diverged: str = None  # Why the member stopped (its loss turned non-finite), from diverged.json.
  best: object = None  # With early stopping: the Checkpoints of its best validation epoch (checkpoints-best/).

  def close(self):
    for ckpts in (self.ckpts, self.best):
      if ckpts is not None:
        ckpts.close()


def best_part(state):
  """What checkpoints-best/ keeps of a state: step and parameters (the optimizer's moments only resume training,
  which never starts from the best epoch), a third of the bytes for Adam."""
  return {'step': state['step'], 'params': state['params']}


def members_of(workdir):
  return os.path.join(workdir, 'members')


def live(places):
  """[(i, place)] of the members that have not diverged."""
  return [(i, place) for i, place in enumerate(places) if not place.diverged]


def open_all(run, workdir, sweep):
  """Each member's folder (WORKDIR itself for a plain run), checked writable, and its checkpoints, after refusing
  another model's or other values'."""
  if sweep and (os.path.exists(os.path.join(workdir, 'config.json')) or
                os.path.isdir(os.path.join(workdir, 'checkpoints'))):
    raise VaeError(f'{workdir}: holds a plain run (config.json, checkpoints/); a sweep goes in another --workdir')
  if not sweep and os.path.isdir(members_of(workdir)):
    raise VaeError(f'{workdir}: holds a sweep (members/); resume it with its --sweep flags, or use another --workdir')
  folders = [os.path.join(members_of(workdir), str(i)) for i in range(len(run.configs))] if sweep else [workdir]
  places = [Place(member, folder, prepare_workdir(folder)) for member, folder in zip(run.configs, folders)]
  for place in places:
    if os.path.exists(place.paths['diverged']):
      place.diverged = records.read_json(place.paths['diverged']).get('message', 'diverged')
  like = run.initial_states[0]
  try:
    for place in places:
      place.ckpts = checkpoints.Checkpoints(place.workdir, place.config.train.keep_checkpoints)
      if place.config.train.early_stopping_patience:  # Each best epoch kept until superseded (training._save).
        place.best = checkpoints.Checkpoints(place.workdir, None, name='checkpoints-best')
      if os.path.exists(place.paths['config']):  # Records of this workdir's experiment: the same one goes on.
        saved = records.read_json(place.paths['config'])
        validation.check_same_model(saved, place.config, place.paths['config'])
        if sweep:  # A member's folder is its values'.
          sweeps.check_member(saved, place.config, place.paths['config'])
        for key, (there, now) in validation.check_resume(saved, place.config, place.paths['config']).items():
          logging.info('%s: %s=%r there, %r now (config.json records the new value)', place.workdir, key, there, now)
      if place.ckpts.latest_epoch() is not None or place.diverged:
        if place.ckpts.latest_epoch() is not None:
          place.ckpts.check_compatible(like)
  except VaeError:
    for place in places:
      place.close()
    raise
  return places


def restore(run, places):
  """(state, epoch): the newest checkpoint every member has (the initial states and 0 if one has none)."""
  like = run.initial_states[0]
  restored = [place.ckpts.restore_latest(like) for place in places]
  if not live(places):
    raise VaeError(f'{os.path.dirname(places[0].workdir)}: every sweep member has diverged (each one\'s '
                   f'diverged.json says where); to try again use another --workdir or other values')
  epoch = min(e for (_, e), place in zip(restored, places) if not place.diverged)
  if epoch == 0:
    return run.place(run.initial_states), 0
  states = []
  for (state, e), place, initial in zip(restored, places, run.initial_states):
    if place.diverged:  # Set aside: it trains along (its lane is computed) but nothing of it is kept.
      state = initial if state is None else state
    elif e != epoch:  # A member ahead of the others (a kill between members' saves): redo its epochs with them.
      state = place.ckpts.restore(epoch, like)
      place.ckpts.delete_after(epoch)
    states.append(state)
  logging.info('resuming from the checkpoints of epoch %d in %s', epoch,
               places[0].ckpts.directory if len(places) == 1 else os.path.dirname(places[0].workdir))
  return run.place(states), epoch


def refuse_to_start_over(place):
  """A workdir whose checkpoints were all unreadable (and set aside) is refused rather than trained again from
  epoch 1 over its records (--restart starts over explicitly)."""
  unreadable = place.ckpts.unreadable
  if os.path.isdir(unreadable) and os.listdir(unreadable):
    raise VaeError(f'{place.ckpts.directory}: no readable checkpoint to resume from (the unreadable ones are in '
                   f'{unreadable}); training again from epoch 1 would overwrite this run\'s records: use another '
                   f'--workdir, or --restart')


def kept_for_parameters(folders):
  """The first of `folders` (a run's, or its members') that holds a finished run's results and parameters but no
  resume checkpoint (experiments/keep_parameters.py's reduction), else None."""
  return next((f for f in folders if os.path.exists(os.path.join(f, 'results.json')) and
               not checkpoints.complete_epochs(f)), None)


RUN_FILES = ('config.json', 'metrics.jsonl', 'checkpoints', 'checkpoints-best', 'members', 'results.json')


def set_aside_all(workdir):
  """Moves everything `workdir` holds (but its lock and earlier set-aside folders) into WORKDIR/set-aside-<time>/,
  for a run that starts over (--restart); returns that folder, or None if there was nothing to move. A folder that
  is not a run's workdir (none of RUN_FILES) is refused, so that --restart never moves anything else."""
  names = [n for n in os.listdir(workdir) if n != workdir_lock.FILENAME and not n.startswith('set-aside-')]
  if not names:
    return None
  if not set(names) & set(RUN_FILES):
    raise VaeError(f'--restart: {workdir} is not a run\'s workdir (it holds none of {", ".join(RUN_FILES)}); '
                   f'nothing moved')
  folder = tempfile.mkdtemp(prefix=f'set-aside-{time.strftime("%Y%m%d-%H%M%S")}-', dir=workdir)
  os.chmod(folder, 0o755)
  for name in names:
    os.replace(os.path.join(workdir, name), os.path.join(folder, name))
  logging.info('%s: what it held is set aside in %s; training from epoch 1', workdir, folder)
  return folder


def keep_model_file(place):
  """Copies the file of an own model (`model.name` 'path/to/file.py:Name') into WORKDIR/model_file/ once, when the
  run starts: vae.load opens that copy, from any folder, whatever became of the original."""
  source = registry.model_file(place.config.model.name)
  if source is None:
    return
  copy = os.path.join(place.workdir, registry.MODEL_FILE_DIR, os.path.basename(source))
  if not os.path.exists(copy):
    os.makedirs(os.path.dirname(copy), exist_ok=True)
    with open(source) as f:
      records.write_text(copy, f.read())


def prepare_workdir(workdir):
  """Creates `workdir` and makes sure it is writable; writes nothing else."""
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise VaeError(f'workdir {workdir}: cannot write ({e.strerror or e})') from None
  return {name: os.path.join(workdir, f'{name}.{ext}')
          for name, ext in (('config', 'json'), ('metrics', 'jsonl'), ('results', 'json'), ('diverged', 'json'))}


def check_finite(places, health, epoch, first_step):
  """Stops each member at the first step of the epoch whose loss or gradient norm is not finite.

  Such members are set aside (diverged.json in their folders, which keep their last checkpoints) and the others go
  on; if none would be left, VaeError naming the first one's step. `health`: per member, each step's values.
  """
  stopped = {}
  for i, place in live(places):
    member = select(health, i)
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
  if len(stopped) == len(live(places)):
    i = min(stopped)
    if len(places) == 1:
      raise VaeError(stopped[i]['message'])
    others = f' (and {len(stopped) - 1} more: no sweep member is left training)' if len(stopped) > 1 else (
        ' (the last sweep member still training)')
    raise VaeError(f'{places[i].workdir}: {stopped[i]["message"]}{others}')
  for i, why in stopped.items():
    _set_aside(places[i], why)


def _set_aside(place, why):
  """Marks a diverged member in its folder (diverged.json, and config.json for a rerun's check)."""
  place.diverged = why['message']
  logging.error('%s: %s; the other members go on (this one is left out of the summary)', place.workdir,
                why['message'])
  if not layout.is_lead():
    return
  paths = place.paths
  records.write_text(paths['config'], place.config.to_json(indent=2) + '\n')
  if os.path.exists(paths['results']):  # An earlier, shorter run's: kept, but not where it reads as current.
    earlier = records.read_json(paths['results']).get('epoch', 'earlier')
    os.replace(paths['results'], os.path.join(place.workdir, f'results-epoch{earlier}.json'))
  records.write_json(paths['diverged'], why)


def finished_results(place, epoch):
  """The member's results.json if it is the evaluation of `epoch` under its current config, else None."""
  from vae import evaluation  # pylint: disable=g-import-not-at-top  # Not at the start: see runs.Run.report.
  try:
    results = records.read_json(place.paths['results'])
  except VaeError:  # Absent or unreadable: evaluate again.
    return None
  same = results.get('epoch') == epoch and evaluation.evaluated_under(results, place.config)
  return results if same else None


def resume_epoch(workdir, num_members=None):
  """The epoch a rerun resumes from, as `restore` would find it: the newest complete checkpoint every member that
  has not diverged has (0 if one has none). Reads folder names only, without Orbax's manager, whose start
  synchronises the processes of a job: run.py says it after a process of the job is lost."""
  folders = [os.path.join(members_of(workdir), str(i)) for i in range(num_members)] if num_members else [workdir]
  live_folders = [f for f in folders if not os.path.exists(os.path.join(f, 'diverged.json'))] or folders
  return min(checkpoints.complete_epochs(f)[-1:] or [0] for f in live_folders)[0]
