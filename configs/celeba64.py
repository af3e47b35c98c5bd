"""CelebA at 64 x 64 in bits/dim: images.py's conv VAE and discretized logistic mixture likelihood, the data from TFDS.

  python run.py --config=configs/celeba64.py --workdir=runs/celeba64

Modelled on PyTorch-VAE's (AntixK/PyTorch-VAE) habit of training every model on CelebA at 64 x 64: it center-crops
the 178 x 218 faces to 148 x 148 and resizes them to 64, and trains at batch 64 for 100 epochs. Here data.image_size
= 64 center-crops each face to a square and resizes it to 64 x 64, and the rest is configs/images.py's setting for
one's own images (its docstring says why each value), which has PyTorch-VAE's batch and epochs. Two differences,
stated: PyTorch-VAE's loss is a squared error with a KL weight of 0.00025, and its latent is 128; here the likelihood
is a mixture of 10 discretized logistics a pixel (PixelCNN++'s) with beta = 1, so the test NLL is a bound in
bits/dim, and the latent is 32 (the conv encoder's last hidden layer has 32 units). TFDS's celeb_a: 162,770 training
and 19,962 test images; the test NLL from 100 importance samples, 128 images a batch.

Not trained here: the machine this config was written on is a 2-core CPU without CelebA and without internet, so the
data set could not be fetched and no full run of this config has been made.
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location('images', os.path.join(os.path.dirname(__file__), 'images.py'))
images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(images)


def get_config():
  config = images.get_config()  # Locked already: a misspelt key here is an error.
  config.data.source, config.data.name = 'tfds', 'celeb_a'
  config.data.image_size = 64
  config.model.conv_downsamples = 4  # 64 -> 32 -> 16 -> 8 -> 4.
  return config
