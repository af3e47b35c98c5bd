"""Training, loading and plotting from Python: what a notebook does with this package, as a script.

  .venv/bin/python docs/example.py                    # fashion_dense, 15 epochs: about a minute on 2 CPU cores
  .venv/bin/python docs/example.py /tmp/quick 1 1000  # workdir, epochs, images (train and test): a quick try

It trains (or resumes) a run, loads its model, and saves a figure of test images, their reconstructions and
samples from the prior beside the run: WORKDIR/example.png.
"""
import os
import sys

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

import vae  # pylint: disable=wrong-import-position
from vae import data  # pylint: disable=wrong-import-position

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'configs', 'fashion_dense.py')


def main(workdir='runs/example', num_epochs=15, max_images=None):
  # One line per epoch and the results as it goes; verbose=False for silence.
  model = vae.train(CONFIG, workdir, train__num_epochs=num_epochs, data__max_train_images=max_images,
                    data__max_test_images=max_images, eval__iw_samples=100)
  model = vae.load(workdir)  # The same model, as any later session would open it.
  images = data.load('fashion_mnist').test_images[:8]  # uint8 (8, 784)
  rows = {'test images': images / 255, 'reconstructions': model.reconstruct(images), 'samples': model.generate(n=8)}
  fig, axes = plt.subplots(3, 8, figsize=(8, 3.4))
  for row, (name, pictures) in zip(axes, rows.items()):
    for ax, picture in zip(row, pictures):
      ax.imshow(np.reshape(picture, (28, 28)), cmap='gray_r', vmin=0, vmax=1)
      ax.axis('off')
    row[0].set_title(name, loc='left', fontsize=9)
  path = os.path.join(workdir, 'example.png')
  fig.savefig(path, dpi=80)
  print(f'test NLL {-np.mean(model.log_likelihood(images, num_samples=100)):.2f} nats on 8 images; {path}')


if __name__ == '__main__':
  args = sys.argv[1:]
  main(*(args[:1] + [int(a) for a in args[1:3]]))
