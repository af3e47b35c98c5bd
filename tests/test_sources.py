"""data.source = csv (Kaggle files the test writes from the IDX data) and tfds (tfds.testing.mock_data)."""
import os

import numpy as np
import pytest

from conftest import DENSE, read_json, run_cli
from vae import data, sources
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
  assert loaded.train_images.shape == (12, 784) and loaded.train_images.dtype == np.uint8
  assert loaded.test_images.shape == (12, 784) and loaded.test_labels.shape == (12,)
  assert loaded.train_labels.min() >= 0 and loaded.train_labels.max() <= 9
  import sys  # pylint: disable=g-import-not-at-top
  assert 'tensorflow' not in sys.modules  # TFDS's array-record sources need no TensorFlow.


def test_tfds_unavailable_is_one_clear_error(tmp_path):
  pytest.importorskip('tensorflow_datasets')
  with pytest.raises(VaeError, match=f'tfds mnist/train in {tmp_path}: not available'):
    data.load('mnist', str(tmp_path), source='tfds')


def test_unknown_source():
  with pytest.raises(VaeError, match=r"data.source='hdf5': unknown \(allowed: idx, csv, tfds\)"):
    data.load('mnist', source='hdf5')
