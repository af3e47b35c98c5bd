"""Where a dataset's images come from (`data.source`) besides MNIST's IDX files: the Kaggle CSV files (MNIST /
Fashion-MNIST only) and any TFDS image dataset; one's own images (npz, folder) are read by `vae/data/images.py`.

`load_csv` returns MNIST's four arrays, completed by `vae/data/` as the IDX files are. Every reader of READERS is
`load(name, data_dir, image_size)` -> {'train_images', 'test_images': uint8 (N, H, W, C) with C 1 or 3;
'train_labels', 'test_labels': integer (N,), or None when unlabelled; 'class_names': a tuple, () when unlabelled},
and `data.load` checks the counts, ranges and shapes of all alike.

TFDS: through `tfds.data_source` (array-record; no TensorFlow). The images are the dataset's Image feature ('image'
if several), the labels its ClassLabel feature ('label' if several), the class names that feature's names; a dataset
without a ClassLabel (celeb_a, binarized_mnist) is unlabelled. The splits read are 'train' and 'test'.
"""
import os

import numpy as np
from absl import logging

from vae.data import images
from vae.errors import VaeError

SPLITS = ('train', 'test')
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


def _tfds():
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise VaeError('data.source=tfds needs tensorflow-datasets (pip install tensorflow-datasets '
                   'importlib_resources array_record)') from None
  return tfds


def _short(e):
  """TFDS's message on one line, without the list of every dataset it appends to "not found"."""
  return ' '.join(str(e).split('Available datasets:')[0].split())[:200]


def features_of(name, features):
  """(image key, label key or None) of the TFDS features dict `features` of dataset `name`."""
  tfds = _tfds()

  def find(kind, preferred):
    keys = [key for key, feature in features.items() if isinstance(feature, kind)]
    return preferred if preferred in keys else (keys[0] if keys else None)
  image = find(tfds.features.Image, 'image')
  if image is None:
    raise VaeError(f'tfds {name}: no image feature (its features: {", ".join(features) or "none"})')
  return image, find(tfds.features.ClassLabel, 'label')


def load_tfds(name, data_dir, image_size):
  """The images (and labels, if any) of TFDS dataset `name`.

  With `data_dir`, the prepared dataset must be there (nothing is downloaded); without, TFDS's default folder is
  used and TFDS downloads and prepares the dataset if it can.
  """
  tfds = _tfds()
  in_dir = f' in {data_dir}' if data_dir else ''
  try:  # The builder's info comes from TFDS's code: a dataset without images fails here, before any download.
    info = tfds.builder(name, data_dir=data_dir).info
  except Exception as e:  # pylint: disable=broad-except  # TFDS raises many kinds; all mean "not available".
    raise VaeError(f'tfds {name}{in_dir}: not available ({_short(e)})') from None
  image_key, label_key = features_of(name, info.features)
  feature = info.features[image_key]
  height, width, channels = feature.shape
  if np.dtype(feature.np_dtype) != np.uint8:
    raise VaeError(f'tfds {name}: {image_key} holds {np.dtype(feature.np_dtype)} images; only 8-bit ones are read')
  if channels not in images.CHANNELS:
    raise VaeError(f'tfds {name}: {image_key} has {channels} channels; 1 or 3 are read')
  if image_size is None and None in (height, width):
    raise VaeError(f'tfds {name}: its images vary in size ({image_key} is {feature.shape}); set data.image_size to '
                   f'center-crop and resize them to one')
  if info.splits and 'test' not in info.splits:  # Known once prepared (and under mock_data with metadata files).
    raise VaeError(f'tfds {name}: no test split (it has {", ".join(info.splits)})')
  shape = (image_size, image_size, channels) if image_size else (height, width, channels)
  out = {'class_names': tuple(info.features[label_key].names) if label_key else ()}
  for split in SPLITS:
    try:
      source = tfds.data_source(name, split=split, data_dir=data_dir, download=not data_dir)
      logging.info('tfds %s/%s: reading %d images', name, split, len(source))
      pixels = np.empty((len(source),) + shape, np.uint8)  # One array, filled: no list of images to stack.
      labels = np.empty(len(source), np.int64) if label_key else None
      for i in range(len(source)):
        record = source[i]
        pixels[i] = images.crop_resize(np.asarray(record[image_key], np.uint8), image_size)
        if label_key:
          labels[i] = record[label_key]
    except Exception as e:  # pylint: disable=broad-except  # TFDS raises many kinds; all mean "not available".
      raise VaeError(f'tfds {name}/{split}{in_dir}: not available ({_short(e)})') from None
    out[f'{split}_images'], out[f'{split}_labels'] = pixels, labels
  # binarized_mnist stores its pixels as 0 / 1. A dataset whose every pixel is 0 or 1 is such a binary one: its
  # pixels are scaled to 0 / 255 in place, so every dataset is 8-bit alike (and preprocessing's [0, 1] holds). With
  # data.image_size the resizing ran on the 0 / 1 values, so a resized binary set stays binary.
  if max(out[f'{split}_images'].max(initial=0) for split in SPLITS) <= 1:
    for split in SPLITS:
      np.multiply(out[f'{split}_images'], 255, out=out[f'{split}_images'])
  return out


READERS = {'tfds': load_tfds, 'npz': images.load_npz, 'folder': images.load_folder}
