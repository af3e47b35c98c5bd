"""The paper's figures as PNG files from plain numpy arrays: image grids (reconstructions, samples, traversals,
interpolations, the 2-D manifold), a scatter of latent means and learning curves. Images are (..., H, W, C) in [0, 1] of
any size, C = 1 (gray, drawn with the gray colormap) or 3 (RGB); NaN pixels are blank (white).

Every figure has a fixed pixel size (never bbox_inches='tight'): `SIZES[name]`, or
`grid_size(rows, cols, row_labels, image_shape)` for image grids. Figures are `matplotlib.figure.Figure`s on the Agg
canvas, never pyplot: no global state to close.
"""
import math

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# A power of two, so width / DPI * DPI is exact: Agg truncates the canvas to int(inches * dpi), and with
# DPI = 100 float rounding would lose a pixel on some widths (29 / 100 * 100 < 29).
DPI = 128
TILE_PIXELS = 64  # An image pixel is `scale(image_shape)` screen pixels, a tile about this wide: 2 for 28 x 28.
PAD = 1  # Image pixels of blank between tiles of a grid.
# Margins of image grids in screen pixels: title and column labels on top, row labels (class names) at the left.
TOP, BOTTOM, LABEL_WIDTH, MARGIN = 70, 12, 150, 12
MIN_WIDTH = 480  # Room for a title on a grid of a few columns.
# (width, height) in pixels of the figures whose size does not depend on the data.
SIZES = {'manifold': (768, 768), 'latent_scatter': (1024, 768), 'learning_curves': (1536, 512)}
MARKERS = ('o', 's', '^', 'v', 'D', 'P', 'X', '*', '<', '>')
TITLE_PT, LABEL_PT, TICK_PT = 12, 9, 8
_CMAP = colormaps['gray'].with_extremes(bad='white')  # NaN marks the gaps between tiles and empty cells.


def scale(image_shape):
  """Screen pixels per image pixel for images of `image_shape` (H, W, ...): max(1, TILE_PIXELS // max(H, W))."""
  return max(1, TILE_PIXELS // max(image_shape[:2]))


def grid_size(rows, cols, row_labels, image_shape):
  """(width, height) in pixels of a grid of rows x cols images of `image_shape` (H, W, ...); e.g. 10 x 10 of
  28 x 28 with row labels is (740, 660)."""
  (h, w), s = image_shape[:2], scale(image_shape)
  width = s * (cols * (w + PAD) - PAD) + (LABEL_WIDTH if row_labels else MARGIN) + MARGIN
  return max(width, MIN_WIDTH), s * (rows * (h + PAD) - PAD) + TOP + BOTTOM


def square_shape(n):
  """(rows, cols) of the square-ish grid `samples` draws n images in: 100 -> (10, 10), 7 -> (3, 3)."""
  cols = math.ceil(math.sqrt(n))
  return math.ceil(n / cols), cols


def tile(images, rows, cols, pad=0):
  """Stitches up to rows*cols images (N, H, W, C) (row-major) into one (rows*(H+pad)-pad, cols*(W+pad)-pad, C)
  array, `pad` NaN pixels apart; empty cells NaN."""
  images = np.asarray(images, np.float64)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f'images must be shaped (N, H, W, C) with C = 1 or 3, got {images.shape}')
  h, w, c = images.shape[1:]
  cells = np.full((rows * cols, h, w, c), np.nan)
  cells[:len(images)] = images[:rows * cols]
  cells = np.pad(cells.reshape(rows, cols, h, w, c), ((0, 0), (0, 0), (0, pad), (0, pad), (0, 0)),
                 constant_values=np.nan)
  canvas = cells.transpose(0, 2, 1, 3, 4).reshape(rows * (h + pad), cols * (w + pad), c)
  return canvas[:canvas.shape[0] - pad, :canvas.shape[1] - pad]


