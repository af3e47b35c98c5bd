"""TensorBoard events (read back with TensorBoard's own reader) and the progress bar / periodic lines."""
import io
import logging
import os

import numpy as np
import pytest

from conftest import read_jsonl
from vae import progress

event_accumulator = pytest.importorskip('tensorboard.backend.event_processing.event_accumulator')


def read_events(workdir):
  acc = event_accumulator.EventAccumulator(workdir, size_guidance={'scalars': 0, 'images': 0, 'tensors': 0})
  acc.Reload()
  return acc


def test_scalars_match_metrics_jsonl(trained):
  acc = read_events(trained)
  records = read_jsonl(os.path.join(trained, 'metrics.jsonl'))
  for tag in ('train/neg_elbo', 'test/neg_elbo', 'test/recon', 'test/kl', 'train/grad_norm', 'images_per_sec'):
    events = acc.Scalars(tag)
    assert [e.step for e in events] == [r['step'] for r in records], tag
    assert [e.value for e in events] == pytest.approx([r[tag] for r in records], rel=1e-6), tag


def test_images_and_hparams(trained):
  acc = read_events(trained)
  images = {tag: acc.Images(tag) for tag in acc.Tags()['images']}
  assert set(images) == {'reconstructions (test images above)', 'samples'}
  recon = images['reconstructions (test images above)']
  assert [e.step for e in recon] == [20]  # The last epoch (2 < TB_IMAGES_EVERY): step 20.
  assert (recon[0].height, recon[0].width) == (4 * 29 + 1, 10 * 29 + 1)  # 20 originals + 20 reconstructions.
  assert images['samples'][0].encoded_image_string.startswith(b'\x89PNG')
  hparams = [t for t in acc.Tags()['tensors'] if t.startswith('_hparams_')]
  assert '_hparams_/session_start_info' in hparams


def test_image_grids_of_any_shape_decode_to_the_input(tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from vae import tensorboard  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  color, gray = rng.uniform(size=(12, 5, 7, 3)), rng.uniform(size=(3, 6, 4))  # H != W; gray given as (N, H, W).
  writer = tensorboard.Writer(str(tmp_path))
  writer.images(1, 'color', color, columns=5)
  writer.images(1, 'gray', gray, columns=2)
  writer.close()
  acc = read_events(str(tmp_path))
  for tag, images, mode, (rows, cols) in (('color', color, 'RGB', (3, 5)), ('gray', gray[..., None], 'L', (2, 2))):
    event, = acc.Images(tag)
    h, w = images.shape[1:3]
    with Image.open(io.BytesIO(event.encoded_image_string)) as png:
      assert png.mode == mode and png.size == (cols * (w + 1) + 1, rows * (h + 1) + 1) == (event.width, event.height)
      pixels = np.asarray(png).reshape(png.size[1], png.size[0], -1)
    k = len(images) - 1  # The last image: row and column both past the first.
    r, c = divmod(k, cols)
    tile = pixels[1 + (h + 1) * r:(h + 1) * (r + 1), 1 + (w + 1) * c:(w + 1) * (c + 1)]
    np.testing.assert_array_equal(tile, np.round(images[k] * 255))
    assert (pixels[(h + 1) * r] == 255).all() and (pixels[:, (w + 1) * c] == 255).all()  # White lines between tiles.
    assert (pixels[1 + (h + 1) * r:, 1 + (w + 1) * (c + 1):] == 255).all()  # Empty cells white.


class _Terminal(io.StringIO):
  def isatty(self):
    return True


def test_progress_bar_on_a_terminal():
  stream = _Terminal()
  bar = progress.Progress(3, 'IW NLL', stream=stream)
  for _ in range(3):
    bar.update()
  bar.close()
  text = stream.getvalue()
  assert text.count('\r') == 3 and '3/3' in text and 'ETA' in text and text.endswith('\n')
  assert '[' + '#' * progress.BAR_WIDTH + ']' in text


def test_progress_plain_lines_otherwise(monkeypatch):
  lines = []
  monkeypatch.setattr(progress.logging, 'info', lambda fmt, *args: lines.append(fmt % args))
  stream = io.StringIO()
  bar = progress.Progress(4, 'IW NLL', log_every_seconds=3600, stream=stream)
  for _ in range(4):
    bar.update()
  bar.close()
  assert stream.getvalue() == ''  # Nothing drawn when not a terminal ...
  assert len(lines) == 1 and lines[0].startswith('IW NLL: 4/4')  # ... only periodic lines, and the last one.


def test_epoch_line_shows_the_validation_split_where_there_is_one(caplog):
  from vae import training  # pylint: disable=g-import-not-at-top
  caplog.set_level(logging.INFO, logger='absl')
  record = {'train/neg_elbo': 101.234, 'test/neg_elbo': 99.5, 'test/recon': 70.0, 'test/kl': 29.5,
            'images_per_sec': 1000.0}
  members = [dict(record, **{'validation/neg_elbo': v, 'test/neg_elbo': t}) for v, t in ((98.76, 99.5), (97.1, 96.0))]
  lines = []
  for records in ([record], members[:1], members):
    caplog.clear()
    training._log_epoch(records, 3, 10, 1.0, 7.0)  # pylint: disable=protected-access
    lines.append(caplog.records[-1].getMessage())
  assert 'validation' not in lines[0] and 'train -elbo 101.23  test -elbo 99.50 (recon 70.00' in lines[0]
  assert 'train -elbo 101.23  validation -elbo 98.76  test -elbo 99.50' in lines[1]
  assert '2 members  validation -elbo 97.10 .. 98.76  test -elbo 96.00 .. 99.50' in lines[2]
  training._log_epoch([dict(record, **{'test/neg_elbo_median': 97.25})], 3, 10, 1.0, 7.0)  # pylint: disable=protected-access
  assert 'test -elbo 99.50 (median 97.25, recon 70.00, kl 29.50)' in caplog.records[-1].getMessage()


def test_duration():
  assert progress.duration(5.4) == '5s' and progress.duration(125) == '2m05s'


# A resumed run replaces the points of the epochs it redoes: tests/test_training.py:test_a_workdir_is_its_experiment,
# which resumes `trained` that way (one run for both).
