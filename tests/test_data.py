"""Tests of vae/data/: finding, fetching and loading the datasets, class subsets and preprocessing."""
import gzip
import hashlib
import os

import jax
import numpy as np
import pytest

from vae import data
from vae.data import idx
from vae.errors import VaeError

FILENAMES = tuple(idx.FILES.values())


@pytest.fixture(scope='module')
def mnist_dir():
  return data.find_dir('mnist')


def _source(folder, name):
  for candidate in (name, name + '.gz'):
    if os.path.isfile(os.path.join(folder, candidate)):
      return os.path.join(folder, candidate)
  raise FileNotFoundError(os.path.join(folder, name))


def _link_files(src, dest, names=FILENAMES):
  """Symlinks the files `names` (plain or gz, as they are in `src`) into `dest`."""
  os.makedirs(dest, exist_ok=True)
  for name in names:
    path = _source(src, name)
    os.symlink(path, os.path.join(dest, os.path.basename(path)))
  return str(dest)


def _raw(path):
  with open(path, 'rb') as f:
    content = f.read()
  return gzip.decompress(content) if content[:2] == b'\x1f\x8b' else content


def _idx_bytes(array):
  array = np.asarray(array, dtype=np.uint8)
  return bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, dtype='>u4').tobytes() + array.tobytes()


def _craft_mnist(folder, arrays, monkeypatch):
  """Writes `arrays` as IDX files into `folder`; MNIST's checksum table is swapped for their sha256s."""
  checksums = {}
  for name, array in arrays.items():
    content = _idx_bytes(array)
    (folder / name).write_bytes(content)
    checksums[name] = hashlib.sha256(content).hexdigest()
  monkeypatch.setitem(idx.SHA256, 'mnist', checksums)


@pytest.fixture(scope='module')
def mnist_test_labels_raw(mnist_dir):
  return _raw(_source(mnist_dir, 't10k-labels-idx1-ubyte'))


@pytest.fixture(scope='module')
def mnist_copy(tmp_path_factory, mnist_dir, mnist_test_labels_raw):
  """A data folder of symlinks to the real MNIST files, but with the test labels as a gzipped copy."""
  folder = tmp_path_factory.mktemp('mnist')
  _link_files(mnist_dir, folder, [n for n in FILENAMES if n != 't10k-labels-idx1-ubyte'])
  (folder / 't10k-labels-idx1-ubyte.gz').write_bytes(gzip.compress(mnist_test_labels_raw))
  return str(folder)


@pytest.fixture(scope='module')
def mnist(mnist_copy):
  return data.load('mnist', data_dir=mnist_copy)


# --- load and find_dir.


def test_load_from_data_dir(mnist, mnist_dir, mnist_test_labels_raw):
  assert mnist.train_images.shape == (60000, 28, 28, 1) and mnist.train_images.dtype == np.uint8
  assert mnist.test_images.shape == (10000, 28, 28, 1) and mnist.test_images.dtype == np.uint8
  assert mnist.image_shape == (28, 28, 1) and mnist.has_labels
  assert mnist.validation_images.shape == (0, 28, 28, 1) and mnist.validation_images.dtype == np.uint8
  assert mnist.train_labels.shape == (60000,) and mnist.train_labels.dtype == np.int32
  assert mnist.test_labels.shape == (10000,) and mnist.test_labels.dtype == np.int32
  assert mnist.class_names == tuple('0123456789')
  np.testing.assert_array_equal(mnist.train_labels[:5], [5, 0, 4, 1, 9])
  np.testing.assert_array_equal(mnist.test_labels, np.frombuffer(mnist_test_labels_raw[8:], dtype=np.uint8))
  # Row-major: row r of image i is its pixels 28 r ... 28 r + 27, as stored after the 16-byte header.
  raw = _raw(_source(mnist_dir, 't10k-images-idx3-ubyte'))
  row = np.frombuffer(raw, dtype=np.uint8, offset=16 + 7 * 784 + 14 * 28, count=28)
  np.testing.assert_array_equal(mnist.test_images[7, 14, :, 0], row)


def test_load_missing_data_dir(tmp_path):
  missing = str(tmp_path / 'nope')
  with pytest.raises(VaeError, match='no such folder') as e:
    data.load('mnist', data_dir=missing)
  assert missing in str(e.value)


