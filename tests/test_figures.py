"""Tests of vae/figures.py: exact pixel sizes, tiles where they should be (gray and RGB, any image size), per-class
selection, stitching."""
import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from vae import figures

SHAPE = (28, 28, 1)  # One MNIST-like gray image, (H, W, C).
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
  assert figures.grid_size(10, 10, True, (28, 28)) == (150 + 578 + 12, 70 + 578 + 12) == (740, 660)
  assert figures.grid_size(5, 7, True, (28, 28)) == (150 + 404 + 12, 70 + 288 + 12)
  assert figures.grid_size(4, 10, row_labels=False, image_shape=(28, 28)) == (12 + 578 + 12, 70 + 230 + 12)
  assert figures.grid_size(3, 3, row_labels=False, image_shape=(28, 28)) == (480, 70 + 172 + 12)
  # Other sizes: 2 screen px per pixel at 32 (10 x 33 - 1 = 329 image px), 8 at 8 x 8, 1 at 64 x 64; H and W apart.
  assert figures.grid_size(10, 10, True, image_shape=(32, 32, 3)) == (150 + 658 + 12, 70 + 658 + 12)
  assert figures.grid_size(8, 8, row_labels=False, image_shape=(8, 8)) == (12 + 568 + 12, 70 + 568 + 12)
  assert figures.grid_size(10, 10, row_labels=False, image_shape=(64, 64, 3)) == (12 + 649 + 12, 70 + 649 + 12)
  assert figures.grid_size(2, 30, True, image_shape=(40, 20, 1)) == (150 + 629 + 12, 70 + 81 + 12)  # Scale 64 // 40.


@pytest.mark.parametrize('shape, scale', [((28, 28), 2), ((32, 32, 3), 2), ((8, 8, 1), 8), ((64, 64, 3), 1),
                                          ((256, 256, 3), 1), ((20, 40, 1), 1)])
def test_scale_keeps_tiles_about_64_screen_pixels(shape, scale):
  assert figures.scale(shape) == scale


@pytest.mark.parametrize('n, shape', [(100, (10, 10)), (64, (8, 8)), (7, (3, 3)), (12, (3, 4)), (1, (1, 1))])
def test_square_shape(n, shape):
  assert figures.square_shape(n) == shape


# Sizes by hand for 28 x 28 gray and 32 x 32 RGB images (2 x 33 px a tile, 2 px apart); fixed-size figures the same.
SIZES_28 = {'reconstructions': (740, 660), 'originals_vs_reconstructions': (740, 312), 'samples': (602, 660),
            'samples_7': (480, 254), 'traversal': (566, 370), 'interpolation': (602, 312), 'offsets': (834, 138)}
SIZES_32 = {'reconstructions': (820, 740), 'originals_vs_reconstructions': (820, 344), 'samples': (682, 740),
            'samples_7': (480, 278), 'traversal': (622, 410), 'interpolation': (682, 344), 'offsets': (946, 146)}


@pytest.mark.parametrize('shape, sizes', [(SHAPE, SIZES_28), ((32, 32, 3), SIZES_32)])
def test_every_figure_writes_a_png_of_its_documented_size(tmp_path, shape, sizes):
  rng = _rng()
  images = rng.uniform(size=(400, *shape))
  labels = rng.integers(0, 10, 400)
  cases = {
      'reconstructions': lambda p: figures.reconstructions(images, images[::-1], labels, NAMES, p),
      'originals_vs_reconstructions': lambda p: figures.originals_vs_reconstructions(images[:20], images[20:40], p),
      'samples': lambda p: figures.samples(images[:100], p),
      'samples_7': lambda p: figures.samples(images[:7], p),
      'traversal': lambda p: figures.traversal(images[:35].reshape(5, 7, *shape), np.linspace(-3, 3, 7),
                                               [0, 3, 5, 9, 12], p),
      'interpolation': lambda p: figures.interpolation(images[:40].reshape(4, 10, *shape), p),
      'offsets': lambda p: figures.offsets(images[:14], np.linspace(-0.5, 2.75, 14), p),
      'manifold': lambda p: figures.manifold(images[:400].reshape(20, 20, *shape), [np.linspace(-1.6, 1.6, 20)] * 2,
                                             (0, 1), p),
      'latent_scatter': lambda p: figures.latent_scatter(rng.normal(size=(400, 2)), labels, NAMES, p),
      'learning_curves': lambda p: figures.learning_curves(_records(3), p),
  }
  sizes = {**sizes, 'manifold': (768, 768), 'latent_scatter': (1024, 768), 'learning_curves': (1536, 512)}
  for name, draw in cases.items():
    size = sizes[name]
    path = tmp_path / f'{name}.png'
    draw(str(path))
    assert path.stat().st_size > 0, name
    _read(path, size)
  assert figures.SIZES == {'manifold': (768, 768), 'latent_scatter': (1024, 768), 'learning_curves': (1536, 512)}


# Where the tiles land: constant images whose gray level names them, read back at the centre of each tile.


