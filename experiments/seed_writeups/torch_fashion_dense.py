"""fashion_dense's first five epochs in PyTorch (the benchmark's torch_vae.py, PyTorch's default initialisation):
an independent implementation to set against the write-up's per-epoch training losses, and the variants that test
guesses at what the write-up did differently.

  .venv/bin/pip install torch==2.13.0
  .venv/bin/python experiments/seed_writeups/torch_fashion_dense.py [VARIANT]

VARIANT (default `elbo`, the stated setting; each prints the mean per-image training loss of epochs 1-5):
  elbo        recon + KL, z = mean + exp(logvar / 2) * eps
  half_kl     recon + KL / 2
  std_is_var  z = mean + exp(logvar) * eps (the exponent's 1/2 forgotten), KL as if exp(logvar) were the variance
  no_noise    z = mean (a sampling step that never runs in training mode), KL still added
  batchnorm   BatchNorm1d after every hidden Linear layer (before its activation)
"""
import os
import sys

import torch
from torch import nn
from torch.nn import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(os.path.dirname(HERE)), os.path.join(os.path.dirname(HERE), 'benchmark')]
import workers  # pylint: disable=g-import-not-at-top,wrong-import-position
import torch_vae  # pylint: disable=g-import-not-at-top,wrong-import-position
from vae import data  # pylint: disable=g-import-not-at-top,wrong-import-position

VARIANTS = ('elbo', 'half_kl', 'std_is_var', 'no_noise', 'batchnorm')


def _batchnorm_after_hidden(seq, last_is_output):
  """`seq` with each hidden nn.Linear followed by a BatchNorm1d (the output layer, if last_is_output, left bare)."""
  linears = [m for m in seq.modules() if isinstance(m, nn.Linear)]
  hidden = linears[:-1] if last_is_output else linears
  layers = []
  for m in seq.modules():
    if isinstance(m, (nn.Linear, nn.ReLU)):
      layers.append(m)
      if m in hidden:
        layers.append(nn.BatchNorm1d(m.out_features))
  return nn.Sequential(*layers)


def loss(model, x, variant):
  mean, logvar = model.encode(x)
  scale = {'std_is_var': torch.exp(logvar), 'no_noise': torch.zeros_like(logvar)}.get(
      variant, torch.exp(0.5 * logvar))
  out = model.decode(mean + scale * torch.randn_like(mean))
  recon = F.binary_cross_entropy_with_logits(out, x, reduction='none').sum(1)
  kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum(1)
  return (recon + (0.5 if variant == 'half_kl' else 1.0) * kl).mean()


def main(variant):
  if variant not in VARIANTS:
    sys.exit(f'torch_fashion_dense.py: unknown variant {variant!r} (allowed: {", ".join(VARIANTS)})')
  config = workers.load_config('fashion_dense')
  images = torch.from_numpy(data.load('fashion_mnist').train_images.copy())
  torch.manual_seed(0)
  model = torch_vae.make(config)
  if variant == 'batchnorm':
    model.encoder = _batchnorm_after_hidden(model.encoder, last_is_output=False)
    model.decoder = _batchnorm_after_hidden(model.decoder, last_is_output=True)
  opt = torch_vae.optimizer(model, config.train)
  generator = torch.Generator().manual_seed(0)
  batch = config.train.batch_size
  for epoch in range(1, 6):
    order, total = torch.randperm(len(images), generator=generator), 0.0
    for i in range(len(images) // batch):
      x = images[order[i * batch:(i + 1) * batch]].float() / 255.0
      opt.zero_grad(set_to_none=True)
      value = loss(model, x, variant)
      value.backward()
      opt.step()
      total += value.item()
    print(f'{variant} epoch {epoch}: mean train loss {total / (len(images) // batch):.2f} nats per image', flush=True)


if __name__ == '__main__':
  main(sys.argv[1] if len(sys.argv) > 1 else 'elbo')
