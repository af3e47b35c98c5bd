"""Datasets: finding, fetching and loading MNIST / Fashion-MNIST, class subsets and pixel preprocessing.

Files are looked for in `data.dir` when set; else in the cache folder (`$VAE_DATA_DIR`, default
`~/.cache/vae`), then in known system places; else they are fetched from the canonical URLs into the cache.
Images stay uint8 of shape (N, 784) until a batch is preprocessed on device.
"""
import dataclasses
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np

from vae import idx, sources
from vae.errors import VaeError

DATASETS = ('mnist', 'fashion_mnist')
PREPROCESSING = ('gray', 'binarize_static', 'binarize_dynamic', 'signed')
CLASS_NAMES = {
    'mnist': tuple(str(d) for d in range(10)),
    'fashion_mnist': ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                      'Ankle boot'),
}
URLS = {
    'mnist': ('https://ossci-datasets.s3.amazonaws.com/mnist/', 'https://storage.googleapis.com/cvdf-datasets/mnist/'),
    'fashion_mnist': ('http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',),
}
SYSTEM_DIRS = {
    'mnist': ('/usr/share/datasets/mnist',),
    'fashion_mnist': ('/usr/share/datasets/fashion-mnist',),
}
IMAGE_SIZE = 28 * 28
SOURCES = {'csv': sources.load_csv, 'tfds': sources.load_tfds}  # Besides 'idx', the canonical files.


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Train, test (and held-out validation) images as uint8 (N, 784), labels as int32 (N,), the class names."""
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  class_names: tuple
  validation_images: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, IMAGE_SIZE), np.uint8))
  validation_labels: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0,), np.int32))


def cache_dir():
  return os.environ.get('VAE_DATA_DIR') or os.path.join(os.path.expanduser('~'), '.cache', 'vae')


def find_dir(name, data_dir=None):
  """The folder holding all four files of dataset `name`, fetching them into the cache if none does."""
  if data_dir:
    if not os.path.isdir(data_dir):
      raise VaeError(f'data.dir={data_dir}: no such folder')
    missing = [f for f in idx.FILES.values() if _find_file(data_dir, f) is None]
    if missing:
      raise VaeError(f'data.dir={data_dir}: missing {", ".join(missing)} (plain or .gz) for {name}')
    return data_dir
  cache = os.path.join(cache_dir(), name)
  for folder in (cache,) + SYSTEM_DIRS[name]:
    if all(_find_file(folder, f) is not None for f in idx.FILES.values()):
      return folder
  fetch(name, cache)
  return cache


def _find_file(folder, name):
  for candidate in (name, name + '.gz'):
    path = os.path.join(folder, candidate)
    if os.path.isfile(path):
      return path
  return None


def fetch(name, folder):
  """Downloads the missing files of `name` into `folder`; each is checksum-verified before it is kept."""
  os.makedirs(folder, exist_ok=True)
  for filename in idx.FILES.values():
    if _find_file(folder, filename) is not None:
      continue
    errors = []
    for base in URLS[name]:
      try:
        download(base + filename + '.gz', os.path.join(folder, filename + '.gz'), name)
        break
      except (OSError, urllib.error.URLError, VaeError) as e:  # Unreachable or bad content: try the next mirror.
        errors.append(f'{base}{filename}.gz: {getattr(e, "reason", e)}')
    else:
      raise VaeError(f'{name}: {filename} not found in {folder} or {", ".join(SYSTEM_DIRS[name])}, and fetching '
                     f'failed ({"; ".join(errors)}); set data.dir or run `make data`')


def download(url, dest, dataset):
  """Fetches `url` to `dest` atomically; a file whose content fails its checksum is deleted, never kept."""
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), suffix='.part')
  try:
    with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(url, timeout=30) as response:
      shutil.copyfileobj(response, out)
    try:
      content = idx.read_bytes(tmp)
    except VaeError as e:
      raise VaeError(f'{url}: download discarded, {str(e).removeprefix(tmp + ": ")}') from None
    expected = idx.SHA256[dataset][os.path.basename(dest).removesuffix('.gz')]
    if hashlib.sha256(content).hexdigest() != expected:
      raise VaeError(f'{url}: checksum mismatch, download discarded')
    os.replace(tmp, dest)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def load(name, data_dir=None, classes=None, source='idx'):
  """Loads and validates dataset `name` from `source`; `classes` (e.g. (1, 8)) keeps only those labels."""
  if name not in DATASETS:
    raise VaeError(f'data.name={name!r}: unknown dataset (allowed: {", ".join(DATASETS)})')
  if source == 'idx':
    folder = find_dir(name, data_dir)
    arrays = {}
    for key, filename in idx.FILES.items():
      shape = (None, 28, 28) if key.endswith('images') else (None,)
      arrays[key] = idx.read(_find_file(folder, filename), name, shape)
  elif source in SOURCES:
    folder = data_dir or f'tfds {name}'
    arrays = SOURCES[source](name, data_dir)
  else:
    raise VaeError(f'data.source={source!r}: unknown (allowed: idx, {", ".join(SOURCES)})')
  for key, values in arrays.items():
    if key.endswith('labels') and len(values) and not 0 <= values.min() <= values.max() < len(CLASS_NAMES[name]):
      raise VaeError(f'{folder}: {key} outside 0..{len(CLASS_NAMES[name]) - 1}')
  for split in ('train', 'test'):
    n_images, n_labels = len(arrays[f'{split}_images']), len(arrays[f'{split}_labels'])
    if n_images != n_labels:
      raise VaeError(f'{folder}: {split} set has {n_images} images but {n_labels} labels')
  data = Dataset(arrays['train_images'].reshape(-1, IMAGE_SIZE), arrays['train_labels'].astype(np.int32),
                 arrays['test_images'].reshape(-1, IMAGE_SIZE), arrays['test_labels'].astype(np.int32),
                 CLASS_NAMES[name])
  return data if classes is None else subset(data, classes, name)


def subset(data, classes, name='dataset'):
  """Only the images whose label is in `classes`; labels keep their original values."""
  classes = tuple(int(c) for c in classes)
  absent = [c for c in classes if not 0 <= c < len(data.class_names)]
  if not classes or absent:
    raise VaeError(f'data.classes={classes}: {name} has classes 0..{len(data.class_names) - 1}')
  train = np.isin(data.train_labels, classes)
  test = np.isin(data.test_labels, classes)
  return dataclasses.replace(data, train_images=data.train_images[train], train_labels=data.train_labels[train],
                             test_images=data.test_images[test], test_labels=data.test_labels[test])


VALIDATION_IMAGES = ('first', 'last')


def hold_out(data, size, which='last'):
  """`data` with `size` of its training images (the first or the last ones, in file order) moved to validation.

  TensorFlow's `input_data.read_data_sets` kept the first 5,000 for validation; the VampPrior code the last 10,000.
  """
  if not size:
    return data
  keep, held = (slice(size, None), slice(None, size)) if which == 'first' else (slice(None, -size), slice(-size, None))
  return dataclasses.replace(data, train_images=data.train_images[keep], train_labels=data.train_labels[keep],
                             validation_images=data.train_images[held], validation_labels=data.train_labels[held])


def preprocess(images, mode, key=None):
  """uint8 pixels -> float32 model inputs under data.preprocessing `mode` (see from_unit)."""
  return from_unit(images.astype(jnp.float32) / 255.0, mode, key)


def from_unit(x, mode, key=None):
  """Pixels in [0, 1] -> model inputs: gray as they are, thresholded at 0.5 ('binarize_static'), a Bernoulli draw
  ('binarize_dynamic', needs `key`), or mapped to [-1, 1] ('signed': torchvision's Normalize(0.5, 0.5))."""
  if mode == 'gray':
    return x
  if mode == 'binarize_static':
    return (x > 0.5).astype(x.dtype)
  if mode == 'binarize_dynamic':
    return jax.random.bernoulli(key, x).astype(x.dtype)
  if mode == 'signed':
    return 2.0 * x - 1.0
  raise VaeError(f'data.preprocessing={mode!r}: unknown (allowed: {", ".join(PREPROCESSING)})')


def eval_mode(mode):
  """The preprocessing of evaluation: a dynamically binarized run scores images binarized once, as they are."""
  return 'gray' if mode == 'binarize_dynamic' else mode


# A dynamically binarized run scores each set binarized once, with this seed whatever the run's (so every run and
# sweep member is scored on the same binary images), folded with the set's index here.
EVAL_BINARIZATION_SEED = 0
EVAL_SETS = ('test', 'train', 'validation')


def eval_binarization_key(which):
  """The key of the set `which`'s (one of EVAL_SETS) one fixed binarization."""
  return jax.random.fold_in(jax.random.key(EVAL_BINARIZATION_SEED), EVAL_SETS.index(which))


def binarize_once(images, which):
  """uint8 images of the set `which` (one of EVAL_SETS) -> its one fixed binarization, uint8 0 / 255."""
  return np.asarray(preprocess(images, 'binarize_dynamic', eval_binarization_key(which)) * 255, np.uint8)


def main(argv):
  """`python -m vae.data NAME...` finds (or fetches) and verifies each dataset, printing where it lies."""
  for name in argv[1:] or DATASETS:
    data = load(name)
    print(f'{name}: {find_dir(name)}: {len(data.train_images)} train, {len(data.test_images)} test images, '
          f'checksums ok')


if __name__ == '__main__':
  import sys
  try:
    main(sys.argv)
  except VaeError as e:
    sys.exit(f'error: {e}')
