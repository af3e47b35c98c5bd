"""Your own 8-bit images, of any size: a conv VAE under a discretized logistic mixture likelihood, scored in bits/dim.

  python run.py --config=configs/images.py --config.data.source=npz --config.data.dir=my_images.npz --workdir=runs/mine
  python run.py --config=configs/images.py --config.data.source=folder --config.data.dir=my_pngs --workdir=runs/mine_png

npz: one .npz file holding x_train and x_test, and optionally y_train and y_test (labels). folder: PNG or JPEG files
under my_pngs/train and my_pngs/test, class subfolders giving labels; --config.data.image_size=64 center-crops them
to a square and resizes them to 64 x 64 (images of different sizes need it). model.image_shape, (H, W, C), comes from
the data and is recorded in the run's config.json. Any other key: --config.KEY=VALUE.

Modelled on the likelihood of PixelCNN++ (Salimans et al., ICLR 2017) that NVAE (Vahdat & Kautz, NeurIPS 2020) and
VDVAE (Child, ICLR 2021) use for natural images: each pixel a mixture of model.num_mixtures = 10 discretized
logistics (default.py's value, and NVAE's default), which gives each of the 256 intensity levels a probability, so that
the test NLL is in bits/dim, as they report it. The pixels enter as they are (data.preprocessing 'gray': intensities
in [0, 1], colour kept); nothing is binarized.

The rest are small defaults for a first run on a few thousand images on one GPU, chosen, not tuned: the conv model;
latent 32, because the conv encoder's last hidden layer has 32 units (vae/models/conv.py), so the posterior
means span at most 32 directions and a larger code would add only inactive units; batch 64 (PyTorch-VAE's) with
default.py's Adam 1e-3; 100 epochs, about 8,000 steps on 5,000 images; the test NLL from 100 importance samples
(default.py's; 5000 for a published table); evaluation 128 images a batch, as default.py's 1000 is sized for 28 x 28
gray images.

Not trained here: the machine this config was written on is a 2-core CPU with no such images and no internet, so no full
run of it has been made and its settings are untried on real data.
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location('default', os.path.join(os.path.dirname(__file__), 'default.py'))
default = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(default)


def get_config():
  config = default.get_config()
  config.data.name = 'images'  # A label only.
  config.data.source = 'folder'
  config.model.name = 'conv'
  config.model.encoder_widths = config.model.decoder_widths = ()  # The conv model's layers are fixed.
  config.model.latent_dim = 32
  config.model.conv_downsamples = 2  # H, W multiples of 4: 28 -> 14 -> 7, 32 -> 16 -> 8, 8 -> 4 -> 2.
  config.model.likelihood = 'discretized_logistic'
  config.train.num_epochs = 100
  config.train.batch_size = 64
  config.eval.batch_size = 128
  return config.lock()