def _tile_centre(pixels, row, col, left, side=28, scale=2):
  y = figures.TOP + scale * (side + 1) * row + scale * side // 2
  x = left + scale * (side + 1) * col + scale * side // 2
  return pixels[y, x]


def _constant(levels, shape=SHAPE):
  """One image of `shape` per gray level (or RGB colour, levels (N, 3)), every pixel that level."""
  levels = np.asarray(levels, np.float64).reshape(len(levels), 1, 1, -1)
  return np.broadcast_to(levels, (len(levels), *shape[:2], levels.shape[-1])).copy()


def test_reconstructions_draws_the_first_images_of_each_class_in_label_order(tmp_path):
  rng = _rng(1)
  labels = rng.permutation(np.repeat(np.arange(10), 15))
  recons = _constant(labels / 9.0)  # Each image's gray level is its class.
  path = tmp_path / 'r.png'
  figures.reconstructions(np.zeros_like(recons), recons, labels, NAMES, str(path))
  pixels = _read(path, (740, 660))
  for row in range(10):
    for col in range(10):
      np.testing.assert_allclose(_tile_centre(pixels, row, col, 150), 255 * row / 9, atol=2)


def test_reconstructions_splits_rows_between_two_classes(tmp_path):
  labels = np.array([8] * 60 + [1] * 60)  # 8s first: rows must still go by label, 1s on top.
  labels = labels[_rng(2).permutation(120)]
  recons = _constant(np.where(labels == 1, 0.25, 0.75))
  path = tmp_path / 'r.png'
  figures.reconstructions(recons, recons, labels, [str(d) for d in range(10)], str(path))
  pixels = _read(path, (740, 660))
  for row in range(10):
    np.testing.assert_allclose(_tile_centre(pixels, row, 4, 150), 255 * (0.25 if row < 5 else 0.75), atol=2)
    label_strip = pixels[figures.TOP + 58 * row:figures.TOP + 58 * row + 56, :150]
    assert (label_strip.min() < 128) == (row in (0, 5)), row  # A name at the first row of each group only.


