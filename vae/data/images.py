"""One's own images: an .npz file or a folder of PNG / JPEG files (`data.source` npz, folder), and the one crop and
resize of `data.image_size` every source uses.

npz: data.dir names one .npz file holding x_train, x_test and, optionally, y_train, y_test (Keras's names, as in
its mnist.npz); images uint8 (N, H, W) or (N, H, W, C) with C 1 or 3, labels integers, classes '0' ... the largest.

folder: image files under data.dir/train and data.dir/test, decoded with Pillow, in sorted order. Labels as
torchvision's ImageFolder gives them: the sorted names of the class subfolders are the classes (the same in train/
and test/); images lying directly in train/ and test/ are unlabelled. Gray images ('L', '1') give C = 1; every other
mode ('RGBA', 'P', 'CMYK', ...) is converted to RGB, C = 3, and so are gray images among color ones (their count is
logged). 16-bit and float images are refused rather than clipped. All images must have one size, unless
`data.image_size` crops and resizes each.

Readers return what vae/data/sources.py's READERS do.
"""
import concurrent.futures
import os
import struct
import zipfile
import zlib

import numpy as np
from absl import logging
from PIL import Image

from vae.errors import VaeError

SPLITS = ('train', 'test')
CHANNELS = (1, 3)  # Gray or RGB.
NPZ_IMAGES = ('x_train', 'x_test')
NPZ_LABELS = ('y_train', 'y_test')
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')
GRAY_MODES = ('L', '1')
# What Pillow raises on a bad file: OSError (UnidentifiedImageError, "image file is truncated"), SyntaxError
# ("broken PNG file"), and a few others from inside its decoders.
BAD_IMAGE = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)
# Bicubic, as Pillow computes it: a convolution whose support widens with the reduction, so downscaling is
# antialiased (no aliasing from skipped pixels). Values overshooting 0..255 are clipped to uint8.
RESAMPLE = Image.Resampling.BICUBIC


def crop_resize(image, size):
  """`image` (a PIL image, or uint8 (H, W, C)) as uint8 (H, W, C); with `size`, its central square (the largest
  that fits) resized to size x size. Every source's `data.image_size` is this one function."""
  if isinstance(image, np.ndarray):
    if size is None or image.shape[:2] == (size, size):
      return image
    image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
  if size is not None and image.size != (size, size):
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    # Cropped first: resize's own `box` lets the filter reach pixels outside the box, which a crop must drop.
    image = image.crop((left, top, left + side, top + side)).resize((size, size), RESAMPLE)
  array = np.asarray(image)
  return array.reshape(array.shape[:2] + (-1,))  # A gray image has no channel axis in PIL: (H, W) -> (H, W, 1).


def crop_resize_all(images, size):
  """uint8 (N, H, W, C) -> (N, size, size, C) by `crop_resize`, filled into one new array; as they are without size."""
  if size is None:
    return images
  out = np.empty((len(images), size, size, images.shape[-1]), np.uint8)
  for i, image in enumerate(images):
    out[i] = crop_resize(image, size)
  return out


# --- npz.


def load_npz(name, data_dir, image_size):
  """The arrays of the .npz file `data_dir` (`name` is only a label)."""
  del name
  path = data_dir
  if not path:
    raise VaeError('data.source=npz needs data.dir: the .npz file holding x_train and x_test (and optionally '
                   'y_train, y_test)')
  if not os.path.isfile(path):
    raise VaeError(f'data.dir={path}: no such file')
  arrays, keys = _read_npz(path)
  wanted = NPZ_IMAGES + (NPZ_LABELS if any(k in keys for k in NPZ_LABELS) else ())  # Labels: both or neither.
  missing = [k for k in wanted if k not in keys]
  if missing:
    raise VaeError(f'{path}: missing {", ".join(missing)} (it has {", ".join(keys) or "no arrays"})')
  out = {}
  for split, x_key, y_key in zip(SPLITS, NPZ_IMAGES, NPZ_LABELS):
    out[f'{split}_images'] = _npz_images(arrays[x_key], f'{path}: {x_key}', image_size)
    out[f'{split}_labels'] = _npz_labels(arrays.get(y_key), len(out[f'{split}_images']), path, x_key, y_key)
  labels = [out[f'{split}_labels'] for split in SPLITS if out[f'{split}_labels'] is not None]
  num_classes = max(int(y.max()) + 1 for y in labels) if labels else 0
  out['class_names'] = tuple(str(i) for i in range(num_classes))
  return out


