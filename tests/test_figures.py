"""Tests of vae/figures.py: exact pixel sizes, tiles where they should be, per-class selection, stitching."""
import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from vae import figures

D = 784
NAMES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')


def _rng(seed=0):
  return np.random.default_rng(seed)


def _read(path, size):
  """The RGB pixels of the PNG at `path`, after checking it is a non-blank PNG of `size` = (width, height)."""
  with open(path, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  with Image.open(path) as image:
    assert image.format == 'PNG'
    assert image.size == size
    pixels = np.asarray(image.convert('RGB'), np.float64)
  assert pixels.std() > 0
  return pixels


def _records(num_epochs, every_test=1):
  out = []
  for epoch in range(1, num_epochs + 1):
    r = {'epoch': epoch, 'train/recon': 90 - epoch, 'train/kl': 20 + epoch, 'train/neg_elbo': 110 - 0.5 * epoch}
    if epoch % every_test == 0:
      r.update({'test/recon': 92 - epoch, 'test/kl': 21 + epoch, 'test/neg_elbo': 113 - 0.5 * epoch})
    out.append(r)
  return out


def _has_color(pixels, rgb, tol=3, count=4):
  return np.sum(np.all(np.abs(pixels - np.asarray(rgb) * 255) <= tol, axis=-1)) >= count


# Sizes, worked out by hand from the layout constants: tiles 2 x 28 px, 2 px apart, 150 px of row labels (else
# 12), 12 px right, 70 px top and 12 px bottom, never narrower than 480 px.


def test_grid_size_matches_hand_arithmetic():
  assert figures.grid_size(10, 10) == (150 + 578 + 12, 70 + 578 + 12) == (740, 660)
  assert figures.grid_size(5, 7) == (150 + 404 + 12, 70 + 288 + 12)
  assert figures.grid_size(4, 10, row_labels=False) == (12 + 578 + 12, 70 + 230 + 12)
  assert figures.grid_size(3, 3, row_labels=False) == (480, 70 + 172 + 12)


@pytest.mark.parametrize('n, shape', [(100, (10, 10)), (64, (8, 8)), (7, (3, 3)), (12, (3, 4)), (1, (1, 1))])
def test_square_shape(n, shape):
  assert figures.square_shape(n) == shape


def test_every_figure_writes_a_png_of_its_documented_size(tmp_path):
  rng = _rng()
  images = rng.uniform(size=(400, D))
  labels = rng.integers(0, 10, 400)
  cases = {
      'reconstructions': (lambda p: figures.reconstructions(images, images[::-1], labels, NAMES, p), (740, 660)),
      'originals_vs_reconstructions': (lambda p: figures.originals_vs_reconstructions(images[:20], images[20:40], p),
                                       (740, 312)),
      'samples': (lambda p: figures.samples(images[:100], p), (602, 660)),
      'samples_7': (lambda p: figures.samples(images[:7], p), (480, 254)),
      'traversal': (lambda p: figures.traversal(images[:35].reshape(5, 7, D), np.linspace(-3, 3, 7), [0, 3, 5, 9, 12],
                                                p), (566, 370)),
      'interpolation': (lambda p: figures.interpolation(images[:40].reshape(4, 10, D), p), (602, 312)),
      'offsets': (lambda p: figures.offsets(images[:14], np.linspace(-0.5, 2.75, 14), p), (834, 138)),
      'manifold': (lambda p: figures.manifold(images[:400].reshape(20, 20, D), [np.linspace(-1.6, 1.6, 20)] * 2, (0, 1),
                                              p), (768, 768)),
      'latent_scatter': (lambda p: figures.latent_scatter(rng.normal(size=(400, 2)), labels, NAMES, p), (1024, 768)),
      'learning_curves': (lambda p: figures.learning_curves(_records(3), p), (1536, 512)),
  }
  for name, (draw, size) in cases.items():
    path = tmp_path / f'{name}.png'
    draw(str(path))
    assert path.stat().st_size > 0, name
    _read(path, size)
  assert figures.SIZES == {'manifold': (768, 768), 'latent_scatter': (1024, 768), 'learning_curves': (1536, 512)}


# Where the tiles land: constant images whose gray level names them, read back at the centre of each tile.


def _tile_centre(pixels, row, col, left):
  y = figures.TOP + 2 * 29 * row + 28
  x = left + 2 * 29 * col + 28
  return pixels[y, x]


def test_reconstructions_draws_the_first_images_of_each_class_in_label_order(tmp_path):
  rng = _rng(1)
  labels = rng.permutation(np.repeat(np.arange(10), 15))
  recons = np.repeat((labels / 9.0)[:, None], D, axis=1)  # Each image's gray level is its class.
  path = tmp_path / 'r.png'
  figures.reconstructions(np.zeros_like(recons), recons, labels, NAMES, str(path))
  pixels = _read(path, (740, 660))
  for row in range(10):
    for col in range(10):
      np.testing.assert_allclose(_tile_centre(pixels, row, col, 150), 255 * row / 9, atol=2)


def test_reconstructions_splits_rows_between_two_classes(tmp_path):
  labels = np.array([8] * 60 + [1] * 60)  # 8s first: rows must still go by label, 1s on top.
  labels = labels[_rng(2).permutation(120)]
  recons = np.where(labels[:, None] == 1, 0.25, 0.75) * np.ones((1, D))
  path = tmp_path / 'r.png'
  figures.reconstructions(recons, recons, labels, [str(d) for d in range(10)], str(path))
  pixels = _read(path, (740, 660))
  for row in range(10):
    np.testing.assert_allclose(_tile_centre(pixels, row, 4, 150), 255 * (0.25 if row < 5 else 0.75), atol=2)
    label_strip = pixels[figures.TOP + 58 * row:figures.TOP + 58 * row + 56, :150]
    assert (label_strip.min() < 128) == (row in (0, 5)), row  # A name at the first row of each group only.


def test_samples_places_images_row_major_and_leaves_empty_cells_white(tmp_path):
  images = np.repeat(np.linspace(0, 0.6, 7)[:, None], D, axis=1)
  path = tmp_path / 's.png'
  figures.samples(images, str(path))
  pixels = _read(path, (480, 254))
  left = (480 - 2 * (3 * 29 - 1)) // 2  # A 3 x 3 grid centred in the minimum width.
  for k in range(9):
    expected = 255 * images[k, 0] if k < 7 else 255
    np.testing.assert_allclose(_tile_centre(pixels, k // 3, k % 3, left), expected, atol=2)


def test_manifold_puts_the_first_grid_row_at_the_bottom(tmp_path):
  n = 4
  values = np.arange(n * n).reshape(n, n) / (n * n - 1)
  images = np.repeat(values[..., None], D, axis=-1)
  path = tmp_path / 'm.png'
  figures.manifold(images, [np.linspace(-1, 1, n)] * 2, (2, 5), str(path))
  pixels = _read(path, (768, 768))
  for i in range(n):
    for j in range(n):  # The image fills a 640 px square axes, 100 px from the left and 80 from the bottom.
      y, x = 768 - 80 - int((i + 0.5) * 160), 100 + int((j + 0.5) * 160)
      np.testing.assert_allclose(pixels[y, x], 255 * values[i, j], atol=2)


# Pure helpers against independent references.


def _first_of_each_class(labels, per_class_counts):
  out = []
  for c, count in per_class_counts:
    found = [i for i, label in enumerate(labels) if label == c][:count]
    out += found + [-1] * (count - len(found))
  return out


def test_per_class_ten_classes():
  labels = _rng(3).permutation(np.repeat(np.arange(10)[::-1], 12))
  indices, classes = figures.per_class(labels)
  assert classes == list(range(10))
  assert indices.tolist() == _first_of_each_class(labels.tolist(), [(c, 10) for c in range(10)])
  assert np.all(np.diff(labels[indices]) >= 0)


def test_per_class_two_classes_split_the_rows_evenly():
  labels = _rng(4).permutation([8] * 70 + [1] * 70)
  labels[:5] = 8  # Class order must come from the labels, not from which appears first.
  indices, classes = figures.per_class(labels)
  assert classes == [1] * 5 + [8] * 5
  assert indices.tolist() == _first_of_each_class(labels.tolist(), [(1, 50), (8, 50)])


def test_per_class_uneven_split_and_too_few_images():
  labels = np.array([2] * 40 + [5] * 40 + [7] * 3)
  indices, classes = figures.per_class(labels)
  assert classes == [2] * 4 + [5] * 3 + [7] * 3
  assert indices.tolist() == _first_of_each_class(labels.tolist(), [(2, 40), (5, 30), (7, 30)])
  assert np.sum(indices == -1) == 27


def test_tile_without_pad_is_numpy_block():
  images = _rng(5).uniform(size=(6, D))
  blocks = [im.reshape(28, 28) for im in images]
  np.testing.assert_array_equal(figures.tile(images, 2, 3), np.block([blocks[:3], blocks[3:]]))


def test_tile_with_pad_separates_tiles_with_nan_and_fills_empty_cells():
  images = _rng(6).uniform(size=(5, D))
  canvas = figures.tile(images, 2, 3, pad=1)
  assert canvas.shape == (2 * 28 + 1, 3 * 28 + 2)
  for k in range(6):
    r, c = divmod(k, 3)
    cell = canvas[29 * r:29 * r + 28, 29 * c:29 * c + 28]
    if k < 5:
      np.testing.assert_array_equal(cell, images[k].reshape(28, 28))
    else:
      assert np.isnan(cell).all()
  assert np.isnan(canvas[28]).all() and np.isnan(canvas[:, [28, 57]]).all()


# Line and scatter plots.


@pytest.mark.parametrize('num_epochs, every_test', [(1, 1), (5, 1), (5, 2)])
def test_learning_curves_show_every_epoch(tmp_path, num_epochs, every_test):
  path = tmp_path / 'c.png'
  figures.learning_curves(_records(num_epochs, every_test), str(path))
  pixels = _read(path, (1536, 512))
  tab10 = colormaps['tab10'].colors
  assert _has_color(pixels, tab10[0]) and _has_color(pixels, tab10[1])  # The train and test lines or markers.


def test_learning_curves_mark_a_single_epoch(tmp_path):
  # A line through one point draws nothing; its marker must. The same figure with NaN values has only the legend.
  blue = np.asarray(colormaps['tab10'].colors[0]) * 255
  counts = []
  for blank in (False, True):
    path = tmp_path / f'{blank}.png'
    figures.learning_curves([{k: np.nan if blank and k != 'epoch' else v for k, v in _records(1)[0].items()}],
                            str(path))
    counts.append(np.sum(np.all(np.abs(_read(path, (1536, 512)) - blue) <= 3, axis=-1)))
  assert counts[0] > counts[1] + 3 * 20  # At least a 20-pixel marker in each of the three panels.


@pytest.mark.parametrize('classes', [(1, 8), tuple(range(10))])
def test_latent_scatter_colours_each_class_present(tmp_path, classes):
  rng = _rng(7)
  labels = rng.choice(classes, 500)
  path = tmp_path / 'z.png'
  figures.latent_scatter(rng.normal(size=(500, 2)), labels, NAMES, str(path), xlabel='z[3]', ylabel='z[4]')
  pixels = _read(path, (1024, 768))
  tab10 = colormaps['tab10'].colors
  for c in range(10):
    if c in classes:
      assert _has_color(pixels, tab10[c]), c
    elif c != 7:  # tab10's gray also turns up in the anti-aliased edges of black text.
      assert not _has_color(pixels, tab10[c]), c


def test_a_first_epoch_outlier_leaves_the_later_epochs_readable(tmp_path):
  """mnist18_conv's first epoch: a KL of 5.35e8 nats. The axis spans the later epochs (their range, 5 % wider,
  by hand), and says where the first one went; an ordinary first epoch keeps matplotlib's own range."""
  epochs = [1, 2, 3, 4]
  train, test = [5.35e8, 30.0, 25.0, 22.0], [4.1e8, 28.0, 24.0, 21.0]
  lo, hi, span = 21.0, 30.0, 9.0
  assert figures.y_limits([(epochs, train), (epochs, test)]) == pytest.approx((lo - 0.05 * span, hi + 0.05 * span))
  # 50 lies within 3 spans (27) of 21..30: an ordinary first epoch.
  assert figures.y_limits([(epochs, [50.0, 30.0, 25.0, 22.0]), (epochs, [40.0, 28.0, 24.0, 21.0])]) is None
  assert figures.y_limits([([1], [5.35e8])]) is None  # Nothing later to show instead.
  records = [{'epoch': e, 'train/recon': 200.0 - e, 'test/recon': 201.0 - e, 'train/kl': a, 'test/kl': b,
              'train/neg_elbo': 200.0 + a, 'test/neg_elbo': 201.0 + b} for e, a, b in zip(epochs, train, test)]
  figures.learning_curves(records, str(tmp_path / 'c.png'))
  _read(tmp_path / 'c.png', (1536, 512))
