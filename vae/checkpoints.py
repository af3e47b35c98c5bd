"""Orbax checkpoints of the train state under WORKDIR/checkpoints/, one per saved epoch, the last few kept.

Nothing a kill or a bad disk does can cost more than the epochs since the last complete checkpoint:
- Orbax writes each checkpoint to a temporary folder and renames it when complete, so a run killed mid-save
  leaves the previous checkpoints as they were; the temporary folder is cleaned up at the next start.
- Each checkpoint records the sha256 of its arrays; one that fails to restore or to match it is reported, moved
  to WORKDIR/checkpoints-unreadable/ (kept for inspection, never deleted) and the one before it is used.
- A save that fails (full disk, unwritable folder) is a VaeError naming its epoch; the checkpoints before it stay
  intact.
In a single-process run saving is asynchronous (Orbax's): `save` takes the host arrays and returns while they are
written, so the next epoch trains meanwhile; the next `save`, any read and `finish` wait for it first, and report
its failure then. A job of several processes saves synchronously: Orbax's background finalisation synchronises the
processes from another thread, which raced with the training's own collectives (a job aborted in tests).
"""
import contextlib
import hashlib
import logging as std_logging
import os
import re
import shutil
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from vae.errors import VaeError


class Checkpoints:
  """The checkpoints of one workdir, indexed by epoch."""

  def __init__(self, workdir, keep, read_only=False, name='checkpoints'):
    self.directory = os.path.join(os.path.abspath(workdir), name)  # 'checkpoints-best': early stopping's best.
    self.unreadable = self.directory + '-unreadable'
    # Read-only (vae.load): neither create folders nor clean up temporary ones, which may be a running save.
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=not read_only,
                                           cleanup_tmp_directories=not read_only,
                                           enable_async_checkpointing=jax.process_count() == 1)
    try:
      self.manager = ocp.CheckpointManager(self.directory, options=options,
                                            item_handlers=ocp.StandardCheckpointHandler())
    except OSError as e:
      raise VaeError(f'{self.directory}: cannot open the checkpoint folder ({e.strerror or e})') from None
    self._writing = None  # The epoch whose save is under way.

  def latest_epoch(self):
    """The epoch of the newest complete checkpoint, or None."""
    self.finish()
    return self.manager.latest_step()

  def check_compatible(self, like):
    """Raises VaeError naming the arrays whose shape or dtype in the newest checkpoint differ from `like`'s."""
    epoch = self.latest_epoch()
    if epoch is None:
      return
    try:
      saved = _leaves(self.manager.item_metadata(epoch).tree)
    except Exception:  # pylint: disable=broad-except  # Unreadable: `restore_latest` reports it and falls back.
      return
    wanted = _leaves(like)
    differences = [f'{name}: {_describe(saved.get(name))} in the checkpoint, {_describe(wanted.get(name))} now'
                   for name in sorted(set(saved) | set(wanted), key=_params_first) if _describe(saved.get(name)) != _describe(
                       wanted.get(name))]
    if differences:
      raise VaeError(f'{self.directory} holds epoch {epoch} of a different model ({"; ".join(differences[:4])}'
                     f'{"; ..." if len(differences) > 4 else ""}); use another --workdir')

  def restore(self, epoch, like):
    """The state saved at `epoch`, as the pytree `like`; raises VaeError if it cannot be read back or verified."""
    self.finish()
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    try:
      with _quiet_orbax():
        state = self.manager.restore(epoch, args=ocp.args.StandardRestore(abstract))
        expected = (self.manager.metadata(epoch).custom_metadata or {}).get('sha256')
    except Exception as e:  # pylint: disable=broad-except  # Any failure to read back makes it unusable.
      raise VaeError(f'{self.directory}/{epoch}: unreadable checkpoint ({_os_reason(e)})') from None
    if expected is not None and digest(state) != expected:
      raise VaeError(f'{self.directory}/{epoch}: corrupt checkpoint (its arrays do not match the sha256 recorded '
                     f'when it was saved)')
    return state

  def restore_latest(self, like, set_aside=True):
    """(state, epoch) of the newest checkpoint that restores and verifies, as the pytree `like`; (None, 0) if none.

    Unreadable checkpoints on the way are logged and, with `set_aside`, moved to WORKDIR/checkpoints-unreadable/.
    """
    self.finish()
    for epoch in sorted(self.manager.all_steps(), reverse=True):
      try:
        return self.restore(epoch, like), epoch
      except VaeError as e:
        where = f'; moved to {self._set_aside(epoch)}' if set_aside else ''
        logging.warning('%s%s; trying the checkpoint before it', e, where)
    return None, 0

  def save(self, epoch, state):
    """Starts writing the host pytree `state` as `epoch`, with the sha256 of its arrays; raises VaeError if the
    previous save failed or this one cannot start."""
    self.finish()
    needed = sum(leaf.nbytes for leaf in jax.tree.leaves(state)) + 2 ** 20  # Arrays (stored uncompressed) + metadata.
    free = shutil.disk_usage(self.directory).free
    if free < needed:
      raise VaeError(f'{self.directory}: cannot save the checkpoint of epoch {epoch} (it needs about '
                     f'{needed / 2 ** 20:.1f} MB, the disk has {free / 2 ** 20:.1f} MB free); {self._kept(epoch)}')
    try:
      with _quiet_orbax():
        self.manager.save(epoch, args=ocp.args.StandardSave(state), custom_metadata={'sha256': digest(state)},
                          force=True)
    except (OSError, ValueError) as e:
      self._failed(epoch, e)
    self._writing = epoch

  def finish(self):
    """Waits for the save under way; raises VaeError naming its epoch if it failed."""
    if self._writing is None:
      return
    epoch, self._writing = self._writing, None
    try:
      with _quiet_orbax():
        self.manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except  # Whatever the writer thread met: that save is lost.
      self._failed(epoch, e)

  def _failed(self, epoch, error):
    for name in os.listdir(self.directory):  # Orbax's unfinished temporary folder: give its space back.
      if name.startswith(f'{epoch}.') and 'tmp' in name:
        shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
    self.manager.reload()  # Forget the step that was not written.
    raise VaeError(f'{self.directory}: cannot save the checkpoint of epoch {epoch} ({_os_reason(error)}); '
                   f'{self._kept(epoch)}') from None

  def _kept(self, epoch):
    previous = [s for s in self.manager.all_steps() if s != epoch]
    return f'the checkpoint of epoch {max(previous)} is intact' if previous else 'no earlier checkpoint exists'

  def delete_after(self, epoch):
    """Deletes the checkpoints newer than `epoch` (a sweep member ahead of the others recomputes them exactly)."""
    self.finish()
    for step in self.manager.all_steps():
      if step > epoch:
        self.manager.delete(step)

  def drop_superseded(self, epoch):
    """Deletes the checkpoints older than the newest one at or before `epoch` (early stopping's best epochs: the
    one a resume from `epoch` would need stays, and every newer one)."""
    self.finish()
    kept = max((step for step in self.manager.all_steps() if step <= epoch), default=None)
    for step in self.manager.all_steps():
      if kept is not None and step < kept:
        self.manager.delete(step)

  def close(self):
    """Waits for a save under way (`finish` first, to hear of its failure) and lets the folder go."""
    try:
      self.finish()
    except VaeError as e:  # Closing after another error: that one is reported; a rerun resumes before this epoch.
      logging.warning('%s', e)
    # Orbax (0.12.8, pinned) clears temporary folders in a background thread and waits for it only before a save:
    # a run refused right after opening would exit under that thread (a RuntimeError traceback on stderr).
    cleanup = getattr(self.manager, '_cleanup_tmp_directory_future', None)
    if cleanup is not None:
      cleanup.result()
    self.manager.close()

  def _set_aside(self, epoch):
    dest = os.path.join(self.unreadable, f'{epoch}-{time.strftime("%Y%m%d-%H%M%S")}')
    try:
      os.makedirs(self.unreadable, exist_ok=True)
      os.replace(os.path.join(self.directory, str(epoch)), dest)
    except OSError as e:
      raise VaeError(f'{self.directory}/{epoch} is unreadable and cannot be moved to {self.unreadable} '
                     f'({e.strerror or e}); move or delete it by hand') from None
    self.manager.reload()
    return dest