def test_reconstructions_of_unlabelled_data_are_the_first_100_without_row_labels(tmp_path):
  levels = np.arange(150) / 149
  path = tmp_path / 'r.png'
  figures.reconstructions(None, _constant(levels), np.full(150, -1), (), str(path))
  pixels = _read(path, (12 + 578 + 12, 660))
  for k in range(100):
    np.testing.assert_allclose(_tile_centre(pixels, k // 10, k % 10, 12), 255 * levels[k], atol=2)
  assert (pixels[figures.TOP:, :12] == 255).all()  # No room or text for row labels.


def test_samples_places_images_row_major_and_leaves_empty_cells_white(tmp_path):
  levels = np.linspace(0, 0.6, 7)
  path = tmp_path / 's.png'
  figures.samples(_constant(levels), str(path))
  pixels = _read(path, (480, 254))
  left = (480 - 2 * (3 * 29 - 1)) // 2  # A 3 x 3 grid centred in the minimum width.
  for k in range(9):
    expected = 255 * levels[k] if k < 7 else 255
    np.testing.assert_allclose(_tile_centre(pixels, k // 3, k % 3, left), expected, atol=2)


COLOURS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1], [0.5, 0.25, 0.75]])


def test_color_samples_keep_their_colours_and_layout(tmp_path):
  images = _constant(COLOURS, (32, 32))
  images[0, 16:] = (0, 0, 0)  # The first image red above black: up is up.
  path = tmp_path / 's.png'
  figures.samples(images, str(path))
  pixels = _read(path, (480, 70 + 2 * (3 * 33 - 1) + 12))
  left = (480 - 2 * (3 * 33 - 1)) // 2
  y, x = figures.TOP, left  # The first tile spans y, x .. + 64 screen pixels.
  np.testing.assert_allclose(pixels[y + 16, x + 32], (255, 0, 0), atol=2)
  np.testing.assert_allclose(pixels[y + 48, x + 32], (0, 0, 0), atol=2)
  for k in range(1, 9):
    expected = 255 * COLOURS[k] if k < 7 else (255, 255, 255)  # Empty cells white.
    np.testing.assert_allclose(_tile_centre(pixels, k // 3, k % 3, left, side=32), expected, atol=2)
  np.testing.assert_allclose(pixels[y + 32, x + 65], (255, 255, 255), atol=2)  # The gap between tiles white.


def test_small_gray_images_draw_8_screen_pixels_each(tmp_path):
  rng = _rng(8)
  images = rng.uniform(size=(64, 8, 8, 1))
  path = tmp_path / 's.png'
  figures.samples(images, str(path))
  pixels = _read(path, (12 + 8 * (8 * 9 - 1) + 12, 70 + 568 + 12))
  for k in (0, 9, 27, 63):
    r, c = divmod(k, 8)
    for i, j in ((0, 0), (3, 5), (7, 7)):  # Pixel (i, j) of image k: the centre of its 8 x 8 screen block.
      y, x = figures.TOP + 72 * r + 8 * i + 4, 12 + 72 * c + 8 * j + 4
      np.testing.assert_allclose(pixels[y, x], 255 * images[k, i, j, 0], atol=2)


def test_manifold_puts_the_first_grid_row_at_the_bottom(tmp_path):
  n = 4
  values = np.arange(n * n).reshape(n, n) / (n * n - 1)
  images = _constant(values.ravel()).reshape(n, n, *SHAPE)
  path = tmp_path / 'm.png'
  figures.manifold(images, [np.linspace(-1, 1, n)] * 2, (2, 5), str(path))
  pixels = _read(path, (768, 768))
  for i in range(n):
    for j in range(n):  # The image fills a 640 px square axes, 100 px from the left and 80 from the bottom.
      y, x = 768 - 80 - int((i + 0.5) * 160), 100 + int((j + 0.5) * 160)
      np.testing.assert_allclose(pixels[y, x], 255 * values[i, j], atol=2)
  for k in range(n):  # A tick (a dark line outside the axes) at each tile's centre, none between tiles.
    centre, between = 80 + k * 160, 160 + k * 160
    assert pixels[768 - 80 - centre, 96].max() < 64 and pixels[768 - 80 - between, 96].min() > 192, k
    assert pixels[768 - 80 + 3, 100 + centre].max() < 64 and pixels[768 - 80 + 3, 100 + between].min() > 192, k


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


@pytest.mark.parametrize('shape', [SHAPE, (5, 7, 3)])
def test_tile_without_pad_is_numpy_block(shape):
  images = _rng(5).uniform(size=(6, *shape))
  canvas = figures.tile(images, 2, 3)
  assert canvas.shape == (2 * shape[0], 3 * shape[1], shape[2])
  for channel in range(shape[2]):
    blocks = [im[..., channel] for im in images]
    np.testing.assert_array_equal(canvas[..., channel], np.block([blocks[:3], blocks[3:]]))


@pytest.mark.parametrize('shape', [SHAPE, (5, 7, 3)])
def test_tile_with_pad_separates_tiles_with_nan_and_fills_empty_cells(shape):
  images = _rng(6).uniform(size=(5, *shape))
  h, w, _ = shape
  canvas = figures.tile(images, 2, 3, pad=1)
  assert canvas.shape == (2 * h + 1, 3 * w + 2, shape[2])
  for k in range(6):
    r, c = divmod(k, 3)
    cell = canvas[(h + 1) * r:(h + 1) * r + h, (w + 1) * c:(w + 1) * c + w]
    if k < 5:
      np.testing.assert_array_equal(cell, images[k])
    else:
      assert np.isnan(cell).all()
  assert np.isnan(canvas[h]).all() and np.isnan(canvas[:, [w, 2 * w + 1]]).all()


def test_tile_refuses_flat_images():
  with pytest.raises(ValueError, match=r'\(N, H, W, C\)'):
    figures.tile(np.zeros((4, 784)), 2, 2)


# Line and scatter plots.


@pytest.mark.parametrize('num_epochs, every_test', [(1, 1), (5, 1), (5, 2)])
def test_learning_curves_show_every_epoch(tmp_path, num_epochs, every_test):
  path = tmp_path / 'c.png'
  figures.learning_curves(_records(num_epochs, every_test), str(path))
  pixels = _read(path, (1536, 512))
  tab10 = colormaps['tab10'].colors
  assert _has_color(pixels, tab10[0]) and _has_color(pixels, tab10[1])  # The train and test lines or markers.


def test_learning_curves_draw_the_median_test_image_beside_the_mean(tmp_path):
  # One image moving the mean: the median's line (tab10's third colour) shows the curve it hides; none without it.
  green = colormaps['tab10'].colors[2]
  records = _records(5)
  for r in records:
    r['test/neg_elbo_median'] = 110 - 0.5 * r['epoch']
  records[2]['test/neg_elbo'] = 400.0
  drawn = []
  for median in (True, False):
    path = tmp_path / f'{median}.png'
    figures.learning_curves(records if median else _records(5), str(path))
    drawn.append(_has_color(_read(path, (1536, 512)), green, count=40))
  assert drawn == [True, False]


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


def test_latent_scatter_of_unlabelled_data_is_one_colour(tmp_path):
  rng = _rng(9)
  path = tmp_path / 'z.png'
  figures.latent_scatter(rng.normal(size=(500, 2)), np.full(500, -1), (), str(path))
  pixels = _read(path, (1024, 768))
  on_white = (np.asarray(colormaps['tab10'].colors) + 1) / 2  # Each class's points, alpha 0.5 over white.
  assert _has_color(pixels, on_white[0])
  assert not any(_has_color(pixels, on_white[c]) for c in range(1, 10) if c != 7)  # 7 (gray): edges of text.
  assert not _has_color(pixels, colormaps['tab10'].colors[0])  # No legend: its markers are opaque.


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
