"""Dense Gaussian VAE on Fashion-MNIST that makes new clothes by shifting a code: 784-400-20, ReLU, Adam, batch 128.

  python run.py --config=configs/fashion_mse.py --workdir=runs/fashion_mse

The setting of the PyTorch write-up (shared/seeds/004): encoder 784-400 (ReLU) -> mean, log-variance of a 20-D
code, decoder 20-400 (ReLU) -> 784, Adam 1e-3, batch 128, 10 epochs, a squared-error reconstruction term plus the
KL. Corrected: pixels in [0, 1] under a Gaussian likelihood whose mean is the decoder's sigmoid, sigma^2 = 1/2, so
that -log p(x|z) is the summed squared error plus a constant and every figure is a true density in nats.

  python run.py --config=configs/fashion_mse.py:writeup --workdir=runs/fashion_mse_writeup

`writeup` is the write-up as written (experiments/seed_writeups/models.py:TorchDenseVAE): inputs and targets
normalised to [-1, 1] (torchvision's Normalize(0.5, 0.5)) while the decoder ends in a sigmoid, the summed squared
error (sigma^2 = 1/2: recon = SSE + 392 log(pi)), its "sigma" head the log-std when sampling and the log-variance
in the KL, PyTorch's default init. One difference: the last 96 images of each epoch's order are dropped (468 full
batches) where PyTorch's loader trains on a last, smaller batch.
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location('default', os.path.join(os.path.dirname(__file__), 'default.py'))
default = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(default)

VARIANTS = ('default', 'writeup')


def get_config(variant='default'):
  if variant not in VARIANTS:
    raise ValueError(f'configs/fashion_mse.py:{variant}: unknown variant (allowed: {", ".join(VARIANTS)})')
  config = default.get_config()
  config.model.encoder_widths = config.model.decoder_widths = (400,)
  config.model.latent_dim = 20
  config.model.likelihood = 'gaussian'  # Its mean the sigmoid of the decoder's output.
  config.model.sigma = 0.5 ** 0.5  # sigma^2 = 1/2: -log p(x|z) is the summed squared error + 784 log(pi) / 2.
  config.train.num_epochs = 10
  config.train.batch_size = 128
  if variant == 'writeup':
    config.model.name = 'experiments/seed_writeups/models.py:TorchDenseVAE'
    config.data.preprocessing = 'signed'  # Inputs and targets in [-1, 1]; its decoder still ends in a sigmoid.
  return config.lock()
