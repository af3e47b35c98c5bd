"""TensorBoard event files in the workdir, written with the `tensorboard` package's protos and writer: no TensorFlow.

`tensorboard --logdir WORKDIR` shows per-epoch train/test scalars and images/s, reconstructions and samples, and
the config as hparams. A resumed run starts with TensorBoard's "session start" marker at its first step, so the
curves of epochs it redoes are replaced, not doubled.
"""
import io
import time

import numpy as np
from absl import logging

from vae import records

try:
  from tensorboard.compat.proto import event_pb2, summary_pb2
  from tensorboard.plugins.hparams import summary_v2 as hparams_summary
  from tensorboard.summary.writer.event_file_writer import EventFileWriter
except ImportError:  # TensorBoard is optional: without it, nothing is written.
  EventFileWriter = None


class Writer:
  """Scalars, image grids and hparams of one run (or sweep member) into `workdir`; a no-op without tensorboard
  (or with `enabled=False`: a process other than 0)."""

  def __init__(self, workdir, start_step=0, enabled=True):
    self._workdir, self._writer, self._pending = workdir, None, []
    self.enabled = enabled and EventFileWriter is not None
    if self.enabled:  # TensorBoard purges the points at or after a restart's marker: those of the redone epochs.
      self._pending.append(_event(start_step + 1 if start_step else 0,
                                  session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))

  def scalars(self, step, values):
    """`values`: {tag: float}."""
    if self.enabled:
      self._add(step, summary=summary_pb2.Summary(value=[
          summary_pb2.Summary.Value(tag=tag, simple_value=float(v)) for tag, v in values.items()]))

  def images(self, step, tag, images, columns=10):
    """`images` (N, 784) or (N, 28, 28) in [0, 1], as one grayscale grid of `columns` columns."""
    if self.enabled:
      grid = _grid(np.asarray(images, np.float32).reshape(-1, 28, 28), columns)
      png = _png(grid)
      image = summary_pb2.Summary.Image(height=grid.shape[0], width=grid.shape[1], colorspace=1,
                                        encoded_image_string=png)
      self._add(step, summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=image)]))

  def hparams(self, config):
    """The config's scalar leaves (tuples as strings) as TensorBoard hparams, written with the first scalars."""
    if self.enabled:
      flat = {k: (v if isinstance(v, (bool, int, float, str)) else str(v)) for k, v in records.flatten(config.to_dict()).items()}
      self._pending.append(_event(0, summary=hparams_summary.hparams_pb(flat)))

  def close(self):
    if self._writer:
      try:
        self._writer.close()
      except OSError:
        pass

  def _add(self, step, **fields):
    try:
      if self._writer is None:  # Opened at the first write: a run that stops before its first epoch leaves no file.
        self._writer = EventFileWriter(self._workdir)
        for event in self._pending:
          self._writer.add_event(event)
      self._writer.add_event(_event(step, **fields))
      self._writer.flush()
    except OSError as e:  # TensorBoard is a view: a failed write stops it, never the run.
      logging.warning('TensorBoard events in %s: cannot write (%s); no more events this run', self._workdir, e)
      self.enabled = False


def _event(step, **fields):
  return event_pb2.Event(wall_time=time.time(), step=int(step), **fields)


def _grid(images, columns):
  rows = -(-len(images) // columns)
  grid = np.ones((rows * 29 + 1, columns * 29 + 1), np.float32)
  for i, image in enumerate(images):
    r, c = divmod(i, columns)
    grid[1 + 29 * r:29 * (r + 1), 1 + 29 * c:29 * (c + 1)] = image
  return grid


def _png(gray):
  from PIL import Image  # pylint: disable=g-import-not-at-top  # Pillow comes with matplotlib.
  buffer = io.BytesIO()
  Image.fromarray(np.uint8(np.clip(gray, 0, 1) * 255), mode='L').save(buffer, format='PNG')
  return buffer.getvalue()