def test_load_data_dir_lacking_a_file(tmp_path, mnist_dir):
  folder = _link_files(mnist_dir, tmp_path, [n for n in FILENAMES if n != 'train-labels-idx1-ubyte'])
  with pytest.raises(VaeError) as e:
    data.load('mnist', data_dir=folder)
  assert folder in str(e.value)
  problem = str(e.value).replace(folder, '')
  assert 'missing' in problem
  assert 'train-labels-idx1-ubyte' in problem
  assert 'train-images-idx3-ubyte' not in problem


def test_load_unknown_dataset():
  with pytest.raises(VaeError, match='cifar10'):
    data.load('cifar10')


@pytest.mark.parametrize('split, sizes', [('train', (3, 2, 4, 4)), ('test', (3, 3, 4, 5))])
def test_load_checks_image_and_label_counts(split, sizes, tmp_path, monkeypatch):
  # Crafted small but well-formed IDX files, with the MNIST checksum table swapped (monkeypatch.setitem) for
  # their own sha256s: idx.read still runs in full (magic, dimensions, checksum) and only load's count check
  # is left to catch the mismatch. Patching idx.read instead would skip the real reading path.
  n_train_images, n_train_labels, n_test_images, n_test_labels = sizes
  arrays = {
      'train-images-idx3-ubyte': np.zeros((n_train_images, 28, 28)),
      'train-labels-idx1-ubyte': np.zeros(n_train_labels),
      't10k-images-idx3-ubyte': np.zeros((n_test_images, 28, 28)),
      't10k-labels-idx1-ubyte': np.zeros(n_test_labels),
  }
  _craft_mnist(tmp_path, arrays, monkeypatch)
  with pytest.raises(VaeError) as e:
    data.load('mnist', data_dir=str(tmp_path))
  message = str(e.value)
  assert str(tmp_path) in message
  want = {'train': (n_train_images, n_train_labels), 'test': (n_test_images, n_test_labels)}[split]
  assert f'{split} set has {want[0]} images but {want[1]} labels' in message


def test_load_crafted_files_with_matching_counts(tmp_path, monkeypatch):
  # The same construction, consistent: load succeeds, so the test above fails for the counts alone.
  labels = np.array([3, 1, 8, 1])
  arrays = {'train-images-idx3-ubyte': np.arange(4 * 784).reshape(4, 28, 28) % 256,
            'train-labels-idx1-ubyte': labels,
            't10k-images-idx3-ubyte': np.zeros((2, 28, 28)),
            't10k-labels-idx1-ubyte': np.array([8, 0])}
  _craft_mnist(tmp_path, arrays, monkeypatch)
  loaded = data.load('mnist', data_dir=str(tmp_path), classes=(1, 8))
  np.testing.assert_array_equal(loaded.train_labels, [1, 8, 1])
  np.testing.assert_array_equal(loaded.train_images, (np.arange(4 * 784).reshape(4, 28, 28, 1) % 256)[1:])
  np.testing.assert_array_equal(loaded.test_labels, [8])


def test_image_size_of_the_mnist_files(mnist_copy):
  assert data.load('mnist', data_dir=mnist_copy, image_size=28).image_shape == (28, 28, 1)  # As they are.
  with pytest.raises(VaeError) as e:
    data.load('mnist', data_dir=mnist_copy, image_size=32)
  assert str(e.value) == ('data.image_size=32: mnist from data.source=idx is 28x28 only (leave data.image_size '
                          'unset)')
  for bad in (0, -3, 2.5, '64', True):
    with pytest.raises(VaeError, match=f'data.image_size={bad!r}: expected a positive integer'):
      data.load('mnist', data_dir=mnist_copy, image_size=bad)


def test_dataset_of_any_shape():
  images = np.arange(5 * 4 * 6 * 3, dtype=np.uint8).reshape(5, 4, 6, 3)
  labelled = data.Dataset(images, np.array([0, 1, 2, 1, 0], np.int32), images[:2], np.array([2, 0], np.int32),
                          ('a', 'b', 'c'))
  assert labelled.image_shape == (4, 6, 3) and all(type(d) is int for d in labelled.image_shape)
  assert labelled.has_labels
  assert labelled.validation_images.shape == (0, 4, 6, 3) and labelled.validation_images.dtype == np.uint8
  assert labelled.validation_labels.shape == (0,) and labelled.validation_labels.dtype == np.int32
  held = data.hold_out(labelled, 2, 'first')
  np.testing.assert_array_equal(held.validation_images, images[:2])
  np.testing.assert_array_equal(held.train_images, images[2:])
  np.testing.assert_array_equal(held.validation_labels, [0, 1])
  part = data.subset(labelled, (1,))
  np.testing.assert_array_equal(part.train_images, images[[1, 3]])
  unlabelled = data.Dataset(images, np.full(5, -1, np.int32), images[:2], np.full(2, -1, np.int32), ())
  assert not unlabelled.has_labels
  assert data.hold_out(unlabelled, 3).validation_images.shape == (3, 4, 6, 3)
  with pytest.raises(VaeError) as e:
    data.subset(unlabelled, (0,), 'photos')
  assert str(e.value) == 'data.classes=(0,): photos has no labels to select classes by (leave data.classes unset)'


