"""A researcher's own images, end to end, each trained, evaluated, reported and loaded: a folder of PNGs
(scikit-learn's 1797 real 8 x 8 digits, in class subfolders), an npz (32 x 32 x 3 patches of scikit-learn's two color
photographs, where a few epochs of the discretized logistic mixture beat the patches' own histogram entropy) and TFDS
(mocked CIFAR-10)."""
import json
import math
import os

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits, load_sample_images

import vae
from conftest import ROOT, read_json, run_cli, shared

# Short runs: two epochs of tiny batches, a cheap IW estimate and manifold. The runs other than the photo patches'
# take a small dense model: the conv model at these likelihoods is trained by that run, and compiling it is most of
# a short run's time.
DENSE = ('--config.model.name=dense', '--config.model.encoder_widths=(64,)', '--config.model.decoder_widths=(64,)')
PHOTO_EPOCHS = 4  # 6.98 bits/dim against the histogram's 7.37 (measured, Zen 4, 2026-12-06; 20 epochs: 6.00).
QUICK = ('--config.train.num_epochs=2', '--config.train.batch_size=50', '--config.eval.batch_size=100',
         '--config.eval.iw_samples=10', '--config.eval.manifold_size=4')


def digit_images():
  """scikit-learn's 1797 real 8 x 8 digits (0..16) as uint8 0..255."""
  return np.round(load_digits().images * (255 / 16)).astype(np.uint8)


def digits_npz(path):
  """The digits in Keras's npz layout: 1500 train, 297 test."""
  digits, images = load_digits(), digit_images()
  np.savez(path, x_train=images[:1500], y_train=digits.target[:1500], x_test=images[1500:],
           y_test=digits.target[1500:])
  return images


def photo_patches(size, stride):
  """size x size x 3 patches, `stride` apart, of scikit-learn's two color photographs (427 x 640), uint8, in a fixed
  shuffled order: every fifth the test set, the others the training set."""
  patches = np.stack([image[r:r + size, c:c + size] for image in load_sample_images().images
                      for r in range(0, image.shape[0] - size + 1, stride)
                      for c in range(0, image.shape[1] - size + 1, stride)])
  patches = patches[np.random.default_rng(0).permutation(len(patches))]
  test = np.arange(len(patches)) % 5 == 0
  return patches[~test], patches[test]


def digit_pngs(folder):
  """The digits as PNG files in class subfolders (torchvision's ImageFolder layout): train/3/0042.png, ..."""
  images, labels = digit_images(), load_digits().target
  for split, rows in (('train', range(1500)), ('test', range(1500, len(images)))):
    for i in rows:
      (folder / 'pngs' / split / str(labels[i])).mkdir(parents=True, exist_ok=True)
      Image.fromarray(images[i]).save(folder / 'pngs' / split / str(labels[i]) / f'{i:04d}.png')
  return images


@pytest.fixture(scope='module')
def folder_run(tmp_path_factory):
  """The README's folder command on the digits, written as PNGs in class subfolders (labelled), two epochs."""
  def make(folder):
    digit_pngs(folder)
    run_cli('--config=configs/images.py', '--config.data.source=folder', f'--config.data.dir={folder / "pngs"}',
            f'--workdir={folder / "run"}', '--config.eval.defensive_fraction=0.5', *QUICK, *DENSE)
  return shared(tmp_path_factory, 'images_folder', make) / 'run'


@pytest.fixture(scope='module')
def npz_run(tmp_path_factory):
  """The README's npz command on 32 x 32 x 3 patches of the two photographs (unlabelled): a few epochs of the
  discretized logistic mixture."""
  def make(folder):
    folder.mkdir(parents=True)
    train, test = photo_patches(32, 24)
    np.savez(folder / 'patches.npz', x_train=train, x_test=test)
    run_cli('--config=configs/images.py', '--config.data.source=npz', f'--config.data.dir={folder / "patches.npz"}',
            f'--workdir={folder / "run"}', '--config.model.conv_downsamples=3', '--config.model.num_mixtures=2',
            f'--config.train.num_epochs={PHOTO_EPOCHS}', '--config.train.batch_size=32',
            '--config.train.learning_rate=2e-3', '--config.eval.batch_size=130', '--config.eval.iw_samples=10',
            '--config.eval.manifold_size=3')
  return shared(tmp_path_factory, 'images_npz', make) / 'run'


