"""The comparison implementation: each config's VAE in PyTorch, the same layers, loss, optimizer and batch size.

Used only by the benchmark (PyTorch is not a dependency of the package: `pip install torch==2.13.0`).
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = {'relu': nn.ReLU, 'tanh': nn.Tanh, 'softplus': nn.Softplus, 'elu': nn.ELU}


def _mlp(sizes, activation):
  layers = []
  for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
    layers.append(nn.Linear(a, b))
    if i < len(sizes) - 2:
      layers.append(ACTIVATIONS[activation]())
  return nn.Sequential(*layers)


class DenseVAE(nn.Module):
  """784 -> encoder_widths -> (mean, logvar) heads; latent -> decoder_widths -> 784, as vae/models.py."""

  def __init__(self, model):
    super().__init__()
    widths = list(model.encoder_widths)
    self.encoder = nn.Sequential(_mlp([784] + widths, model.activation), ACTIVATIONS[model.activation]())
    self.mean = nn.Linear(widths[-1], model.latent_dim)
    self.logvar = nn.Linear(widths[-1], model.latent_dim)
    self.decoder = _mlp([model.latent_dim] + list(model.decoder_widths) + [784], model.activation)

  def encode(self, x):
    h = self.encoder(x)
    return self.mean(h), self.logvar(h)

  def decode(self, z):
    return self.decoder(z)


class ConvVAE(nn.Module):
  """Conv 32 -> Conv 64 /2 -> Conv 64 -> Conv 64 -> Dense 32 -> heads; Dense 14x14x64 -> ConvT 32 /2 -> Conv 1."""

  def __init__(self, model):
    super().__init__()
    act = ACTIVATIONS[model.activation]
    self.encoder = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), act(), nn.Conv2d(32, 64, 3, stride=2, padding=1), act(),
        nn.Conv2d(64, 64, 3, padding=1), act(), nn.Conv2d(64, 64, 3, padding=1), act(), nn.Flatten(),
        nn.Linear(14 * 14 * 64, 32), act())
    self.mean = nn.Linear(32, model.latent_dim)
    self.logvar = nn.Linear(32, model.latent_dim)
    self.dense = nn.Sequential(nn.Linear(model.latent_dim, 14 * 14 * 64), act())
    self.deconv = nn.Sequential(nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), act(),
                                nn.Conv2d(32, 1, 3, padding=1))

  def encode(self, x):
    h = self.encoder(x.view(-1, 1, 28, 28))
    return self.mean(h), self.logvar(h)

  def decode(self, z):
    return self.deconv(self.dense(z).view(-1, 64, 14, 14)).view(-1, 784)


def make(config):
  return (ConvVAE if config.model.name == 'conv' else DenseVAE)(config.model)


def loss(model, x, likelihood, sigma, beta):
  """recon + beta * KL, means over the batch, nats: the objective of vae/steps.py."""
  mean, logvar = model.encode(x)
  z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
  out = model.decode(z)
  if likelihood == 'bernoulli':
    recon = F.binary_cross_entropy_with_logits(out, x, reduction='none').sum(1)
  else:
    recon = (0.5 * (x - torch.sigmoid(out)) ** 2 / sigma ** 2).sum(1) + 784 * math.log(sigma * math.sqrt(2 * math.pi))
  kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum(1)
  return (recon + beta * kl).mean()


def optimizer(model, train):
  if train.optimizer == 'adam':
    return torch.optim.Adam(model.parameters(), lr=train.learning_rate)
  if train.optimizer == 'rmsprop':  # optax.rmsprop's defaults: decay 0.9, eps 1e-8.
    return torch.optim.RMSprop(model.parameters(), lr=train.learning_rate, alpha=0.9, eps=1e-8)
  return torch.optim.SGD(model.parameters(), lr=train.learning_rate)


def train_epoch(model, opt, images, config, generator):
  """One pass over `images` (uint8 (N, 784) tensor) in a fresh order, batches gathered and scaled on the fly."""
  batch_size = config.train.batch_size
  order = torch.randperm(len(images), generator=generator)
  for i in range(len(images) // batch_size):
    x = images[order[i * batch_size:(i + 1) * batch_size]].float() / 255.0
    opt.zero_grad(set_to_none=True)
    loss(model, x, config.model.likelihood, config.model.sigma, config.train.beta).backward()
    opt.step()