def test_find_dir_uses_vae_data_dir(tmp_path, monkeypatch, mnist_dir):
  _link_files(mnist_dir, tmp_path / 'mnist')
  monkeypatch.setenv('VAE_DATA_DIR', str(tmp_path))
  assert data.cache_dir() == str(tmp_path)
  assert data.find_dir('mnist') == str(tmp_path / 'mnist')


def test_find_dir_cache_before_system_dirs(tmp_path, monkeypatch, mnist_dir):
  system = _link_files(mnist_dir, tmp_path / 'system')
  monkeypatch.setitem(data.SYSTEM_DIRS, 'mnist', (system,))
  monkeypatch.setenv('VAE_DATA_DIR', str(tmp_path / 'cache'))
  assert data.find_dir('mnist') == system  # The cache is empty: the system folder is used, nothing fetched.
  assert not os.path.exists(tmp_path / 'cache')
  _link_files(mnist_dir, tmp_path / 'cache' / 'mnist')
  assert data.find_dir('mnist') == str(tmp_path / 'cache' / 'mnist')


def test_command_line(tmp_path, mnist_dir):
  """`python -m vae.data` (the Makefile's data step) runs without warnings and ends a bad name with one line."""
  import subprocess
  import sys
  _link_files(mnist_dir, tmp_path / 'mnist')
  env = dict(os.environ, VAE_DATA_DIR=str(tmp_path))
  command = [sys.executable, '-W', 'error', '-m', 'vae.data']
  ok = subprocess.run(command + ['mnist'], env=env, capture_output=True, text=True)
  assert ok.returncode == 0, ok.stderr
  assert ok.stdout == f'mnist: {tmp_path / "mnist"}: 60000 train, 10000 test images, checksums ok\n'
  assert ok.stderr == ''
  bad = subprocess.run(command + ['cifar10'], env=env, capture_output=True, text=True)
  assert bad.returncode == 1
  assert bad.stderr.startswith('error: ') and 'cifar10' in bad.stderr and bad.stderr.count('\n') == 1


# --- subset.


def test_subset(mnist):
  part = data.subset(mnist, (1, 8))
  assert set(np.unique(part.train_labels)) == {1, 8}
  assert set(np.unique(part.test_labels)) == {1, 8}
  n_train = np.count_nonzero(mnist.train_labels == 1) + np.count_nonzero(mnist.train_labels == 8)
  n_test = np.count_nonzero(mnist.test_labels == 1) + np.count_nonzero(mnist.test_labels == 8)
  assert len(part.train_labels) == len(part.train_images) == n_train == 6742 + 5851
  assert len(part.test_labels) == len(part.test_images) == n_test == 1135 + 974
  keep = [i for i, label in enumerate(mnist.test_labels) if label in (1, 8)]
  np.testing.assert_array_equal(part.test_images, mnist.test_images[keep])  # Images stay with their labels.
  np.testing.assert_array_equal(part.test_labels, mnist.test_labels[keep])
  assert part.class_names == mnist.class_names


@pytest.mark.parametrize('classes', [(1, 10), (-1,), (42,), ()])
def test_subset_out_of_range(mnist, classes):
  with pytest.raises(VaeError, match='data.classes'):
    data.subset(mnist, classes)


# --- preprocess.

ALL_PIXELS = np.arange(256, dtype=np.uint8).reshape(1, 256)


def test_preprocess_gray():
  out = np.asarray(data.preprocess(ALL_PIXELS, 'gray'))
  assert out.dtype == np.float32
  np.testing.assert_array_equal(out, ALL_PIXELS.astype(np.float32) / np.float32(255))
  np.testing.assert_allclose(out, ALL_PIXELS / 255.0, rtol=1e-7)
  assert out.min() == 0.0 and out.max() == 1.0


