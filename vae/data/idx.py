"""Reading and validating the IDX files MNIST and Fashion-MNIST ship in (plain or gzipped).

Every file is checked for its magic number, dimensions and the sha256 of its decompressed bytes, so a truncated,
corrupt or substituted file fails with a message that names it, never with a silently wrong dataset.
"""
import gzip
import hashlib
import os
import zlib

import numpy as np

from vae.errors import VaeError

# Canonical file names, and for each dataset the sha256 of each file's *decompressed* content.
FILES = {
    'train_images': 'train-images-idx3-ubyte',
    'train_labels': 'train-labels-idx1-ubyte',
    'test_images': 't10k-images-idx3-ubyte',
    'test_labels': 't10k-labels-idx1-ubyte',
}
SHA256 = {
    'mnist': {
        'train-images-idx3-ubyte': 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
        'train-labels-idx1-ubyte': '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
        't10k-images-idx3-ubyte': '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
        't10k-labels-idx1-ubyte': 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
    },
    'fashion_mnist': {
        'train-images-idx3-ubyte': 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
        'train-labels-idx1-ubyte': 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
        't10k-images-idx3-ubyte': '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
        't10k-labels-idx1-ubyte': '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
    },
}
_GZIP_MAGIC = b'\x1f\x8b'
_UBYTE = 0x08


def read_bytes(path):
  """The decompressed content of `path` (gzip is detected by its magic bytes, not by the name)."""
  try:
    with open(path, 'rb') as f:
      raw = f.read()
  except OSError as e:
    raise VaeError(f'{path}: cannot read ({e.strerror or e})') from None
  if raw[:2] != _GZIP_MAGIC:
    return raw
  try:
    return gzip.decompress(raw)
  except (OSError, EOFError, zlib.error) as e:
    raise VaeError(f'{path}: corrupt gzip data ({e})') from None


def parse(content, path, shape=None):
  """The uint8 array an IDX file holds; `shape` (None for any size) is what the dimensions must be."""
  if len(content) < 4:
    raise VaeError(f'{path}: truncated: {len(content)} bytes, too short for an IDX header')
  if content[0] != 0 or content[1] != 0 or content[2] != _UBYTE:
    raise VaeError(f'{path}: bad magic number 0x{content[:4].hex()} (expected 0x000008NN, unsigned bytes)')
  ndim = content[3]
  header = 4 + 4 * ndim
  if len(content) < header:
    raise VaeError(f'{path}: truncated: header of {ndim} dimensions needs {header} bytes, file has {len(content)}')
  dims = tuple(int(d) for d in np.frombuffer(content[4:header], dtype='>u4'))
  if shape is not None and (len(dims) != len(shape) or any(e is not None and d != e for d, e in zip(dims, shape))):
    want = 'x'.join('N' if e is None else str(e) for e in shape)
    raise VaeError(f'{path}: wrong dimensions {"x".join(map(str, dims))} (expected {want})')
  size = int(np.prod(dims))
  if len(content) - header != size:
    kind = 'truncated' if len(content) - header < size else 'trailing bytes'
    raise VaeError(f'{path}: {kind}: {len(content) - header} bytes of data, dimensions {dims} need {size}')
  return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(dims)


def read(path, dataset=None, shape=None):
  """Reads and validates one IDX file; with `dataset` its content must match the known sha256."""
  content = read_bytes(path)
  array = parse(content, path, shape)
  if dataset is not None:
    name = _canonical_name(path)
    expected = SHA256[dataset].get(name)
    actual = hashlib.sha256(content).hexdigest()
    if expected is not None and actual != expected:
      raise VaeError(f'{path}: checksum mismatch: sha256 of the decompressed content is {actual[:16]}..., '
                     f'the {dataset} file {name} has {expected[:16]}...')
  return array


def _canonical_name(path):
  name = os.path.basename(path)
  return name[:-3] if name.endswith('.gz') else name
