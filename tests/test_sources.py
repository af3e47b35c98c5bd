"""data.source = csv (Kaggle files the test writes from the IDX data), tfds (tfds.testing.mock_data), npz and folder
(real images: scikit-learn's 8 x 8 digits and its two color photographs), and each source's bad input."""
import logging
import os
import sys
import time

import numpy as np
import pytest
from PIL import Image, ImageFile
from sklearn.datasets import load_digits, load_sample_images

from conftest import DENSE, read_json, run_cli
from vae import data
from vae.data import sources
from vae.data.images import crop_resize
from vae.errors import VaeError

TRAIN, TEST = 400, 200  # The images the TINY runs use: the CSV files hold exactly these.


def write_csv(path, images, labels):
  with open(path, 'w') as f:
    f.write('label,' + ','.join(f'pixel{i}' for i in range(1, 785)) + '\n')
    for image, label in zip(images, labels):
      f.write(f'{label},' + ','.join(map(str, image.reshape(-1))) + '\n')


@pytest.fixture(scope='module')
def fashion():
  return data.load('fashion_mnist')


@pytest.fixture(scope='module')
def csv_dir(tmp_path_factory, fashion):
  folder = tmp_path_factory.mktemp('kaggle')
  write_csv(folder / 'fashion-mnist_train.csv', fashion.train_images[:TRAIN], fashion.train_labels[:TRAIN])
  write_csv(folder / 'fashion-mnist_test.csv', fashion.test_images[:TEST], fashion.test_labels[:TEST])
  return folder


def test_csv_gives_the_idx_arrays(csv_dir, fashion):
  loaded = data.load('fashion_mnist', str(csv_dir), source='csv')
  np.testing.assert_array_equal(loaded.train_images, fashion.train_images[:TRAIN])
  np.testing.assert_array_equal(loaded.train_labels, fashion.train_labels[:TRAIN])
  np.testing.assert_array_equal(loaded.test_images, fashion.test_images[:TEST])
  np.testing.assert_array_equal(loaded.test_labels, fashion.test_labels[:TEST])
  assert loaded.train_images.dtype == np.uint8 and loaded.class_names == fashion.class_names
  subset = data.load('fashion_mnist', str(csv_dir), classes=(0, 9), source='csv')
  assert set(subset.train_labels) == {0, 9}


def test_training_from_csv_matches_idx(csv_dir, trained, tmp_path):
  run_cli(*DENSE, '--config.train.num_epochs=2', '--config.data.source=csv', f'--config.data.dir={csv_dir}',
          f'--workdir={tmp_path}')
  assert read_json(tmp_path / 'results.json') == read_json(os.path.join(trained, 'results.json'))


@pytest.mark.parametrize('bad_line,why', [
    (','.join(['3'] + ['0'] * 783), 'short row'),
    (','.join(['3'] + ['0'] * 782 + ['x', '0']), 'not an integer'),
    (','.join(['3'] + ['0'] * 783 + ['256']), 'pixel out of range'),
    (','.join(['-1'] + ['0'] * 784), 'negative label'),
])
def test_malformed_row_names_file_and_line(bad_line, why, tmp_path, fashion):
  del why
  path = tmp_path / 'fashion-mnist_test.csv'
  write_csv(path, fashion.test_images[:5], fashion.test_labels[:5])
  with open(path, 'a') as f:
    f.write(bad_line + '\n')
  with pytest.raises(VaeError, match=f'{path}:7: malformed row'):
    sources.read_csv(str(path))


def test_missing_csv_files(tmp_path):
  with pytest.raises(VaeError, match='data.source=csv needs data.dir'):
    sources.load_csv('mnist', None)
  with pytest.raises(VaeError, match='mnist_train.csv: missing'):
    sources.load_csv('mnist', str(tmp_path))
  (tmp_path / 'empty').mkdir()
  (tmp_path / 'empty' / 'mnist_train.csv').write_text('')
  with pytest.raises(VaeError, match='empty'):
    sources.read_csv(str(tmp_path / 'empty' / 'mnist_train.csv'))


