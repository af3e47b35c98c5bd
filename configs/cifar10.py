"""CIFAR-10 in bits/dim: images.py's small conv VAE and discretized logistic mixture likelihood, the data from TFDS.

  python run.py --config=configs/cifar10.py --workdir=runs/cifar10

Modelled on the CIFAR-10 setting of NVAE (Vahdat & Kautz, NeurIPS 2020) and VDVAE (Child, ICLR 2021): the 50,000
training and 10,000 test images, each pixel a mixture of 10 discretized logistics (PixelCNN++'s likelihood, and
NVAE's default number of components), the test NLL reported in bits/dim, NLL / (32 x 32 x 3 ln 2). Their models are
deep hierarchies of many latent groups (2.91 and 2.87 bits/dim); this one is the project's small one-level conv VAE
with a latent of 32, exactly as configs/images.py sets it for one's own images (its docstring says why each value), so
expect far worse: a baseline for what that config gives on a known data set, and a check that 8-bit colour images run
end to end, not a reproduction.

data.source 'tfds': tensorflow-datasets fetches and prepares cifar10 on first use (or --config.data.dir names a
prepared copy). Adam 1e-3 at batch 64 for 100 epochs (78,200 steps); the test NLL from 100 importance samples.

Not trained here: the machine this config was written on is a 2-core CPU without CIFAR-10 and without internet, so the
data set could not be fetched and no full run of this config has been made.
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location('images', os.path.join(os.path.dirname(__file__), 'images.py'))
images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(images)


def get_config():
  config = images.get_config()  # Locked already: a misspelt key here is an error.
  config.data.source, config.data.name = 'tfds', 'cifar10'
  config.model.conv_downsamples = 3  # 32 -> 16 -> 8 -> 4.
  return config