def per_class(labels, rows=10, cols=10):
  """Indices of the first images of each class present, grouped in label order, and each row's label.

  The rows are split evenly among the classes present (the first classes get one more when they do not divide),
  so 10 classes get one row each and 2 classes five each. Returns (indices of length rows*cols, with -1 where a
  class has too few images; classes, the class of each row).
  """
  labels = np.asarray(labels)
  present = np.unique(labels)
  indices, classes = [], []
  for label, group in zip(present, np.array_split(np.arange(rows), len(present))):
    n = len(group) * cols
    chosen = np.flatnonzero(labels == label)[:n]
    indices.extend(list(chosen) + [-1] * (n - len(chosen)))
    classes.extend([int(label)] * len(group))
  return np.array(indices, np.int64), classes


def reconstructions(originals, recons, labels, class_names, path, title='Reconstructions of test images, by class'):
  """A 10 x 10 grid of `recons` (N, H, W, C), aligned with `labels`: the first of each class present, rows by class.

  `originals` is accepted so callers can pass the pair; only the reconstructions are drawn. The class name stands
  at the first row of its group. Unlabelled data (labels all -1, `class_names` ()) are one class with no name: the
  first 100, without row labels. Size: `grid_size(10, 10, bool(class_names), recons.shape[1:])`.
  """
  del originals
  indices, classes = per_class(labels)
  recons = np.asarray(recons)
  images = np.where((indices >= 0).reshape(-1, 1, 1, 1), recons[np.maximum(indices, 0)], np.nan)
  names = None  # No row labels for unlabelled data.
  if class_names:
    names = [class_names[c] if r == 0 or classes[r - 1] != c else '' for r, c in enumerate(classes)]
  _image_grid(images, len(classes), 10, path, title, row_labels=names)


def originals_vs_reconstructions(originals, recons, path, pairs=2, cols=10,
                                 title='Test images and their reconstructions'):
  """`pairs` pairs of rows of `cols` images (N, H, W, C): originals above their reconstructions.

  Size: `grid_size(2*pairs, cols, True, recons.shape[1:])`.
  """
  originals, recons = np.asarray(originals), np.asarray(recons)
  rows = []
  for p in range(pairs):
    block = slice(p * cols, (p + 1) * cols)
    rows += [_fill(originals[block], cols), _fill(recons[block], cols)]
  _image_grid(np.concatenate(rows), 2 * pairs, cols, path, title, row_labels=['original', 'reconstruction'] * pairs)


def samples(images, path, title='Samples from the prior'):
  """A square-ish grid of images (N, H, W, C) (see `square_shape`).

  Size: `grid_size(*square_shape(N), row_labels=False, image_shape=images.shape[1:])`.
  """
  rows, cols = square_shape(len(images))
  _image_grid(images, rows, cols, path, title)


def traversal(images, values, dims, path, title='Latent traversals'):
  """Images (D, S, H, W, C): row d sweeps z[dims[d]] over the S `values`. Size: `grid_size(D, S, ...)`."""
  images = np.asarray(images)
  num_dims, num_values = images.shape[:2]
  _image_grid(images.reshape(-1, *images.shape[2:]), num_dims, num_values, path, title,
              row_labels=[f'z[{d}]' for d in dims], col_labels=[f'{v:.3g}' for v in values])


def interpolation(images, path, title='Interpolations between test images'):
  """Images (P, S, H, W, C): row p decodes a path of S steps, its ends the endpoints' reconstructions.

  Columns are labelled with the fraction t of the way along. Size: `grid_size(P, S, row_labels=False, ...)`.
  """
  images = np.asarray(images)
  num_paths, num_steps = images.shape[:2]
  _image_grid(images.reshape(-1, *images.shape[2:]), num_paths, num_steps, path, title,
              col_labels=[f'{t:.2g}' for t in np.linspace(0, 1, num_steps)])


def offsets(images, values, path, title='One test image\'s code shifted by the same offset on every dimension'):
  """Images (S, H, W, C): one row, column s decoded at z + values[s] (every dimension), labelled with the offset."""
  _image_grid(images, 1, len(images), path, title, col_labels=[f'{v:+.2f}' for v in values])


