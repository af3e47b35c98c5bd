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
  """784 -> encoder_widths -> (mean, logvar) heads; latent -> decoder_widths -> 784, as vae/models/dense.py."""

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
  """vae/models/conv.py's VAE for images (H, W, C) and d = model.conv_downsamples: Conv 32 -> Conv 64 /2 -> (d - 1) x
  Conv 64 /2 -> Conv 64 -> Conv 64 -> Dense 32 -> heads; Dense (H, W) / 2^d x 64 -> (d - 1) x ConvT 64 /2 -> ConvT 32
  /2 -> Conv P, the likelihood's outputs per pixel. 3x3 kernels, PyTorch's usual padding: the stride-2 layers' taps
  sit one pixel off 'SAME''s, with the same sizes and FLOPs."""

  def __init__(self, model):
    super().__init__()
    act = ACTIVATIONS[model.activation]
    self.image_shape = tuple(model.get('image_shape') or (28, 28, 1))
    height, width, channels = self.image_shape
    downsamples = model.get('conv_downsamples', 1)
    self.start = (64, height >> downsamples, width >> downsamples)
    down = [nn.Conv2d(64, 64, 3, stride=2, padding=1) for _ in range(downsamples - 1)]
    self.encoder = nn.Sequential(*_with(act, [
        nn.Conv2d(channels, 32, 3, padding=1), nn.Conv2d(32, 64, 3, stride=2, padding=1), *down,
        nn.Conv2d(64, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1)]), nn.Flatten(),
                                 nn.Linear(math.prod(self.start), 32), act())
    self.mean = nn.Linear(32, model.latent_dim)
    self.logvar = nn.Linear(32, model.latent_dim)
    self.dense = nn.Sequential(nn.Linear(model.latent_dim, math.prod(self.start)), act())
    up = lambda a, b: nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1)
    self.deconv = nn.Sequential(*_with(act, [up(64, 64) for _ in range(downsamples - 1)] + [up(64, 32)]),
                                nn.Conv2d(32, outputs_per_pixel(model), 3, padding=1))

  def encode(self, x):
    h = self.encoder(x.view((-1,) + self.image_shape).permute(0, 3, 1, 2))
    return self.mean(h), self.logvar(h)

  def decode(self, z):
    """(N, P, H, W): P outputs per pixel, in vae/likelihoods.py's per-pixel order."""
    return self.deconv(self.dense(z).view((-1,) + self.start))


def _with(act, layers):
  return [m for layer in layers for m in (layer, act())]


def outputs_per_pixel(model):
  """vae/likelihoods.py's P: K (1 + 2C + C(C-1)/2) for the discretized logistic mixture, else C."""
  c = (model.get('image_shape') or (28, 28, 1))[-1]
  if model.likelihood == 'discretized_logistic':
    return model.num_mixtures * (1 + 2 * c + c * (c - 1) // 2)
  return c


def make(config):
  return (ConvVAE if config.model.name == 'conv' else DenseVAE)(config.model)


def loss(model, x, likelihood, sigma, beta):
  """recon + beta * KL, means over the batch, nats: the objective of vae/steps.py; x flat (N, H*W*C) in [0, 1]."""
  mean, logvar = model.encode(x)
  z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
  recon = -log_prob(model.decode(z), x, likelihood, sigma)
  kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum(1)
  return (recon + beta * kl).mean()


def log_prob(out, x, likelihood, sigma=1.0):
  """log p(x | decoder output `out`) in nats per image, x flat (N, H*W*C) in [0, 1]; `out` (N, H*W) from a dense
  decoder, (N, P, H, W) from a conv one."""
  if likelihood == 'discretized_logistic':
    n, _, h, w = out.shape
    return discretized_logistic_mixture_log_prob(out, x.view(n, h, w, -1).permute(0, 3, 1, 2))
  out = out.reshape(len(x), -1)  # One output per value; gray images, so (N, 1, H, W) flattens in x's order.
  if likelihood == 'bernoulli':
    return -F.binary_cross_entropy_with_logits(out, x, reduction='none').sum(1)
  return -((0.5 * (x - torch.sigmoid(out)) ** 2 / sigma ** 2).sum(1)
           + x.shape[1] * math.log(sigma * math.sqrt(2 * math.pi)))


MIN_LOG_SCALE = -7.0  # vae/likelihoods.py's.


def discretized_logistic_mixture_log_prob(out, x):
  """vae/likelihoods.py's DiscretizedLogisticMixture.log_prob (PixelCNN++'s likelihood) in nats per image, written as
  a PyTorch port would be (softplus end bins, the interior bin's factors in log space; autograd's backward): `out`
  (N, P, H, W) in its per-pixel order [logits (K) | mu (K, C) | log_scale (K, C) | coeff (K, C(C-1)/2)], x (N, C,
  H, W) in [0, 1]."""
  n, p, h, w = out.shape
  c = x.shape[1]
  k = p // (1 + 2 * c + c * (c - 1) // 2)
  logits = out[:, :k]
  mu = out[:, k:k + k * c].view(n, k, c, h, w)
  log_scale = out[:, k + k * c:k + 2 * k * c].view(n, k, c, h, w).clamp(min=MIN_LOG_SCALE)
  coeff = torch.tanh(out[:, k + 2 * k * c:].view(n, k, c * (c - 1) // 2, h, w))
  x = (2 * x - 1).unsqueeze(1)  # (N, 1, C, H, W): broadcast over components.
  locs = []
  for i in range(c):
    loc = mu[:, :, i]
    for j in range(i):
      loc = loc + coeff[:, :, i * (i - 1) // 2 + j] * x[:, :, j]
    locs.append(loc)
  loc = torch.stack(locs, dim=2)
  inv_scale = torch.exp(-log_scale)
  centred = x - loc
  upper, lower = inv_scale * (centred + 1 / 255), inv_scale * (centred - 1 / 255)
  log_cdf_upper, log_sf_lower = -F.softplus(-upper), -F.softplus(lower)
  width = (2 / 255) * inv_scale
  log_1m_exp = torch.where(width > 1e-5, torch.log(-torch.expm1(-width.clamp(min=1e-5))),
                           math.log(2 / 255) - log_scale)
  interior = log_cdf_upper + log_sf_lower + log_1m_exp
  log_bin = torch.where(x < -0.999, log_cdf_upper, torch.where(x > 0.999, log_sf_lower, interior))
  log_pixel = torch.logsumexp(F.log_softmax(logits, dim=1) + log_bin.sum(2), dim=1)  # (N, H, W)
  return log_pixel.sum((1, 2))


def optimizer(model, train):
  if train.optimizer == 'adam':
    return torch.optim.Adam(model.parameters(), lr=train.learning_rate)
  if train.optimizer == 'rmsprop':  # optax.rmsprop's defaults: decay 0.9, eps 1e-8.
    return torch.optim.RMSprop(model.parameters(), lr=train.learning_rate, alpha=0.9, eps=1e-8)
  return torch.optim.SGD(model.parameters(), lr=train.learning_rate)


def train_epoch(model, opt, images, config, generator):
  """One pass over `images` (uint8 (N, H*W*C) tensor) in a fresh order, batches gathered and scaled on the fly."""
  batch_size = config.train.batch_size
  order = torch.randperm(len(images), generator=generator)
  for i in range(len(images) // batch_size):
    x = images[order[i * batch_size:(i + 1) * batch_size]].float() / 255.0
    opt.zero_grad(set_to_none=True)
    loss(model, x, config.model.likelihood, config.model.sigma, config.train.beta).backward()
    opt.step()