def test_label_outside_classes_is_refused(tmp_path, fashion):
  write_csv(tmp_path / 'fashion-mnist_train.csv', fashion.train_images[:3], [1, 2, 10])
  write_csv(tmp_path / 'fashion-mnist_test.csv', fashion.test_images[:3], [1, 2, 3])
  with pytest.raises(VaeError, match='train_labels outside 0..9'):
    data.load('fashion_mnist', str(tmp_path), source='csv')


def test_tfds_mock(tmp_path):
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=12):
    loaded = data.load('mnist', source='tfds')
  assert loaded.train_images.shape == (12, 28, 28, 1) and loaded.train_images.dtype == np.uint8
  assert loaded.test_images.shape == (12, 28, 28, 1) and loaded.test_labels.shape == (12,)
  assert loaded.train_labels.min() >= 0 and loaded.train_labels.max() <= 9
  import sys  # pylint: disable=g-import-not-at-top
  assert 'tensorflow' not in sys.modules  # TFDS's array-record sources need no TensorFlow.


def test_tfds_unavailable_is_one_clear_error(tmp_path):
  pytest.importorskip('tensorflow_datasets')
  with pytest.raises(VaeError, match=f'tfds mnist/train in {tmp_path}: not available'):
    data.load('mnist', str(tmp_path), source='tfds')


def test_unknown_source():
  with pytest.raises(VaeError, match=r"data.source='hdf5': unknown \(allowed: idx, csv, tfds, npz, folder\)"):
    data.load('mnist', source='hdf5')


# --- Real images for npz and folder: scikit-learn's digits (8 x 8, 0..16) and two photographs (427 x 640 x 3).


@pytest.fixture(scope='module')
def digits():
  """(uint8 images (1797, 8, 8) scaled to 0..255, labels 0..9)."""
  loaded = load_digits()
  return np.round(loaded.images * (255 / 16)).astype(np.uint8), loaded.target


@pytest.fixture(scope='module')
def photos():
  return load_sample_images().images  # Two uint8 (427, 640, 3).


def reference_crop_resize(image, size):
  """The central square of uint8 (H, W, C) resized to size x size bicubically, written independently of
  crop_resize."""
  height, width = image.shape[:2]
  side = min(height, width)
  top, left = (height - side) // 2, (width - side) // 2
  pil = Image.fromarray(image[top:top + side, left:left + side].squeeze(-1) if image.shape[-1] == 1 else
                        image[top:top + side, left:left + side])
  return np.asarray(pil.resize((size, size), Image.Resampling.BICUBIC)).reshape(size, size, -1)


def test_crop_resize_keeps_the_center():
  # A wide image whose central square is one green and whose sides are red and blue, and its transpose: the crop
  # keeps only the green, and a bicubic resize of a constant image is that constant, exactly.
  wide = np.zeros((20, 40, 3), np.uint8)
  wide[:, :10] = (255, 0, 0)
  wide[:, 10:30] = (0, 200, 0)
  wide[:, 30:] = (0, 0, 255)
  for image in (wide, wide.transpose(1, 0, 2)):
    out = crop_resize(image, 8)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.broadcast_to([0, 200, 0], (8, 8, 3)))
  gray = np.arange(30 * 50, dtype=np.uint8).reshape(30, 50, 1)
  np.testing.assert_array_equal(crop_resize(gray, 7), reference_crop_resize(gray, 7))
  assert crop_resize(gray, None) is gray


# --- npz.