def test_folder_of_labelled_digit_pngs_trains_evaluates_reports_and_loads(folder_run):
  results = read_json(folder_run / 'results.json')
  # bits/dim is the NLL over H W C ln 2: checked against the nats, independently of how the run computed it.
  for nats, bits in (('test/neg_elbo', 'test/neg_elbo_bpd'), ('test/nll_iw', 'test/nll_iw_bpd'),
                     ('test/nll_iw_defensive', 'test/nll_iw_defensive_bpd')):
    assert results[bits] == pytest.approx(results[nats] / (8 * 8 * 1 * math.log(2)), rel=1e-6)
  # A 256-level pixel costs at most 8 bits under any sensible model; a trained one is far below.
  assert 0 < results['test/nll_iw_bpd'] < 8
  # Both estimates of the same log p(x) (the defensive one from 5 of q's draws and 5 of the prior's): a few percent.
  assert results['test/nll_iw_defensive'] == pytest.approx(results['test/nll_iw'], rel=0.05)
  records = [json.loads(line) for line in (folder_run / 'metrics.jsonl').read_text().splitlines()]
  assert all(r['test/neg_elbo_median'] > 0 for r in records)  # The median image's -ELBO beside the mean's.
  # Labelled by their subfolders: every metric, k-means above chance.
  assert results['latent/kmeans_acc'] > 0.1 and 'latent/skipped' not in results
  assert json.loads((folder_run / 'config.json').read_text())['model']['image_shape'] == [8, 8, 1]
  report = (folder_run / 'report.md').read_text()
  assert 'bits per dimension' in report and 'Images 8 x 8 x 1' in report
  for name in ('reconstructions', 'samples', 'traversal', 'manifold', 'interpolation', 'latent_scatter'):
    assert (folder_run / 'figures' / f'{name}.png').stat().st_size > 0

  model = vae.load(str(folder_run))
  assert model.image_shape == (8, 8, 1)
  images = digit_images()[1500:1520]
  assert model.decode(model.encode(images)[0]).shape == (20, 8, 8)
  assert model.generate(n=3).shape == (3, 8, 8) and model.sample(3).shape == (3, 8, 8)
  samples = model.sample(50)
  assert np.allclose(samples * 255, np.round(samples * 255), atol=1e-4)  # 8-bit values k / 255.
  # uint8 and float images in [0, 1] are the same images: the same estimate.
  as_uint8 = model.log_likelihood(images, num_samples=10, seed=0)
  as_float = model.log_likelihood(images.astype(np.float32) / 255, num_samples=10, seed=0)
  np.testing.assert_allclose(as_uint8, as_float, rtol=1e-5)
  assert -np.mean(as_uint8) / (64 * math.log(2)) < 8


def test_npz_of_photo_patches_beats_their_own_histogram(npz_run):
  """The test bits/dim (the IW estimate) is below the entropy of the test patches' own per-channel histogram, the
  best any model that ignores every dependence between subpixels can do on them (fitted to the very patches it
  scores); and the unlabelled color run reports, draws and loads at its shape."""
  results = read_json(npz_run / 'results.json')
  _, test = photo_patches(32, 24)
  entropy = histogram_entropy_bits(test)
  assert 7.0 < entropy < 8.0  # 7.37 bits: the photographs' test patches.
  assert results['test/nll_iw_bpd'] < entropy - 0.2, (results['test/nll_iw_bpd'], entropy)
  assert 'latent/kmeans_acc' not in results and 'no labels' in results['latent/skipped']
  assert 'Skipped:' in (npz_run / 'report.md').read_text()
  samples = np.asarray(Image.open(npz_run / 'figures' / 'samples.png').convert('RGB'), np.int16)
  assert np.abs(samples[..., 0] - samples[..., 1]).max() > 0  # Drawn in color, not gray.
  model = vae.load(str(npz_run))
  assert model.image_shape == (32, 32, 3)
  assert model.generate(n=4).shape == (4, 32, 32, 3)
  assert model.reconstruct(test[:5]).shape == (5, 32, 32, 3)


