"""Tests of vae/data/idx.py: the real MNIST / Fashion-MNIST files, and crafted corrupt ones that must fail by name."""
import gzip
import os

import numpy as np
import pytest

from vae import data
from vae.data import idx
from vae.errors import VaeError

FASHION_DIR = '/usr/share/datasets/fashion-mnist'


@pytest.fixture(scope='module')
def mnist_dir():
  return data.find_dir('mnist')


def _path(folder, name):
  """The plain or gzipped file `name` in `folder`."""
  for candidate in (name, name + '.gz'):
    if os.path.isfile(os.path.join(folder, candidate)):
      return os.path.join(folder, candidate)
  pytest.skip(f'{name} not found in {folder}')


def _idx_bytes(array):
  """An IDX file of uint8 `array`, written independently of idx.parse: magic 0x000008NN, big-endian dims."""
  array = np.asarray(array, dtype=np.uint8)
  header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, dtype='>u4').tobytes()
  return header + array.tobytes()


def _write(path, content):
  path.write_bytes(content)
  return str(path)


def _raises(path, *words, **kwargs):
  """Reads `path`, which must fail with a VaeError naming the path and each of `words`."""
  with pytest.raises(VaeError) as e:
    idx.read(path, **kwargs)
  message = str(e.value)
  assert str(path) in message
  problem = message.replace(str(path), '')  # The tmp_path holds the test's name, e.g. 'truncated'.
  for word in words:
    assert word in problem
  return message


# Each train image file is read once per module (they are the slow ones).
@pytest.fixture(scope='module')
def mnist_train_images(mnist_dir):
  return idx.read(_path(mnist_dir, 'train-images-idx3-ubyte'), 'mnist', (None, 28, 28))


@pytest.fixture(scope='module')
def fashion_train_images():
  return idx.read(_path(FASHION_DIR, 'train-images-idx3-ubyte'), 'fashion_mnist', (None, 28, 28))


@pytest.fixture(scope='module')
def mnist_test_labels_raw(mnist_dir):
  with open(_path(mnist_dir, 't10k-labels-idx1-ubyte'), 'rb') as f:
    content = f.read()
  if content[:2] == b'\x1f\x8b':
    content = gzip.decompress(content)
  return content


# --- The real files.


@pytest.mark.parametrize('images, mean, std', [('mnist_train_images', 0.1307, 0.3081),
                                               ('fashion_train_images', 0.2860, 0.3530)])
def test_train_images_shape_and_pixel_statistics(images, mean, std, request):
  x = request.getfixturevalue(images)
  assert x.shape == (60000, 28, 28)
  assert x.dtype == np.uint8
  x = x.astype(np.float64) / 255.0
  assert round(x.mean(), 4) == mean
  assert round(x.std(), 4) == std


@pytest.mark.parametrize('dataset, folder, first', [('mnist', None, (5, 0, 4, 1, 9)),
                                                   ('fashion_mnist', FASHION_DIR, (9, 0, 0, 3, 0))])
def test_train_labels(dataset, folder, first, mnist_dir):
  labels = idx.read(_path(folder or mnist_dir, 'train-labels-idx1-ubyte'), dataset, (None,))
  assert labels.shape == (60000,)
  assert labels.dtype == np.uint8
  np.testing.assert_array_equal(labels[:5], first)
  assert labels.max() == 9


@pytest.mark.parametrize('dataset, folder, first', [('mnist', None, (7, 2, 1, 0, 4)),
                                                   ('fashion_mnist', FASHION_DIR, (9, 2, 1, 1, 6))])
def test_test_files(dataset, folder, first, mnist_dir):
  folder = folder or mnist_dir
  images = idx.read(_path(folder, 't10k-images-idx3-ubyte'), dataset, (None, 28, 28))
  labels = idx.read(_path(folder, 't10k-labels-idx1-ubyte'), dataset, (None,))
  assert images.shape == (10000, 28, 28)
  assert labels.shape == (10000,)
  np.testing.assert_array_equal(labels[:5], first)


def test_label_counts():
  # Fashion-MNIST is balanced by construction: 6000 / 1000 images of each class.
  train = idx.read(_path(FASHION_DIR, 'train-labels-idx1-ubyte'), 'fashion_mnist')
  test = idx.read(_path(FASHION_DIR, 't10k-labels-idx1-ubyte'), 'fashion_mnist')
  np.testing.assert_array_equal(np.bincount(train), [6000] * 10)
  np.testing.assert_array_equal(np.bincount(test), [1000] * 10)


def test_plain_and_gzipped_give_identical_arrays(tmp_path, mnist_dir, mnist_test_labels_raw):
  plain = _path(mnist_dir, 't10k-labels-idx1-ubyte')
  gz = _write(tmp_path / 't10k-labels-idx1-ubyte.gz', gzip.compress(mnist_test_labels_raw))
  a, b = idx.read(plain, 'mnist'), idx.read(gz, 'mnist')  # The checksum is of the decompressed content.
  np.testing.assert_array_equal(a, b)
  assert a.dtype == b.dtype == np.uint8

  # The other way round for Fashion-MNIST, which ships gzipped: its test images, gunzipped.
  gz = _path(FASHION_DIR, 't10k-images-idx3-ubyte')
  with open(gz, 'rb') as f:
    raw = gzip.decompress(f.read())
  plain = _write(tmp_path / 't10k-images-idx3-ubyte', raw)
  np.testing.assert_array_equal(idx.read(plain, 'fashion_mnist'), idx.read(gz, 'fashion_mnist'))


