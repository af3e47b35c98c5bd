"""Orbax checkpoints of the train state under WORKDIR/checkpoints/, one per saved epoch, the last few kept.

Orbax writes each checkpoint to a temporary folder and renames it when complete, so a run killed mid-save leaves
the previous checkpoints usable; `latest_epoch` only ever sees finished ones.
"""
import os

import jax
import orbax.checkpoint as ocp


class Checkpoints:
  """The checkpoints of one workdir, indexed by epoch."""

  def __init__(self, workdir, keep):
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_epoch(self):
    """The epoch of the newest complete checkpoint, or None."""
    return self.manager.latest_step()

  def restore(self, epoch, like):
    """The state saved at `epoch`, with the structure, dtypes and shardings of the pytree `like`."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    return self.manager.restore(epoch, args=ocp.args.StandardRestore(abstract))

  def save(self, epoch, state):
    """Starts saving `state` as `epoch` in the background; `close` waits for it."""
    self.manager.save(epoch, args=ocp.args.StandardSave(state), force=True)

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()
