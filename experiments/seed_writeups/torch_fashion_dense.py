"""fashion_dense's first five epochs in PyTorch (the benchmark's torch_vae.py, PyTorch's default initialisation):
an independent implementation to set against the write-up's per-epoch training losses.

  .venv/bin/pip install torch==2.13.0
  .venv/bin/python experiments/seed_writeups/torch_fashion_dense.py
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(os.path.dirname(HERE)), os.path.join(os.path.dirname(HERE), 'benchmark')]
import benchmark  # pylint: disable=g-import-not-at-top,wrong-import-position
import torch_vae  # pylint: disable=g-import-not-at-top,wrong-import-position
from vae import data  # pylint: disable=g-import-not-at-top,wrong-import-position


def main():
  config = benchmark.load_config('fashion_dense')
  images = torch.from_numpy(data.load('fashion_mnist').train_images.copy())
  torch.manual_seed(0)
  model = torch_vae.make(config)
  opt = torch_vae.optimizer(model, config.train)
  generator = torch.Generator().manual_seed(0)
  batch = config.train.batch_size
  for epoch in range(1, 6):
    order, total = torch.randperm(len(images), generator=generator), 0.0
    for i in range(len(images) // batch):
      x = images[order[i * batch:(i + 1) * batch]].float() / 255.0
      opt.zero_grad(set_to_none=True)
      loss = torch_vae.loss(model, x, 'bernoulli', 1.0, 1.0)
      loss.backward()
      opt.step()
      total += loss.item()
    print(f'epoch {epoch}: mean train -ELBO {total / (len(images) // batch):.2f} nats per image', flush=True)


if __name__ == '__main__':
  main()
