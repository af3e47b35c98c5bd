"""Other places the same datasets come from (`data.source`): the Kaggle CSV files and TFDS's array-record sources.

Each reader returns {'train_images', 'train_labels', 'test_images', 'test_labels'}: images uint8 (N, 28, 28),
labels (N,); `vae/data.py` checks and assembles them exactly as it does the IDX files (`data.source = 'idx'`).
"""
import os

import numpy as np

from vae.errors import VaeError

CSV_FILES = {
    'mnist': ('mnist_train.csv', 'mnist_test.csv'),
    'fashion_mnist': ('fashion-mnist_train.csv', 'fashion-mnist_test.csv'),
}


def read_csv(path):
  """(images uint8 (N, 28, 28), labels (N,)) of a Kaggle-layout CSV: a header, then `label,pixel1,...,pixel784`."""
  try:
    with open(path) as f:
      lines = f.read().splitlines()
  except OSError as e:
    raise VaeError(f'{path}: cannot read ({e.strerror or e})') from None
  except UnicodeDecodeError:
    raise VaeError(f'{path}: not a text file') from None
  if not lines:
    raise VaeError(f'{path}: empty (expected a header line, then label,pixel1,...,pixel784 rows)')
  rows = [line for line in lines[1:] if line.strip()]
  if not rows:
    raise VaeError(f'{path}: no rows after the header')
  try:
    values = np.array([line.split(',') for line in rows], dtype=np.int64)
  except ValueError:  # Ragged rows or a non-integer: find the first bad line to name it.
    values = None
  if values is None or values.ndim != 2 or values.shape[1] != 785 or values.min() < 0 or values[:, 1:].max() > 255:
    for number, line in enumerate(lines[1:], start=2):
      if line.strip() and not _good_row(line):
        raise VaeError(f'{path}:{number}: malformed row (expected 785 comma-separated integers: a label, then 784 '
                       f'pixels in 0..255): {line[:60]}{"..." if len(line) > 60 else ""}')
  return values[:, 1:].astype(np.uint8).reshape(-1, 28, 28), values[:, 0]


def _good_row(line):
  fields = line.split(',')
  if len(fields) != 785:
    return False
  try:
    numbers = [int(v) for v in fields]
  except ValueError:
    return False
  return numbers[0] >= 0 and all(0 <= v <= 255 for v in numbers[1:])


def load_csv(name, data_dir):
  """The four arrays of dataset `name` from its Kaggle CSV files in `data_dir`."""
  if not data_dir:
    raise VaeError(f'data.source=csv needs data.dir: the folder holding {" and ".join(CSV_FILES[name])}')
  if not os.path.isdir(data_dir):
    raise VaeError(f'data.dir={data_dir}: no such folder')
  arrays = {}
  for split, filename in zip(('train', 'test'), CSV_FILES[name]):
    path = os.path.join(data_dir, filename)
    if not os.path.exists(path):
      raise VaeError(f'{path}: missing (data.source=csv reads {" and ".join(CSV_FILES[name])} from data.dir)')
    arrays[f'{split}_images'], arrays[f'{split}_labels'] = read_csv(path)
  return arrays


def load_tfds(name, data_dir):
  """The four arrays of dataset `name` from `tfds.data_source` (array-record files; no TensorFlow needed).

  With `data_dir`, the prepared dataset must be there (nothing is downloaded); without, TFDS's default folder is
  used and TFDS downloads and prepares the dataset if it can.
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise VaeError('data.source=tfds needs tensorflow-datasets (pip install tensorflow-datasets '
                   'importlib_resources array_record)') from None
  arrays = {}
  for split in ('train', 'test'):
    try:
      source = tfds.data_source(name, split=split, data_dir=data_dir, download=not data_dir)
      records = [source[i] for i in range(len(source))]
    except Exception as e:  # pylint: disable=broad-except  # TFDS raises many kinds; all mean "not available".
      where = f' in {data_dir}' if data_dir else ''
      raise VaeError(f'tfds {name}/{split}{where}: not available ({" ".join(str(e).split())[:200]})') from None
    arrays[f'{split}_images'] = np.stack([np.asarray(r['image'], np.uint8).reshape(28, 28) for r in records])
    arrays[f'{split}_labels'] = np.array([int(r['label']) for r in records])
  return arrays