def test_npz_keras_layout(tmp_path, digits):
  images, labels = digits
  path = tmp_path / 'digits.npz'
  np.savez(path, x_train=images[:1500], y_train=labels[:1500], x_test=images[1500:], y_test=labels[1500:])
  loaded = data.load('digits', str(path), source='npz')
  assert loaded.image_shape == (8, 8, 1) and loaded.train_images.dtype == np.uint8
  np.testing.assert_array_equal(loaded.train_images[..., 0], images[:1500])
  np.testing.assert_array_equal(loaded.test_images[..., 0], images[1500:])
  np.testing.assert_array_equal(loaded.test_labels, labels[1500:])
  assert loaded.train_labels.dtype == np.int32 and loaded.has_labels
  assert loaded.class_names == tuple('0123456789')
  assert loaded.validation_images.shape == (0, 8, 8, 1)
  part = data.load('digits', str(path), classes=(3, 5), source='npz')
  assert set(part.test_labels) == {3, 5} and len(part.test_images) == np.isin(labels[1500:], (3, 5)).sum()
  resized = data.load('digits', str(path), source='npz', image_size=4)
  assert resized.image_shape == (4, 4, 1)
  np.testing.assert_array_equal(resized.test_images[7], reference_crop_resize(images[1507, ..., None], 4))


def test_npz_color_unlabelled_and_cifar_labels(tmp_path, photos):
  patches = photos[0][:160, :320].reshape(5, 32, 10, 32, 3).transpose(0, 2, 1, 3, 4).reshape(50, 32, 32, 3)
  np.savez(tmp_path / 'color.npz', x_train=patches[:40], x_test=patches[40:])
  loaded = data.load('patches', str(tmp_path / 'color.npz'), source='npz')
  assert loaded.image_shape == (32, 32, 3) and not loaded.has_labels and loaded.class_names == ()
  np.testing.assert_array_equal(loaded.train_labels, np.full(40, -1))
  np.testing.assert_array_equal(loaded.test_images, patches[40:])
  with pytest.raises(VaeError, match=r'data.classes=\(1,\): patches has no labels'):
    data.load('patches', str(tmp_path / 'color.npz'), classes=(1,), source='npz')
  # Keras's CIFAR keeps labels as (N, 1): read as (N,), the classes up to the largest label.
  np.savez(tmp_path / 'cifar.npz', x_train=patches[:40], y_train=np.arange(40).reshape(40, 1) % 3,
           x_test=patches[40:], y_test=np.full((10, 1), 5, np.uint8))
  loaded = data.load('patches', str(tmp_path / 'cifar.npz'), source='npz')
  np.testing.assert_array_equal(loaded.train_labels, np.arange(40) % 3)
  assert loaded.class_names == tuple('012345')


X, Y = np.zeros((6, 8, 8), np.uint8), np.zeros(6, np.int64)


@pytest.mark.parametrize('arrays, problem', [
    (dict(x_train=X, y_train=Y), 'missing x_test, y_test (it has x_train, y_train)'),
    (dict(x_train=X, y_train=Y, x_test=X), 'missing y_test (it has x_train, y_train, x_test)'),
    (dict(images=X, labels=Y), 'missing x_train, x_test (it has images, labels)'),
    (dict(x_train=X.astype(np.float32) / 255, x_test=X), 'x_train is float32; expected uint8 pixels 0..255'),
    (dict(x_train=X, x_test=X.astype(np.int64)), 'x_test is int64; expected uint8'),
    (dict(x_train=X.reshape(6, 8, 8, 1, 1), x_test=X), 'x_train has shape (6, 8, 8, 1, 1); expected (N, H, W) or '
     '(N, H, W, C) with C 1 or 3'),
    (dict(x_train=X.reshape(6, 64), x_test=X), 'x_train has shape (6, 64); expected'),
    (dict(x_train=X.reshape(-1), x_test=X), 'x_train has shape (384,); expected'),
    (dict(x_train=X.reshape(6, 8, 4, 2), x_test=X), 'x_train has shape (6, 8, 4, 2); expected'),
    (dict(x_train=X[:0], x_test=X), 'x_train holds no images'),
    (dict(x_train=X, x_test=X[:0]), 'x_test holds no images'),
    (dict(x_train=X, y_train=Y[:5], x_test=X, y_test=Y), 'y_train holds 5 labels but x_train 6 images'),
    (dict(x_train=X, y_train=Y, x_test=X, y_test=np.zeros(7, np.int8)), 'y_test holds 7 labels but x_test 6 images'),
    (dict(x_train=X, y_train=Y + 0.0, x_test=X, y_test=Y), 'y_train is float64 of shape (6,); expected integer'),
    (dict(x_train=X, y_train=Y, x_test=X, y_test=Y.reshape(2, 3)), 'y_test is int64 of shape (2, 3); expected'),
    (dict(x_train=X, y_train=Y - 1, x_test=X, y_test=Y), 'y_train has negative labels'),
    (dict(x_train=X, x_test=np.zeros((6, 9, 9), np.uint8)), 'train images are 8x8x1 but test images 9x9x1'),
])
def test_npz_bad_arrays(arrays, problem, tmp_path):
  path = tmp_path / 'bad.npz'
  np.savez(path, **arrays)
  with pytest.raises(VaeError) as e:
    data.load('mine', str(path), source='npz')
  assert str(e.value).startswith(f'{path}: ') and problem in str(e.value) and '\n' not in str(e.value)


