"""Dense Bernoulli VAE on Fashion-MNIST: 784-512-256 encoder, latent 128, mirrored decoder, Adam, batch 100.

  python run.py --config=configs/fashion_dense.py --workdir=runs/fashion_dense
  python run.py --config=configs/fashion_dense.py:writeup --workdir=runs/fashion_dense_writeup

Reproduces the dense Fashion-MNIST VAE write-up (15 epochs of Adam 1e-3, batch 100, summed binary cross-entropy
on gray pixels), whose reconstructions and latent clustering the evaluation reports. `writeup` is that write-up as
written (shared/seeds/000): TensorFlow's split (the first 5,000 training images held out, 55,000 trained on), its
model (experiments/seed_writeups/models.py:TanhHeadVAE: a tanh-bounded posterior whose standard deviation is a
softplus + 1e-6, a tanh first decoder layer, Xavier-uniform weights, zero biases), the same loss and optimizer.
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location('default', os.path.join(os.path.dirname(__file__), 'default.py'))
default = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(default)

VARIANTS = ('default', 'writeup')


def get_config(variant='default'):
  if variant not in VARIANTS:
    raise ValueError(f'configs/fashion_dense.py:{variant}: unknown variant (allowed: {", ".join(VARIANTS)})')
  config = default.get_config()  # default.py holds this experiment's values.
  if variant == 'writeup':
    config.data.validation_size = 5000
    config.data.validation_images = 'first'
    config.model.name = 'experiments/seed_writeups/models.py:TanhHeadVAE'
  return config.lock()
