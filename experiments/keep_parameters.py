"""Reduces finished runs' workdirs to what a reader of the repository needs: the parameters `vae.load` opens.

  .venv/bin/python experiments/keep_parameters.py WORKDIR [WORKDIR ...]

For each workdir (a run's, or a sweep member's) with a results.json: the checkpoint of the epoch results.json
reports is restored and saved again as step and parameters only, in `checkpoints-best/` (what an early-stopped run
keeps of its best validation epoch; `vae.load` opens it first), and `checkpoints/` (the resume state: parameters
and the optimizer's two moments, three times the size) and the TensorBoard event files are removed. The restored
parameters are compared with the saved ones, bit for bit, before anything is removed. An early-stopped run saved its
best epoch there itself: that save is kept as it is, once `vae.load` opens it. A workdir already reduced, or without
results.json (unfinished: it still needs its resume state), is left as it is.
"""
import glob
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

import vae  # pylint: disable=wrong-import-position
from vae import checkpoints, records, workdir_lock, workdirs  # pylint: disable=wrong-import-position


def reduce(workdir):
  lock = workdir_lock.acquire(workdir)  # Refused while a run holds it.
  try:
    resume = os.path.join(workdir, 'checkpoints')
    if not os.path.exists(os.path.join(workdir, 'results.json')) or not os.path.isdir(resume):
      return f'{workdir}: kept as it is ({"unfinished" if os.path.isdir(resume) else "already reduced"})'
    results = records.read_json(os.path.join(workdir, 'results.json'))
    latest = checkpoints.complete_epochs(workdir)[-1:]  # A finished run's results: of its last epoch, or its best.
    if results['epoch'] not in latest + checkpoints.complete_epochs(workdir, 'checkpoints-best'):
      return f'{workdir}: kept as it is (results.json reports epoch {results["epoch"]}, not its newest checkpoint)'
    message = _reduce(workdir, results)
    for events in glob.glob(os.path.join(workdir, 'events.out.tfevents.*')):
      os.remove(events)
    return message
  finally:
    lock.release()


def _reduce(workdir, results):
  """checkpoints-best/ from the checkpoint of results.json's epoch, checked bit for bit, then checkpoints/ removed."""
  resume = os.path.join(workdir, 'checkpoints')
  epoch = results['epoch']
  best = os.path.join(workdir, 'checkpoints-best')
  saved_by_the_run = os.path.isdir(best) and str(epoch) in os.listdir(best)  # An early-stopped run's best epoch.
  if not saved_by_the_run:
    model = vae.load(workdir, epoch=epoch)
    state = {'step': np.asarray(results['step'], np.int32), 'params': jax.tree.map(np.asarray, model.params)}
    ckpts = checkpoints.Checkpoints(workdir, 1, name='checkpoints-best')
    ckpts.save(epoch, workdirs.best_part(state))
    ckpts.finish()
    ckpts.close()
  kept = vae.load(workdir)  # checkpoints-best/, as any reader's vae.load opens it.
  if kept.epoch != epoch:
    raise SystemExit(f'{workdir}: vae.load opens epoch {kept.epoch}, not {epoch}; nothing removed')
  if not saved_by_the_run:
    original = vae.load(workdir, epoch=epoch)
    for a, b in zip(jax.tree.leaves(kept.params), jax.tree.leaves(original.params), strict=True):
      if not np.array_equal(a, b):
        raise SystemExit(f'{workdir}: the saved parameters differ from epoch {epoch}\'s; nothing removed')
  shutil.rmtree(resume)
  return f'{workdir}: epoch {epoch}, parameters only'


if __name__ == '__main__':
  if len(sys.argv) < 2:
    sys.exit(f'usage: {sys.argv[0]} WORKDIR [WORKDIR ...]')
  for path in sys.argv[1:]:
    print(reduce(path))