def manifold(images, grid_values, dims, path, title='Learned 2-D manifold'):
  """Images (n, n, H, W, C), images[i, j] decoded at z[dims[0]] = grid_values[0][j], z[dims[1]] = grid_values[1][i].

  Drawn as one image with z[dims[1]] growing upwards, ticks at a few grid values. Size: `SIZES['manifold']`.
  """
  images = np.asarray(images)
  n, (h, w) = images.shape[0], images.shape[2:4]
  canvas = tile(images[::-1].reshape(-1, *images.shape[2:]), n, n)  # Row i = 0 (lowest value) at the bottom.
  width, height = SIZES['manifold']
  fig = _figure(width, height)
  ax = fig.add_axes([100 / width, 80 / height, 640 / width, 640 / height])
  _show(ax, canvas)
  ticks = np.unique(np.linspace(0, n - 1, min(n, 5)).round().astype(int))
  ax.set_xticks(ticks * w + (w - 1) / 2, [f'{grid_values[0][j]:.2g}' for j in ticks], fontsize=TICK_PT)
  ax.set_yticks(canvas.shape[0] - 1 - (ticks * h + (h - 1) / 2), [f'{grid_values[1][i]:.2g}' for i in ticks],
                fontsize=TICK_PT)
  ax.set_xlabel(f'z[{dims[0]}]', fontsize=LABEL_PT)
  ax.set_ylabel(f'z[{dims[1]}]', fontsize=LABEL_PT)
  ax.set_title(title, fontsize=TITLE_PT)
  _save(fig, path)


def latent_scatter(points, labels, class_names, path, xlabel='z[0]', ylabel='z[1]',
                   title='Latent means of test images'):
  """(N, 2) points, each class its own tab10 colour and marker (by class index). Size: `SIZES['latent_scatter']`.

  Unlabelled data (`class_names` ()) are one class, 0's colour, with no name and no legend.
  """
  points = np.asarray(points)
  labels = np.asarray(labels) if class_names else np.zeros(len(points), np.int64)
  names = class_names or ('_unlabelled',)  # matplotlib leaves labels starting with '_' out of a legend.
  fig = _figure(*SIZES['latent_scatter'], layout='constrained')
  ax = fig.add_subplot()
  colors = colormaps['tab10'].colors
  for c in np.unique(labels):
    xy = points[labels == c]
    ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.5, linewidths=0, color=colors[c % 10], marker=MARKERS[c % 10],
               label=names[c])
  if class_names:
    legend = fig.legend(loc='outside right center', fontsize=LABEL_PT, markerscale=2.5, frameon=False)
    for handle in legend.legend_handles:
      handle.set_alpha(1)
  ax.set_xlabel(xlabel, fontsize=LABEL_PT)
  ax.set_ylabel(ylabel, fontsize=LABEL_PT)
  ax.tick_params(labelsize=TICK_PT)
  ax.set_title(title, fontsize=TITLE_PT)
  _save(fig, path)


def learning_curves(records, path, title='Learning curves'):
  """Recon, KL and -ELBO per epoch, train and test, from metrics.jsonl records; beside the test -ELBO, the median
  test image's (`test/neg_elbo_median`), which one image cannot move. Size: `SIZES['learning_curves']`.

  An epoch missing a key (e.g. not evaluated) is skipped for that line only.
  """
  fig = _figure(*SIZES['learning_curves'], layout='constrained')
  panels = (('recon', 'reconstruction  -log p(x|z)'), ('kl', 'KL(q(z|x) || p(z))'), ('neg_elbo', '-ELBO'))
  for ax, (metric, name) in zip(fig.subplots(1, 3), panels):
    lines = {}
    median = [('test median', ':', 'test/neg_elbo_median')] * any(metric == 'neg_elbo' and 'test/neg_elbo_median' in r
                                                                   for r in records)  # Older records have none.
    for split, style, key in (('train', '-', f'train/{metric}'), ('test', '--', f'test/{metric}'), *median):
      epochs = [r['epoch'] for r in records if key in r]
      lines[split] = epochs, [r[key] for r in records if key in r]
      marker = 'o' if len(epochs) <= 25 else ''  # Markers show a lone point; on long runs they only clutter.
      ax.plot(*lines[split], style, marker=marker, markersize=4, label=split)
    limits = y_limits(lines.values())
    if limits:
      ax.set_ylim(*limits)
      first = min(e[0] for e, _ in lines.values() if e)
      off = ', '.join(f'{split} {v[e.index(first)]:.3g}' for split, (e, v) in lines.items() if first in e)
      ax.text(0.98, 0.97, f'epoch {first} off the axis: {off}', transform=ax.transAxes, ha='right', va='top',
              fontsize=TICK_PT)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel('epoch', fontsize=LABEL_PT)
    ax.set_ylabel('nats per image', fontsize=LABEL_PT)
    ax.tick_params(labelsize=TICK_PT)
    ax.set_title(name, fontsize=LABEL_PT + 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=TICK_PT)
  fig.suptitle(title, fontsize=TITLE_PT)
  _save(fig, path)


