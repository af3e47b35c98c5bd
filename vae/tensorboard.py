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
    """`images` (N, H, W, C) in [0, 1], C = 1 or 3 ((N, H, W) is gray), as one grid of `columns` columns: a
    grayscale PNG for C = 1, RGB for C = 3."""
    if self.enabled:
      images = np.asarray(images, np.float32)
      images = images[..., None] if images.ndim == 3 else images
      if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f'TensorBoard images must be shaped (N, H, W, C) with C = 1 or 3, got {images.shape}')
      grid = _grid(images, columns)
      image = summary_pb2.Summary.Image(height=grid.shape[0], width=grid.shape[1], colorspace=grid.shape[2],
                                        encoded_image_string=_png(grid))
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
  """Images (N, H, W, C) as a (rows*(H+1)+1, columns*(W+1)+1, C) grid, one white pixel around and between tiles."""
  n, h, w, c = images.shape
  grid = np.ones((-(-n // columns) * (h + 1) + 1, columns * (w + 1) + 1, c), np.float32)
  for i, image in enumerate(images):
    r, col = divmod(i, columns)
    grid[1 + (h + 1) * r:(h + 1) * (r + 1), 1 + (w + 1) * col:(w + 1) * (col + 1)] = image
  return grid


def _png(grid):
  """A (h, w, C) array in [0, 1] as an 8-bit PNG, grayscale for C = 1 and RGB for C = 3."""
  from PIL import Image  # pylint: disable=g-import-not-at-top  # Pillow comes with matplotlib.
  buffer = io.BytesIO()
  pixels = np.uint8(np.round(np.clip(grid, 0, 1) * 255))
  Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buffer, format='PNG')
  return buffer.getvalue()