def _read_npz(path):
  """({key: array} of the keys this source reads, every key of the file)."""
  try:
    f = np.load(path, allow_pickle=False)
    if not isinstance(f, np.lib.npyio.NpzFile):
      raise VaeError(f'{path}: a single .npy array, not an .npz file of x_train, x_test, ...')
    with f:
      return {k: f[k] for k in NPZ_IMAGES + NPZ_LABELS if k in f.files}, list(f.files)
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    raise VaeError(f'{path}: not a readable .npz file ({" ".join(str(e).split())[:200]})') from None


def _npz_images(x, where, image_size):
  if x.dtype != np.uint8:
    raise VaeError(f'{where} is {x.dtype}; expected uint8 pixels 0..255')
  if x.ndim == 3:
    x = x[..., None]  # A view: (N, H, W) gray images, one channel.
  if x.ndim != 4 or x.shape[-1] not in CHANNELS:
    raise VaeError(f'{where} has shape {x.shape}; expected (N, H, W) or (N, H, W, C) with C 1 or 3')
  if not len(x):
    raise VaeError(f'{where} holds no images')
  return crop_resize_all(x, image_size)


def _npz_labels(y, num_images, path, x_key, y_key):
  if y is None:
    return None
  if y.ndim == 2 and y.shape[1] == 1:
    y = y[:, 0]  # Keras's CIFAR arrays keep labels as (N, 1).
  if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
    raise VaeError(f'{path}: {y_key} is {y.dtype} of shape {y.shape}; expected integer labels (N,)')
  if len(y) != num_images:
    raise VaeError(f'{path}: {y_key} holds {len(y)} labels but {x_key} {num_images} images')
  if y.min() < 0:
    raise VaeError(f'{path}: {y_key} has negative labels (min {y.min()}); expected 0, 1, ...')
  return y


# --- folder.


def load_folder(name, data_dir, image_size):
  """The images (and labels, where class subfolders give them) of the folder `data_dir` (`name` is only a label)."""
  del name
  if not data_dir:
    raise VaeError('data.source=folder needs data.dir: the folder holding train/ and test/')
  if not os.path.isdir(data_dir):
    raise VaeError(f'data.dir={data_dir}: no such folder')
  listed = {split: _split_files(os.path.join(data_dir, split)) for split in SPLITS}
  (train_classes, _, _), (test_classes, _, _) = listed.values()
  if train_classes != test_classes:
    only = lambda a, b: ', '.join(c for c in a if c not in b) or 'none'
    raise VaeError(f'{data_dir}: train/ and test/ have different class folders (only in train/: '
                   f'{only(train_classes, test_classes)}; only in test/: {only(test_classes, train_classes)})')
  paths = [path for _, split_paths, _ in listed.values() for path in split_paths]
  # Threads: Pillow decodes without the GIL. The first bad file ends the load without waiting for the rest.
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 1) + 4))
  try:
    headers = list(pool.map(_header, paths))  # Reads (and checks) each file, decodes none.
    shape = _shape(paths, headers, image_size, data_dir)
    mode = 'L' if shape[-1] == 1 else 'RGB'
    out = {'class_names': train_classes}
    for split, (_, split_paths, labels) in listed.items():
      images = np.empty((len(split_paths),) + shape, np.uint8)  # One array, filled: no list of images to stack.

      def fill(i, images=images, split_paths=split_paths):
        images[i] = _read_image(split_paths[i], mode, image_size)
      list(pool.map(fill, range(len(split_paths))))
      out[f'{split}_images'], out[f'{split}_labels'] = images, labels
  finally:
    pool.shutdown(cancel_futures=True)
  return out