def test_preprocess_binarize_static(mnist):
  for images in (ALL_PIXELS, mnist.test_images[:100]):
    out = np.asarray(data.preprocess(images, 'binarize_static'))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (images > 127).astype(np.float32))


def test_preprocess_binarize_dynamic():
  num_draws = 10000
  images = np.repeat(ALL_PIXELS, num_draws, axis=0)  # Each column: num_draws draws of one pixel value.
  out = np.asarray(data.preprocess(images, 'binarize_dynamic', jax.random.key(0)))
  assert out.dtype == np.float32 and out.shape == images.shape
  assert set(np.unique(out)) <= {0.0, 1.0}
  p = ALL_PIXELS[0] / 255.0
  # 5 standard errors of a Bernoulli mean, plus a little so p = 0 and p = 1 are held to exactly 0 and 1.
  tolerance = 5 * np.sqrt(p * (1 - p) / num_draws) + 1e-9
  assert np.all(np.abs(out.mean(axis=0) - p) <= tolerance)
  np.testing.assert_array_equal(out[:, 0], 0.0)
  np.testing.assert_array_equal(out[:, 255], 1.0)


def test_mean_input_is_the_mean_of_what_the_model_reads():
  """data.mean_input (model.output_bias='data_mean' starts at its logit): per pixel, the mean of the inputs each mode
  gives: gray pixels / 255; pixels over 127 under 'binarize_static'; under 'binarize_dynamic' the draws' mean, here
  10,000 draws of each image (within 5 standard errors of a Bernoulli mean)."""
  images = np.concatenate([ALL_PIXELS, ALL_PIXELS[:, ::-1], np.full_like(ALL_PIXELS, 200)])  # 3 images of 256 pixels.
  np.testing.assert_allclose(data.mean_input(images, 'gray'), images.astype(np.float64).mean(0) / 255, rtol=1e-12)
  np.testing.assert_array_equal(data.mean_input(images, 'binarize_static'), (images / 255.0 > 0.5).mean(0))
  num_draws = 10000
  draws = np.asarray(data.preprocess(np.repeat(images, num_draws, axis=0), 'binarize_dynamic', jax.random.key(3)))
  p = data.mean_input(images, 'binarize_dynamic')
  tolerance = 5 * np.sqrt(p * (1 - p) / (3 * num_draws)) + 1e-9
  assert np.all(np.abs(draws.mean(axis=0) - p) <= tolerance)


def test_preprocess_binarize_dynamic_keys(mnist):
  images = mnist.test_images[:64]
  a = np.asarray(data.preprocess(images, 'binarize_dynamic', jax.random.key(1)))
  b = np.asarray(data.preprocess(images, 'binarize_dynamic', jax.random.key(1)))
  c = np.asarray(data.preprocess(images, 'binarize_dynamic', jax.random.key(2)))
  np.testing.assert_array_equal(a, b)
  assert np.any(a != c)
  # Only the gray pixels (0 < x < 255) may differ between draws.
  certain = (images == 0) | (images == 255)
  np.testing.assert_array_equal(a[certain], c[certain])
  assert np.mean(a[~certain] != c[~certain]) > 0.1


def test_binarize_once():
  num_draws = 2000
  images = np.repeat(ALL_PIXELS, num_draws, axis=0)
  draws = {which: data.binarize_once(images, which) for which in data.EVAL_SETS}
  p = ALL_PIXELS[0] / 255.0
  tolerance = 5 * np.sqrt(p * (1 - p) / num_draws) + 1e-9
  for which, out in draws.items():
    assert out.dtype == np.uint8 and out.shape == images.shape and set(np.unique(out)) <= {0, 255}
    assert np.all(np.abs(out.mean(axis=0) / 255 - p) <= tolerance), which
    np.testing.assert_array_equal(out, data.binarize_once(images, which))  # Fixed: the same images every call.
  # One draw per set, none shared; the committed runs were scored on these: key(0) folded with the set's index.
  assert np.mean(draws['test'] != draws['validation']) > 0.1 and np.mean(draws['test'] != draws['train']) > 0.1
  for i, which in enumerate(('test', 'train', 'validation')):
    reference = jax.random.bernoulli(jax.random.fold_in(jax.random.key(0), i), images / 255.0)
    np.testing.assert_array_equal(draws[which], np.asarray(reference, np.uint8) * 255)
  with pytest.raises(ValueError):
    data.binarize_once(images, 'tset')
  color = np.repeat(ALL_PIXELS, 12, axis=0).reshape(-1, 8, 8, 3)  # (N, H, W, C) in, the same shape out.
  out = data.binarize_once(color, 'test')
  assert out.shape == color.shape and out.dtype == np.uint8 and set(np.unique(out)) == {0, 255}
  np.testing.assert_array_equal(out[color == 0], 0)
  np.testing.assert_array_equal(out[color == 255], 255)


