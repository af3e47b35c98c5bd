"""Datasets: loading MNIST / Fashion-MNIST (found or fetched) or any image dataset of another source, class subsets
and pixel preprocessing.

MNIST's IDX files are looked for in `data.dir` when set; else in the cache folder (`$VAE_DATA_DIR`, default
`~/.cache/vae`), then in known system places; else they are fetched from the canonical URLs into the cache. The
other sources live in `vae/data/sources.py` (Kaggle CSV, TFDS) and `vae/data/images.py` (an .npz file, a folder of PNG /
JPEG files).
Images stay uint8 of shape (N, H, W, C) until a batch is preprocessed on device; labels are int32, -1 when the
dataset has none.
"""
import dataclasses
import hashlib
import math
import os
import shutil
import tempfile
import urllib.error
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np

from vae.data import idx, sources
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
MNIST_SIZE = 28  # Of the IDX and CSV files: 28 x 28 gray.
SOURCES = ('csv',) + tuple(sources.READERS)  # Besides 'idx', the canonical files; csv serves only DATASETS too.


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Train, test (and held-out validation) images as uint8 (N, H, W, C), labels as int32 (N,), the class names.

  An unlabelled dataset has labels -1 (one per image, so that slicing is one path) and no class names.
  """
  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  class_names: tuple
  validation_images: np.ndarray = None  # None: none held out, (0, H, W, C) of the training images' shape.
  validation_labels: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0,), np.int32))

  def __post_init__(self):
    if self.validation_images is None:
      object.__setattr__(self, 'validation_images', np.zeros((0,) + self.train_images.shape[1:], np.uint8))

  @property
  def image_shape(self):
    """(H, W, C)."""
    return tuple(int(d) for d in self.train_images.shape[1:])

  @property
  def has_labels(self):
    return bool(self.class_names)


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


def load(name, data_dir=None, classes=None, source='idx', image_size=None):
  """Loads and validates dataset `name` from `source`; `classes` (e.g. (1, 8)) keeps only those labels.

  `image_size` center-crops every image to a square and resizes it to image_size x image_size (images.crop_resize);
  MNIST's own files (idx, csv) are 28 x 28 as they are. For npz and folder, `name` is only a label.
  """
  if source != 'idx' and source not in SOURCES:
    raise VaeError(f'data.source={source!r}: unknown (allowed: idx, {", ".join(SOURCES)})')
  if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer))
                                 or image_size < 1):
    raise VaeError(f'data.image_size={image_size!r}: expected a positive integer (or None: images as they are)')
  if source in ('idx', 'csv'):
    arrays, where = _load_mnist(name, data_dir, source, image_size)
  else:
    arrays, where = sources.READERS[source](name, data_dir, image_size), data_dir or f'tfds {name}'
  class_names = tuple(arrays['class_names'])
  labels = {}
  for split in ('train', 'test'):
    pixels, values = arrays[f'{split}_images'], arrays[f'{split}_labels']
    if values is None:  # Unlabelled.
      values = np.full(len(pixels), -1, np.int32)
    elif len(pixels) != len(values):
      raise VaeError(f'{where}: {split} set has {len(pixels)} images but {len(values)} labels')
    elif len(values) and not 0 <= values.min() <= values.max() < len(class_names):
      raise VaeError(f'{where}: {split}_labels outside 0..{len(class_names) - 1}')
    if not len(pixels):
      raise VaeError(f'{where}: the {split} set holds no images')
    labels[split] = values.astype(np.int32)
  train, test = arrays['train_images'], arrays['test_images']
  if train.shape[1:] != test.shape[1:]:
    raise VaeError(f'{where}: train images are {"x".join(map(str, train.shape[1:]))} but test images '
                   f'{"x".join(map(str, test.shape[1:]))}')
  data = Dataset(train, labels['train'], test, labels['test'], class_names)
  return data if classes is None else subset(data, classes, name)


def _load_mnist(name, data_dir, source, image_size):
  """The arrays of MNIST or Fashion-MNIST from their IDX or Kaggle CSV files, and the folder they lie in."""
  if name not in DATASETS:
    raise VaeError(f'data.name={name!r}: unknown dataset (allowed: {", ".join(DATASETS)})')
  if image_size not in (None, MNIST_SIZE):
    raise VaeError(f'data.image_size={image_size}: {name} from data.source={source} is {MNIST_SIZE}x{MNIST_SIZE} '
                   f'only (leave data.image_size unset)')
  if source == 'idx':
    folder = find_dir(name, data_dir)
    arrays = {}
    for key, filename in idx.FILES.items():
      shape = (None, MNIST_SIZE, MNIST_SIZE) if key.endswith('images') else (None,)
      arrays[key] = idx.read(_find_file(folder, filename), name, shape)
  else:
    folder, arrays = data_dir, sources.load_csv(name, data_dir)
  for split in ('train', 'test'):
    arrays[f'{split}_images'] = arrays[f'{split}_images'][..., None]  # A view: (N, 28, 28) -> (N, 28, 28, 1).
  return dict(arrays, class_names=CLASS_NAMES[name]), folder


def subset(data, classes, name='dataset'):
  """Only the images whose label is in `classes`; labels keep their original values."""
  classes = tuple(int(c) for c in classes)
  if not data.has_labels:
    raise VaeError(f'data.classes={classes}: {name} has no labels to select classes by (leave data.classes unset)')
  absent = [c for c in classes if not 0 <= c < len(data.class_names)]
  if not classes or absent:
    raise VaeError(f'data.classes={classes}: {name} has classes 0..{len(data.class_names) - 1}')
  train = np.isin(data.train_labels, classes)
  test = np.isin(data.test_labels, classes)
  return dataclasses.replace(data, train_images=data.train_images[train], train_labels=data.train_labels[train],
                             test_images=data.test_images[test], test_labels=data.test_labels[test])


VALIDATION_IMAGES = ('first', 'last')


def flat(images):
  """(N, H, W, C) images as (N, H*W*C), a view: what the models read."""
  return images.reshape(images.shape[0], math.prod(images.shape[1:]))


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


def mean_input(images, mode):
  """The mean model input of each pixel over uint8 `images` (N, D) under `mode` ('gray', 'binarize_static' or
  'binarize_dynamic', whose draws' mean is the gray pixel's): D float64 values in [0, 1]."""
  if mode == 'binarize_static':
    return (images > 127).mean(0, dtype=np.float64)  # x / 255 > 0.5, as from_unit thresholds.
  return images.mean(0, dtype=np.float64) / 255.0


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
  """uint8 images of the set `which` (one of EVAL_SETS) -> its one fixed binarization, uint8 0 / 255, same shape."""
  return np.asarray(preprocess(images, 'binarize_dynamic', eval_binarization_key(which)) * 255, np.uint8)

