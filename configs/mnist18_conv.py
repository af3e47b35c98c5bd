"""Convolutional VAE on the MNIST digits 1 and 8: latent 4, RMSprop 1e-3, batch 16, a small KL weight.

  python run.py --config=configs/mnist18_conv.py --workdir=runs/mnist18_conv
  python run.py --config=configs/mnist18_conv.py:fashion --workdir=runs/fashion_conv  # Fashion-MNIST baseline
  python run.py --config=configs/mnist18_conv.py:writeup --workdir=runs/mnist18_writeup  # 001 as written

Reproduces the conv write-up (Conv 32 -> Conv 64/2 -> Conv 64 -> Conv 64 -> Dense 32; decoder Dense 14x14x64 ->
ConvTranspose 32/2 -> Conv 1). Its loss was the per-pixel mean BCE plus -5e-4 * mean(1 + logvar - mean^2 -
exp(logvar)) over the 4 latent dims, and that mean is -2 KL / 4 = -KL / 2. In summed nats that is
recon + (784 * 5e-4 / 2) * KL, so beta = 0.196.

`fashion` is the conv row of experiments/fashion_baseline/: the same layers on all ten Fashion-MNIST classes, as
a likelihood model comparable with fashion_dense (gray pixels, Bernoulli, beta = 1, Adam 1e-3, batch 100), with
latent 16 and 30 epochs.

`writeup` is the write-up as written (experiments/seed_writeups/models.py:KerasConvVAE): its sampling slip z = mean +
exp(logvar) * eps (its KL reads logvar as the log-variance), a 2x2 kernel in the decoder's last convolution,
Keras's default init (Glorot-uniform kernels, zero biases) and Keras's RMSprop (rho 0.9, epsilon 1e-7 outside the
square root), and its 9x9 grid over -2..2.
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location('default', os.path.join(os.path.dirname(__file__), 'default.py'))
default = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(default)

VARIANTS = ('mnist18', 'fashion', 'writeup')


def get_config(variant='mnist18'):
  if variant not in VARIANTS:
    raise ValueError(f'configs/mnist18_conv.py:{variant}: unknown variant (allowed: {", ".join(VARIANTS)})')
  config = default.get_config()
  config.model.name = 'conv'
  config.model.encoder_widths = config.model.decoder_widths = ()  # The conv model's layers are fixed.
  config.eval.batch_size = 500
  if variant == 'fashion':  # All ten classes; Adam 1e-3, batch 100 and beta 1 as default.py's.
    config.model.latent_dim = 16
    config.train.num_epochs = 30
  else:
    config.data.name = 'mnist'
    config.data.classes = (1, 8)
    config.model.latent_dim = 4
    config.train.num_epochs = 10
    config.train.batch_size = 16
    config.train.optimizer = 'rmsprop'
    config.train.beta = 784 * 5e-4 / 2  # 0.196: the write-up's KL weight in summed nats (above).
  if variant == 'writeup':
    config.model.name = 'experiments/seed_writeups/models.py:KerasConvVAE'
    config.train.optimizer = 'rmsprop_keras'
    config.train.optimizer_eps = 1e-7  # Keras's.
    config.eval.manifold_size = 9
    config.eval.manifold_extent = 2.0
  return config.lock()