def test_preprocess_unknown_mode():
  with pytest.raises(VaeError, match='binarise'):
    data.preprocess(ALL_PIXELS, 'binarise')


# --- download and fetch.


def _served(tmp_path, name, content):
  """A file:// URL to `content`, gzipped, under the canonical name in its own folder."""
  folder = tmp_path / 'served'
  folder.mkdir(exist_ok=True)
  path = folder / (name + '.gz')
  path.write_bytes(gzip.compress(content))
  return path.as_uri()


def test_download(tmp_path, mnist_test_labels_raw):
  url = _served(tmp_path, 't10k-labels-idx1-ubyte', mnist_test_labels_raw)
  dest = tmp_path / 'cache' / 't10k-labels-idx1-ubyte.gz'
  dest.parent.mkdir()
  data.download(url, str(dest), 'mnist')
  assert os.listdir(dest.parent) == [dest.name]
  assert gzip.decompress(dest.read_bytes()) == mnist_test_labels_raw


@pytest.mark.parametrize('corruption', ['changed_byte', 'html_page'])
def test_download_checksum_mismatch_leaves_nothing(corruption, tmp_path, mnist_test_labels_raw):
  if corruption == 'changed_byte':
    content = bytearray(mnist_test_labels_raw)
    content[100] = (content[100] + 1) % 10
    url = _served(tmp_path, 't10k-labels-idx1-ubyte', bytes(content))
  else:  # A mirror answering with an error page: not even gzip.
    (tmp_path / 'page.html').write_bytes(b'<html>403 Forbidden</html>')
    url = (tmp_path / 'page.html').as_uri()
  dest = tmp_path / 'cache' / 't10k-labels-idx1-ubyte.gz'
  dest.parent.mkdir()
  with pytest.raises(VaeError, match='checksum mismatch') as e:
    data.download(url, str(dest), 'mnist')
  assert url in str(e.value)
  assert os.listdir(dest.parent) == []  # Neither dest nor a '.part' file.