def y_limits(lines):
  """(bottom, top) for a panel of (epochs, values) lines whose first epoch is an outlier, else None (matplotlib's
  own range).

  The first epoch of an unstable start (RMSprop's first steps can put the KL at 1e8 nats) would flatten every later
  epoch into a line. An outlier is a first-epoch value more than 3 spans of the later values beyond them; the axis
  then shows the later values' range, widened 5 % each way.
  """
  lines = [(list(e), np.asarray(v, float)) for e, v in lines if len(e)]
  if not lines:
    return None
  first = min(e[0] for e, _ in lines)
  later = np.concatenate([v[np.asarray(e) > first] for e, v in lines])
  later = later[np.isfinite(later)]
  if len(later) < 2:
    return None
  lo, hi = later.min(), later.max()
  span = (hi - lo) or abs(hi) * 0.01 or 1.0
  starts = np.array([v[e.index(first)] for e, v in lines if first in e])
  if not np.any(np.isfinite(starts) & ((starts > hi + 3 * span) | (starts < lo - 3 * span))):
    return None
  return lo - 0.05 * span, hi + 0.05 * span


def _fill(images, n):
  """`images` (N, H, W, C) padded with NaN images to n of them."""
  out = np.full((n, *images.shape[1:]), np.nan)
  out[:len(images)] = images[:n]
  return out


def _image_grid(images, rows, cols, path, title, row_labels=None, col_labels=None):
  """Draws images (N, H, W, C) as a rows x cols grid at exactly `scale` screen pixels per image pixel, and saves it."""
  images = np.asarray(images)
  canvas = tile(images, rows, cols, PAD)
  h, w = images.shape[1:3]
  s = scale((h, w))
  width, height = grid_size(rows, cols, row_labels is not None, (h, w))
  fig = _figure(width, height)
  label_width = LABEL_WIDTH if row_labels is not None else MARGIN
  left = (width + label_width - MARGIN - s * canvas.shape[1]) // 2  # Centred in any room MIN_WIDTH adds.
  ax = fig.add_axes([left / width, BOTTOM / height, s * canvas.shape[1] / width, s * canvas.shape[0] / height])
  _show(ax, canvas, interpolation='nearest')
  labelled = [r for r in range(rows) if row_labels is not None and row_labels[r]]
  ax.set_yticks(np.array(labelled) * (h + PAD) + (h - 1) / 2, [row_labels[r] for r in labelled], fontsize=LABEL_PT)
  ax.set_xticks(np.arange(cols) * (w + PAD) + (w - 1) / 2 if col_labels else [], col_labels or [], fontsize=TICK_PT)
  ax.xaxis.set_ticks_position('top')
  ax.tick_params(length=0)
  ax.spines[:].set_visible(False)
  # Wrapped rather than clipped should a long title outgrow even MIN_WIDTH.
  fig.text(0.5, 1 - 10 / height, title, ha='center', va='top', fontsize=TITLE_PT, wrap=True)
  _save(fig, path)


def _show(ax, canvas, **kwargs):
  """imshow of a (h, w, C) canvas in [0, 1]: gray through the gray colormap, RGB as it is; NaN white either way."""
  if canvas.shape[-1] == 1:
    ax.imshow(canvas[..., 0], cmap=_CMAP, vmin=0, vmax=1, **kwargs)
  else:
    ax.imshow(np.clip(np.nan_to_num(canvas, nan=1.0), 0, 1), **kwargs)


def _figure(width, height, layout=None):
  return Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout=layout)


def _save(fig, path):
  FigureCanvasAgg(fig)
  fig.savefig(path, dpi=DPI, format='png')