def test_tfds_cifar10_mocked_trains_through_the_api(tmp_path):
  tfds = pytest.importorskip('tensorflow_datasets')
  overrides = {'train.num_epochs': 1, 'train.batch_size': 20, 'eval.batch_size': 20, 'eval.iw_samples': 5,
               'eval.manifold_size': 3, 'model.name': 'dense', 'model.encoder_widths': (64,),
               'model.decoder_widths': (64,)}
  with tfds.testing.mock_data(num_examples=40):
    model = vae.train(os.path.join(ROOT, 'configs', 'cifar10.py'), str(tmp_path), overrides, verbose=False)
  assert model.image_shape == (32, 32, 3) and model.generate(n=2).shape == (2, 32, 32, 3)
  results = read_json(tmp_path / 'results.json')
  assert results['test/nll_iw_bpd'] == pytest.approx(results['test/nll_iw'] / (32 * 32 * 3 * math.log(2)), rel=1e-6)
  assert len(json.loads((tmp_path / 'config.json').read_text())['model']['image_shape']) == 3


def histogram_entropy_bits(images):
  """Bits per subpixel of the best model that ignores every dependence between pixels, fitted to `images` itself:
  the entropy of each channel's histogram of values, averaged over the channels."""
  entropies = []
  for c in range(images.shape[-1]):
    p = np.bincount(images[..., c].ravel(), minlength=256) / images[..., c].size
    entropies.append(-np.sum(p[p > 0] * np.log2(p[p > 0])))
  return float(np.mean(entropies))


@pytest.fixture(scope='module')
def digits_file(tmp_path_factory):
  path = tmp_path_factory.mktemp('digits') / 'digits.npz'
  digits_npz(path)
  return path


@pytest.mark.parametrize('flags,fragments', [
    # 8 x 8 halves three times to 1 x 1, not four.
    (('--config.model.conv_downsamples=4',), ("model.name='conv'", 'images of 8 x 8 x 1 do not halve 4 times')),
    (('--config.data.preprocessing=binarize_dynamic',),
     ("model.likelihood='discretized_logistic'", "data.preprocessing='binarize_dynamic'")),
    (('--config.model.image_shape=(28, 28, 1)',), ('model.image_shape=(28, 28, 1)', 'images of 8 x 8 x 1')),
    (('--config.model.name=conv_hvae', '--config.model.z1_dim=4'), ("model.name='conv_hvae'", 'takes 28 x 28 x 1')),
])
def test_impossible_shapes_and_likelihoods_are_one_line_before_anything_is_written(digits_file, tmp_path, flags,
                                                                                    fragments):
  from test_reliability import assert_refused  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'run'
  result = run_cli('--config=configs/images.py', '--config.data.source=npz', f'--config.data.dir={digits_file}',
                   f'--workdir={workdir}', *flags, check=False)
  assert_refused(result, *fragments)
  assert not workdir.exists() or not any(workdir.iterdir())


def test_binary_images_are_not_8_bit_data(tmp_path):
  """The discretized likelihood on images of only 0 and 255 (binarized MNIST, say): refused, as not 8-bit."""
  from test_reliability import assert_refused  # pylint: disable=g-import-not-at-top
  binary = (load_digits().images > 8).astype(np.uint8) * 255
  np.savez(tmp_path / 'binary.npz', x_train=binary[:100], x_test=binary[100:150])
  result = run_cli('--config=configs/images.py', '--config.data.source=npz', f'--config.data.dir={tmp_path}/binary.npz',
                   f'--workdir={tmp_path / "run"}', check=False)
  assert_refused(result, "model.likelihood='discretized_logistic'", 'not 8-bit', '[0, 255]')
  assert not (tmp_path / 'run').exists() or not any((tmp_path / 'run').iterdir())