def test_download_corrupt_gzip_leaves_nothing(tmp_path, mnist_test_labels_raw):
  compressed = gzip.compress(mnist_test_labels_raw)
  (tmp_path / 'cut.gz').write_bytes(compressed[:len(compressed) // 2])
  url = (tmp_path / 'cut.gz').as_uri()
  dest = tmp_path / 'cache' / 't10k-labels-idx1-ubyte.gz'
  dest.parent.mkdir()
  with pytest.raises(VaeError, match='corrupt gzip') as e:
    data.download(url, str(dest), 'mnist')
  assert os.listdir(dest.parent) == []
  # The message must name what the user can act on, the URL, not the temporary file already deleted.
  assert url in str(e.value)


def _no_system_dirs(tmp_path, monkeypatch):
  monkeypatch.setitem(data.SYSTEM_DIRS, 'mnist', (str(tmp_path / 'no_system_dir'),))


def test_fetch_all_urls_fail(tmp_path, monkeypatch):
  _no_system_dirs(tmp_path, monkeypatch)
  monkeypatch.setitem(data.URLS, 'mnist', ((tmp_path / 'mirror1').as_uri() + '/',
                                           (tmp_path / 'mirror2').as_uri() + '/'))
  folder = tmp_path / 'cache'
  with pytest.raises(VaeError) as e:
    data.fetch('mnist', str(folder))
  message = str(e.value)
  assert message.startswith('mnist:')
  assert 'train-images-idx3-ubyte' in message  # The first file it lacks.
  assert 'mirror1' in message and 'mirror2' in message  # Every URL tried is reported.
  assert os.listdir(folder) == []


def test_find_dir_fetch_fails(tmp_path, monkeypatch):
  _no_system_dirs(tmp_path, monkeypatch)
  monkeypatch.setitem(data.URLS, 'mnist', ((tmp_path / 'mirror').as_uri() + '/',))
  monkeypatch.setenv('VAE_DATA_DIR', str(tmp_path / 'cache'))
  with pytest.raises(VaeError, match='mnist: train-images-idx3-ubyte not found'):
    data.find_dir('mnist')
  assert os.listdir(tmp_path / 'cache' / 'mnist') == []


def test_fetch_falls_back_to_next_url(tmp_path, monkeypatch, mnist_dir, mnist_test_labels_raw):
  # Only the test labels are missing from the folder; the first mirror is unreachable, the second has them.
  folder = _link_files(mnist_dir, tmp_path / 'cache', [n for n in FILENAMES if n != 't10k-labels-idx1-ubyte'])
  url = _served(tmp_path, 't10k-labels-idx1-ubyte', mnist_test_labels_raw)
  monkeypatch.setitem(data.URLS, 'mnist', ((tmp_path / 'missing').as_uri() + '/', url.rsplit('/', 1)[0] + '/'))
  data.fetch('mnist', folder)
  assert sorted(f for f in os.listdir(folder) if f.startswith('t10k-labels')) == ['t10k-labels-idx1-ubyte.gz']
  assert idx.read(os.path.join(folder, 't10k-labels-idx1-ubyte.gz'), 'mnist').shape == (10000,)


def test_fetch_skips_corrupt_mirror(tmp_path, monkeypatch, mnist_dir, mnist_test_labels_raw):
  # A mirror serving a corrupt file (or an error page) is a failed mirror: the next one is tried.
  folder = _link_files(mnist_dir, tmp_path / 'cache', [n for n in FILENAMES if n != 't10k-labels-idx1-ubyte'])
  bad = tmp_path / 'bad'
  bad.mkdir()
  (bad / 't10k-labels-idx1-ubyte.gz').write_bytes(b'<html>404</html>')
  good = _served(tmp_path, 't10k-labels-idx1-ubyte', mnist_test_labels_raw)
  monkeypatch.setitem(data.URLS, 'mnist', (bad.as_uri() + '/', good.rsplit('/', 1)[0] + '/'))
  data.fetch('mnist', folder)
  assert idx.read(os.path.join(folder, 't10k-labels-idx1-ubyte.gz'), 'mnist').shape == (10000,)


@pytest.fixture
def http_server(tmp_path):
  """A real HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
  import functools  # pylint: disable=g-import-not-at-top
  import http.server  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top
  root = tmp_path / 'www'
  root.mkdir()
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
  handler.log_message = lambda *args: None
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield root, f'http://127.0.0.1:{server.server_address[1]}/'
  server.shutdown()
  server.server_close()


def test_fetch_over_http(http_server, tmp_path, monkeypatch, mnist_dir, mnist_test_labels_raw):
  root, url = http_server
  (root / 't10k-labels-idx1-ubyte.gz').write_bytes(gzip.compress(mnist_test_labels_raw))
  folder = _link_files(mnist_dir, tmp_path / 'cache', [n for n in FILENAMES if n != 't10k-labels-idx1-ubyte'])
  monkeypatch.setitem(data.URLS, 'mnist', (url,))
  data.fetch('mnist', folder)
  np.testing.assert_array_equal(idx.read(os.path.join(folder, 't10k-labels-idx1-ubyte.gz'), 'mnist')[:5],
                                [7, 2, 1, 0, 4])


def test_fetch_over_http_refuses_a_checksum_mismatch(http_server, tmp_path, monkeypatch, mnist_dir,
                                                     mnist_test_labels_raw):
  root, url = http_server
  content = bytearray(mnist_test_labels_raw)
  content[-1] = (content[-1] + 1) % 10  # A valid IDX file, one label changed.
  (root / 't10k-labels-idx1-ubyte.gz').write_bytes(gzip.compress(bytes(content)))
  folder = _link_files(mnist_dir, tmp_path / 'cache', [n for n in FILENAMES if n != 't10k-labels-idx1-ubyte'])
  monkeypatch.setitem(data.URLS, 'mnist', (url,))
  monkeypatch.setitem(data.SYSTEM_DIRS, 'mnist', (str(tmp_path / 'no_system_dir'),))
  with pytest.raises(VaeError, match=r't10k-labels-idx1-ubyte\.gz: checksum mismatch, download discarded'):
    data.fetch('mnist', folder)
  assert not [f for f in os.listdir(folder) if f.startswith('t10k-labels') or f.endswith('.part')]