@contextlib.contextmanager
def _quiet_orbax():
  """Silences what Orbax's worker threads print when an operation fails (the VaeError raised says it once)."""
  hook, sys.unraisablehook = sys.unraisablehook, lambda _: None
  quiet = lambda record: record.levelno < std_logging.ERROR or '/orbax/' not in record.pathname
  loggers = [std_logging.getLogger(name) for name in ('absl', 'asyncio')]
  for logger in loggers:
    logger.addFilter(quiet)
  try:
    yield
  finally:
    sys.unraisablehook = hook
    for logger in loggers:
      logger.removeFilter(quiet)


def complete_epochs(workdir, name='checkpoints'):
  """The epochs of WORKDIR/NAME's complete checkpoints, ascending, from the folder's names alone: no manager,
  whose start synchronises the processes of a job."""
  return sorted(ocp.utils.checkpoint_steps(os.path.join(workdir, name)))


def _os_reason(error):
  """The gist of an Orbax / TensorStore error: the OS's words when it quotes them, else its first 200 characters."""
  text = ' '.join(str(error).split('. See full TensorStore')[0].split())
  os_error = re.search(r": ([^:]+?) \[os_error_code='\d+'\]", text)
  return os_error.group(1) if os_error else (text[:200] or type(error).__name__)


def digest(state):
  """sha256 over the bytes, shapes and dtypes of every array of the pytree `state`, in tree order."""
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(jax.device_get(state)):
    leaf = np.asarray(leaf)
    h.update(f'{leaf.dtype}{leaf.shape}'.encode())
    h.update(np.ascontiguousarray(leaf).tobytes())
  return h.hexdigest()


def _leaves(tree):
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {jax.tree_util.keystr(path, simple=True, separator='/'): leaf for path, leaf in flat}


def _params_first(name):
  return (not name.startswith('params'), name)


def _describe(leaf):
  if leaf is None:
    return 'absent'
  return f'{np.dtype(leaf.dtype).name}{list(leaf.shape)}'