def test_gzip_detected_by_content_not_name(tmp_path, mnist_test_labels_raw):
  path = _write(tmp_path / 'labels', gzip.compress(mnist_test_labels_raw))
  expected = np.frombuffer(mnist_test_labels_raw[8:], dtype=np.uint8)
  np.testing.assert_array_equal(idx.read(path, shape=(None,)), expected)


def test_any_shape_parses(tmp_path):
  array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
  np.testing.assert_array_equal(idx.read(_write(tmp_path / 'x', _idx_bytes(array))), array)
  np.testing.assert_array_equal(idx.read(_write(tmp_path / 'y', _idx_bytes(array)), shape=(2, None, 4)), array)


# --- Corrupt files: each names the file and the problem.


def test_bad_magic_number(tmp_path, mnist_test_labels_raw):
  _raises(_write(tmp_path / 'a', b'\x00\x00\x0d\x01' + mnist_test_labels_raw[4:]), 'bad magic number')  # float
  _raises(_write(tmp_path / 'b', b'PK\x03\x04' + mnist_test_labels_raw[4:]), 'bad magic number')  # a zip file
  _raises(_write(tmp_path / 'c', b'<html>not found</html>'), 'bad magic number')


def test_truncated_data(tmp_path, mnist_test_labels_raw):
  path = _write(tmp_path / 't10k-labels-idx1-ubyte', mnist_test_labels_raw[:-100])
  _raises(path, 'truncated', '9900', dataset='mnist', shape=(None,))
  # Also when the cut file is gzipped, and for images cut mid-row.
  path = _write(tmp_path / 't10k-labels-idx1-ubyte.gz', gzip.compress(mnist_test_labels_raw[:5000]))
  _raises(path, 'truncated', dataset='mnist')
  images = _idx_bytes(np.zeros((3, 28, 28)))
  _raises(_write(tmp_path / 'images', images[:-28 * 28 - 5]), 'truncated', shape=(None, 28, 28))


def test_truncated_header(tmp_path, mnist_test_labels_raw):
  _raises(_write(tmp_path / 'empty', b''), 'truncated')
  _raises(_write(tmp_path / 'three', b'\x00\x00\x08'), 'truncated')
  _raises(_write(tmp_path / 'labels', mnist_test_labels_raw[:6]), 'truncated')  # Cut in its one dimension.
  _raises(_write(tmp_path / 'images', _idx_bytes(np.zeros((2, 28, 28)))[:12]), 'truncated')  # 3 dims need 16.


def test_trailing_bytes(tmp_path, mnist_test_labels_raw):
  _raises(_write(tmp_path / 'labels', mnist_test_labels_raw + b'\x00'), 'trailing bytes', shape=(None,))
  path = _write(tmp_path / 'labels.gz', gzip.compress(mnist_test_labels_raw + b'junk'))
  _raises(path, 'trailing bytes', dataset='mnist')


def test_wrong_dimensions(tmp_path, mnist_dir):
  images = _path(mnist_dir, 't10k-images-idx3-ubyte')  # A 3-D file where labels are expected.
  _raises(images, 'wrong dimensions', '10000x28x28', shape=(None,))
  _raises(_write(tmp_path / 'narrow', _idx_bytes(np.zeros((5, 27, 28)))), 'wrong dimensions', '5x27x28',
          shape=(None, 28, 28))
  _raises(_write(tmp_path / 'flat', _idx_bytes(np.zeros((5, 784)))), 'wrong dimensions', shape=(None, 28, 28))
  _raises(_write(tmp_path / 'count', _idx_bytes(np.zeros(5))), 'wrong dimensions', shape=(6,))


def test_checksum_mismatch(tmp_path, mnist_test_labels_raw):
  changed = bytearray(mnist_test_labels_raw)
  changed[100] = (changed[100] + 1) % 10  # Still a valid IDX file of labels 0..9.
  path = _write(tmp_path / 't10k-labels-idx1-ubyte', bytes(changed))
  assert idx.read(path, shape=(None,)).shape == (10000,)  # Without a dataset it is a fine file...
  _raises(path, 'checksum mismatch', 'mnist', dataset='mnist', shape=(None,))  # ...but not MNIST's.
  path = _write(tmp_path / 't10k-labels-idx1-ubyte.gz', gzip.compress(bytes(changed)))
  _raises(path, 'checksum mismatch', dataset='mnist')


def test_substituted_file_fails_checksum(mnist_dir):
  # MNIST's test labels are a valid IDX file, but not Fashion-MNIST's.
  _raises(_path(mnist_dir, 't10k-labels-idx1-ubyte'), 'checksum mismatch', dataset='fashion_mnist')


def test_corrupt_gzip(tmp_path, mnist_test_labels_raw):
  _raises(_write(tmp_path / 'garbage.gz', b'\x1f\x8b' + os.urandom(200)), 'corrupt gzip')
  compressed = gzip.compress(mnist_test_labels_raw)
  _raises(_write(tmp_path / 'cut.gz', compressed[:len(compressed) // 2]), 'corrupt gzip')
  broken = bytearray(compressed)
  broken[-8] ^= 0xff  # The CRC32 in the trailer.
  _raises(_write(tmp_path / 'crc.gz', bytes(broken)), 'corrupt gzip')


def test_missing_or_unreadable_file(tmp_path):
  _raises(str(tmp_path / 'nonexistent'), 'cannot read')
  os.mkdir(tmp_path / 'folder')
  _raises(str(tmp_path / 'folder'), 'cannot read')