def test_npz_bad_files(tmp_path):
  with pytest.raises(VaeError, match='data.source=npz needs data.dir: the .npz file'):
    data.load('mine', None, source='npz')
  with pytest.raises(VaeError, match=f'data.dir={tmp_path / "nope.npz"}: no such file'):
    data.load('mine', str(tmp_path / 'nope.npz'), source='npz')
  (tmp_path / 'text.npz').write_text('not an archive\n')
  with pytest.raises(VaeError, match=f'{tmp_path / "text.npz"}: not a readable .npz file'):
    data.load('mine', str(tmp_path / 'text.npz'), source='npz')
  np.savez(tmp_path / 'cut.npz', x_train=X, x_test=X)
  content = (tmp_path / 'cut.npz').read_bytes()
  (tmp_path / 'cut.npz').write_bytes(content[:len(content) // 2])
  with pytest.raises(VaeError, match=f'{tmp_path / "cut.npz"}: not a readable .npz file'):
    data.load('mine', str(tmp_path / 'cut.npz'), source='npz')
  np.save(tmp_path / 'one.npy', X)
  with pytest.raises(VaeError, match=f'{tmp_path / "one.npy"}: a single .npy array'):
    data.load('mine', str(tmp_path / 'one.npy'), source='npz')


# --- folder.


def save(path, array, **kwargs):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(array).save(path, **kwargs)
  return path


def test_folder_class_subfolders(tmp_path, digits):
  # Class folders named so that sorted order is not the digits' order: labels follow the sorted names.
  images, labels = digits
  names = {0: 'zero', 1: 'one', 2: 'two'}
  expected = {'train': [], 'test': []}
  for i in range(30):
    if labels[i] in names:
      split = 'train' if i < 20 else 'test'
      save(tmp_path / split / names[labels[i]] / f'{i:03d}.png', images[i])
      expected[split].append((sorted(names.values()).index(names[labels[i]]), f'{i:03d}', i))
  (tmp_path / 'train' / 'one' / 'notes.txt').write_text('not an image')
  loaded = data.load('digits', str(tmp_path), source='folder')
  assert loaded.class_names == ('one', 'two', 'zero') and loaded.image_shape == (8, 8, 1)
  for split in ('train', 'test'):
    order = sorted(expected[split])  # By class folder, then by file name.
    np.testing.assert_array_equal(getattr(loaded, f'{split}_labels'), [label for label, _, _ in order])
    np.testing.assert_array_equal(getattr(loaded, f'{split}_images')[..., 0], images[[i for _, _, i in order]])
  part = data.load('digits', str(tmp_path), classes=(2,), source='folder')
  assert len(part.train_images) == sum(label == 2 for label, _, _ in expected['train'])


def test_folder_unlabelled_mixed_modes(tmp_path, photos, caplog):
  patches = [photos[0][40 * k:40 * k + 24, 300:324] for k in range(6)]
  save(tmp_path / 'train' / 'a.png', patches[0])
  save(tmp_path / 'train' / 'b.PNG', np.dstack([patches[1], np.full((24, 24), 128, np.uint8)]))  # RGBA
  save(tmp_path / 'train' / 'c.png', patches[2][..., 0])  # Gray, among color images.
  Image.fromarray(patches[3]).convert('P').save(tmp_path / 'train' / 'd.png')  # Palette.
  save(tmp_path / 'test' / 'e.JPG', patches[4], quality=95)
  save(tmp_path / 'test' / 'f.jpeg', patches[5][..., 1])  # Gray JPEG.
  with caplog.at_level(logging.INFO):
    loaded = data.load('photo', str(tmp_path), source='folder')
  assert loaded.image_shape == (24, 24, 3) and not loaded.has_labels
  np.testing.assert_array_equal(loaded.train_labels, [-1] * 4)
  np.testing.assert_array_equal(loaded.train_images[0], patches[0])
  np.testing.assert_array_equal(loaded.train_images[1], patches[1])  # Alpha dropped.
  np.testing.assert_array_equal(loaded.train_images[2], np.repeat(patches[2][..., :1], 3, axis=-1))
  reference = np.asarray(Image.open(tmp_path / 'train' / 'd.png').convert('RGB'))
  np.testing.assert_array_equal(loaded.train_images[3], reference)
  assert np.abs(loaded.test_images[0].astype(int) - patches[4]).mean() < 4  # JPEG, quality 95.
  assert '2 gray images of 6 converted to RGB' in caplog.text


def test_folder_image_size(tmp_path, photos, digits):
  save(tmp_path / 'train' / 'china.png', photos[0])
  save(tmp_path / 'train' / 'digit.png', np.dstack([digits[0][0]] * 3))
  save(tmp_path / 'test' / 'flower.png', photos[1])
  with pytest.raises(VaeError) as e:
    data.load('photos', str(tmp_path), source='folder')
  assert str(e.value) == (f'{tmp_path / "train" / "china.png"} is 640x427 but {tmp_path / "train" / "digit.png"} '
                          f'is 8x8 (width x height): set data.image_size to center-crop and resize every image to '
                          f'one square size')
  loaded = data.load('photos', str(tmp_path), source='folder', image_size=32)
  assert loaded.image_shape == (32, 32, 3)
  np.testing.assert_array_equal(loaded.train_images[0], reference_crop_resize(photos[0], 32))
  np.testing.assert_array_equal(loaded.test_images[0], reference_crop_resize(photos[1], 32))


def _good_folder(root, image):
  for split in ('train', 'test'):
    save(root / split / 'cat' / 'a.png', image)
    save(root / split / 'dog' / 'b.png', image)
  return root


def _truncated(path, cut):
  content = path.read_bytes()
  path.write_bytes(content[:cut(len(content))])


def _bad_folders(root, photo):
  """Each bad folder's name -> (the folder, the file or folder the message must name first, the problem)."""
  cases = {}
  folder = root / 'no_images'
  (folder / 'train').mkdir(parents=True)
  save(folder / 'test' / 'a.png', photo)
  cases['no_images'] = (folder, folder / 'train', 'no images (.png, .jpg, .jpeg)')
  folder = root / 'no_test'
  save(folder / 'train' / 'a.png', photo)
  cases['no_test'] = (folder, folder / 'test', 'missing (data.source=folder reads data.dir/train and data.dir/test)')
  for name, suffix, spoil in (
      ('garbage', '.png', lambda p: p.write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 100)),
      ('text', '.png', lambda p: p.write_text('hello')),
      ('cut_png', '.png', lambda p: _truncated(save(p, photo), lambda n: n * 9 // 10)),
      ('cut_png_end', '.png', lambda p: _truncated(save(p, photo), lambda n: n - 13)),  # Pixels whole, file not.
      ('cut_jpeg', '.jpg', lambda p: _truncated(save(p, photo), lambda n: n * 9 // 10))):
    folder = _good_folder(root / name, photo)
    spoil(folder / 'test' / 'dog' / f'c{suffix}')
    cases[name] = (folder, folder / 'test' / 'dog' / f'c{suffix}', 'not a readable image')
  folder = _good_folder(root / 'sixteen_bit', photo)
  Image.fromarray(np.full((16, 16), 1000, np.uint16)).save(folder / 'train' / 'cat' / 'c.png')
  cases['sixteen_bit'] = (folder, folder / 'train' / 'cat' / 'c.png', 'a I;16 (16-bit or float) image; convert')
  folder = _good_folder(root / 'classes_differ', photo)
  save(folder / 'test' / 'fox' / 'c.png', photo)
  cases['classes_differ'] = (folder, folder, 'train/ and test/ have different class folders (only in train/: none; '
                             'only in test/: fox)')
  folder = _good_folder(root / 'unlabelled_test', photo)
  for label in ('cat', 'dog'):
    (folder / 'test' / label / ('a.png' if label == 'cat' else 'b.png')).rename(folder / 'test' / f'{label}.png')
    (folder / 'test' / label).rmdir()
  cases['unlabelled_test'] = (folder, folder, 'only in train/: cat, dog; only in test/: none')
  folder = _good_folder(root / 'loose', photo)
  save(folder / 'train' / 'stray.png', photo)
  cases['loose'] = (folder, folder / 'train', '1 images (e.g. stray.png) lie beside the class folders (cat, dog)')
  folder = _good_folder(root / 'empty_class', photo)
  (folder / 'test' / 'dog' / 'b.png').unlink()
  cases['empty_class'] = (folder, folder / 'test' / 'dog', 'no images')
  return cases


BAD_FOLDERS = ('no_images', 'no_test', 'garbage', 'text', 'cut_png', 'cut_png_end', 'cut_jpeg', 'sixteen_bit',
               'classes_differ', 'unlabelled_test', 'loose', 'empty_class')


@pytest.fixture(scope='module')
def bad_folders(tmp_path_factory, photos):
  return _bad_folders(tmp_path_factory.mktemp('bad_folders'), photos[0][100:164, 200:264])


@pytest.mark.parametrize('name', BAD_FOLDERS)
def test_folder_bad_input(name, bad_folders):
  assert not ImageFile.LOAD_TRUNCATED_IMAGES  # Else Pillow pads a truncated file with gray instead of raising.
  folder, named, problem = bad_folders[name]
  with pytest.raises(VaeError) as e:
    data.load('mine', str(folder), source='folder')
  assert str(e.value).startswith(f'{named}: ') and problem in str(e.value) and '\n' not in str(e.value)


def test_folder_bad_dir(tmp_path):
  with pytest.raises(VaeError, match='data.source=folder needs data.dir'):
    data.load('mine', None, source='folder')
  with pytest.raises(VaeError, match=f'data.dir={tmp_path / "nope"}: no such folder'):
    data.load('mine', str(tmp_path / 'nope'), source='folder')


def test_folder_of_a_few_thousand_files_is_quick(tmp_path, digits):
  images, _ = digits
  for i, image in enumerate(images):
    save(tmp_path / ('train' if i < 1500 else 'test') / f'{i:04d}.png', image)
  start = time.perf_counter()
  loaded = data.load('digits', str(tmp_path), source='folder')
  seconds = time.perf_counter() - start
  np.testing.assert_array_equal(np.concatenate([loaded.train_images, loaded.test_images])[..., 0], images)
  # 0.3 to 0.7 s on the 2-core development machine; the bound leaves room for a loaded one, and fails a per-file
  # cost that grows with the count.
  assert seconds < 10, seconds


# --- tfds: any image dataset, under tfds.testing.mock_data (each registered dataset's true features, random values).


@pytest.fixture
def tfds():
  return pytest.importorskip('tensorflow_datasets')


def test_tfds_cifar10(tfds):
  with tfds.testing.mock_data(num_examples=6):
    loaded = data.load('cifar10', source='tfds')
    direct = tfds.data_source('cifar10', split='test')
    expected = np.stack([direct[i]['image'] for i in range(6)])
    labels = [direct[i]['label'] for i in range(6)]
  assert loaded.image_shape == (32, 32, 3) and loaded.has_labels and len(loaded.class_names) == 10
  np.testing.assert_array_equal(loaded.test_images, expected)
  np.testing.assert_array_equal(loaded.test_labels, labels)
  assert 'tensorflow' not in sys.modules


def test_tfds_celeb_a_unlabelled_and_resized(tfds):
  with tfds.testing.mock_data(num_examples=3):
    full = data.load('celeb_a', source='tfds')
    small = data.load('celeb_a', source='tfds', image_size=64)
    with pytest.raises(VaeError, match=r'data.classes=\(1,\): celeb_a has no labels'):
      data.load('celeb_a', source='tfds', classes=(1,))
  assert full.image_shape == (218, 178, 3) and small.image_shape == (64, 64, 3)
  assert small.class_names == () and not small.has_labels
  np.testing.assert_array_equal(small.train_labels, [-1, -1, -1])
  np.testing.assert_array_equal(small.test_images[2], reference_crop_resize(full.test_images[2], 64))


def test_tfds_variable_sizes_and_preferred_features(tfds):
  with tfds.testing.mock_data(num_examples=3):
    with pytest.raises(VaeError, match=r'tfds imagenette: its images vary in size \(image is \(None, None, 3\)\); '
                                       'set data.image_size'):
      data.load('imagenette', source='tfds')
    assert data.load('imagenette', source='tfds', image_size=16).image_shape == (16, 16, 3)
    assert len(data.load('omniglot', source='tfds').class_names) == 1623  # 'label', not the 50 'alphabet's.
  features = {'alphabet': tfds.features.ClassLabel(num_classes=2), 'thumbnail': tfds.features.Image(),
              'label': tfds.features.ClassLabel(num_classes=3), 'image': tfds.features.Image()}
  assert sources.features_of('x', features) == ('image', 'label')
  assert sources.features_of('x', {'picture': tfds.features.Image()}) == ('picture', None)


def test_tfds_binary_pixels_become_0_and_255(tfds):
  # binarized_mnist stores 0 / 1 (mock_data's default draws 0..254, so the records are given here).
  def records(self, split, **kwargs):
    del self, kwargs
    rng = np.random.default_rng(0 if split == 'train' else 1)
    return [{'image': rng.integers(0, 2, (28, 28, 1)).astype(np.uint8)} for _ in range(4)]
  with tfds.testing.mock_data(as_data_source_fn=records):
    loaded = data.load('binarized_mnist', source='tfds')
  reference = records(None, 'test')
  np.testing.assert_array_equal(loaded.test_images, np.stack([r['image'] for r in reference]) * 255)
  assert not loaded.has_labels and loaded.image_shape == (28, 28, 1)


def test_tfds_without_an_image_feature(tfds):
  with tfds.testing.mock_data(num_examples=2):
    with pytest.raises(VaeError) as e:
      data.load('imdb_reviews', source='tfds')
  assert str(e.value) == 'tfds imdb_reviews: no image feature (its features: text, label)'
  with pytest.raises(VaeError, match=r'tfds x: no image feature \(its features: text\)'):
    sources.features_of('x', {'text': tfds.features.Text()})


def test_tfds_without_a_test_split(tfds, tmp_path):
  # mock_data reads split names from metadata files when given them: imagenette's, with no test split.
  builder = tfds.builder('imagenette', data_dir=str(tmp_path), file_format='array_record')
  builder.info.set_splits(tfds.core.SplitDict([
      tfds.core.SplitInfo(name=s, shard_lengths=[3], num_bytes=0, filename_template=None)
      for s in ('train', 'validation')]))
  os.makedirs(builder.data_dir)
  builder.info.write_to_directory(builder.data_dir)
  with tfds.testing.mock_data(num_examples=3, data_dir=str(tmp_path)):
    with pytest.raises(VaeError) as e:
      data.load('imagenette', source='tfds', image_size=16)
  assert str(e.value) == 'tfds imagenette: no test split (it has train, validation)'


def test_tfds_unknown_dataset(tfds):
  with tfds.testing.mock_data(num_examples=2):
    with pytest.raises(VaeError) as e:
      data.load('no_such_dataset', source='tfds')
  assert str(e.value).startswith('tfds no_such_dataset: not available (')
  assert 'abstract_reasoning' not in str(e.value)  # Not TFDS's list of every dataset.