def _split_files(folder):
  """(class names, image paths, labels or None) of the split folder `folder`, sorted."""
  if not os.path.isdir(folder):
    raise VaeError(f'{folder}: missing (data.source=folder reads data.dir/train and data.dir/test)')
  entries = sorted(e for e in os.listdir(folder) if not e.startswith('.'))
  classes = tuple(e for e in entries if os.path.isdir(os.path.join(folder, e)))
  loose = [os.path.join(folder, e) for e in entries if _is_image(os.path.join(folder, e))]
  if not classes:
    if not loose:
      raise VaeError(f'{folder}: no images ({", ".join(IMAGE_EXTENSIONS)})')
    return (), loose, None
  if loose:
    raise VaeError(f'{folder}: {len(loose)} images (e.g. {os.path.basename(loose[0])}) lie beside the class folders '
                   f'({", ".join(classes[:5])}{", ..." if len(classes) > 5 else ""}), so have no label; put each '
                   f'in its class folder')
  paths, labels = [], []
  for label, name in enumerate(classes):
    found = _walk(os.path.join(folder, name))
    if not found:
      raise VaeError(f'{os.path.join(folder, name)}: no images ({", ".join(IMAGE_EXTENSIONS)})')
    paths += found
    labels += [label] * len(found)
  return classes, paths, np.array(labels, np.int32)


def _is_image(path):
  return path.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(path)


def _walk(folder):
  """The image files anywhere under `folder`, in sorted order."""
  found = []
  for root, dirs, files in os.walk(folder, followlinks=True):
    dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
    found += [os.path.join(root, f) for f in sorted(files) if not f.startswith('.') and _is_image(
        os.path.join(root, f))]
  return found


def _header(path):
  """(width, height), mode of the image file `path`; its structure (a PNG's chunks and checksums) verified."""
  try:
    with Image.open(path) as image:
      size, mode = image.size, image.mode
      image.verify()  # Catches a PNG cut short after its pixels, which decoding alone would accept.
  except BAD_IMAGE as e:
    raise VaeError(f'{path}: not a readable image ({e})') from None
  if mode.startswith(('I', 'F')):
    raise VaeError(f'{path}: a {mode} (16-bit or float) image; convert it to 8-bit gray or RGB')
  return size, mode


def _shape(paths, headers, image_size, data_dir):
  """The (H, W, C) of every image: the one size of all (or image_size square), C 1 if all are gray, else 3."""
  sizes = [size for size, _ in headers]
  if image_size is None and len(set(sizes)) > 1:
    other = next(i for i, size in enumerate(sizes) if size != sizes[0])
    raise VaeError(f'{paths[0]} is {sizes[0][0]}x{sizes[0][1]} but {paths[other]} is {sizes[other][0]}x'
                   f'{sizes[other][1]} (width x height): set data.image_size to center-crop and resize every image '
                   f'to one square size')
  width, height = (image_size, image_size) if image_size else sizes[0]
  gray = sum(mode in GRAY_MODES for _, mode in headers)
  if 0 < gray < len(headers):
    logging.info('%s: %d gray images of %d converted to RGB, as the others are color', data_dir, gray, len(headers))
  return height, width, 1 if gray == len(headers) else 3


def _read_image(path, mode, image_size):
  """The image file `path` decoded as uint8 (H, W, C) in `mode`, cropped and resized to image_size if set."""
  try:
    with Image.open(path) as image:
      image.load()  # Decodes all: a truncated file raises here (ImageFile.LOAD_TRUNCATED_IMAGES is left False).
      return crop_resize(image if image.mode == mode else image.convert(mode), image_size)
  except BAD_IMAGE as e:
    raise VaeError(f'{path}: not a readable image ({e})') from None
