"""The Python API: `model = vae.load(workdir)`, then encode / decode / generate / reconstruct numpy images.

Methods take images as numpy arrays, uint8 in [0, 255] or float in [0, 1], shaped (N, 28, 28) or (N, 784), and
batch internally; images come back as float pixel means (Bernoulli probabilities or Gaussian means).
"""
import functools
import json
import os

import jax
import ml_collections
import numpy as np

from vae import checkpoints, data, iwae, losses, models, steps
from vae.errors import VaeError
from vae.progress import Progress


class Model:
  """A trained VAE: its config, the module structure and the parameters of one checkpoint."""

  def __init__(self, config, graphdef, params, epoch=None, batch_size=500):
    self.config, self.params, self.epoch, self.batch_size = config, params, epoch, batch_size
    likelihood, sigma = config.model.likelihood, config.model.sigma
    full = functools.partial(steps.at_precision, steps.FULL_PRECISION)  # On every backend, whatever trained it.
    self._encode = jax.jit(full(lambda p, x: models.apply(graphdef, p, 'encode', x)))
    self._decode = jax.jit(full(lambda p, z: losses.pixel_mean(models.apply(graphdef, p, 'decode', z), likelihood)))
    self._prior = jax.jit(full(lambda p: models.apply(graphdef, p, 'prior')))
    self._generate = jax.jit(full(lambda p, key, n: losses.pixel_mean(models.apply(graphdef, p, 'generate', key, n),
                                                                       likelihood)), static_argnums=2)
    self._log_likelihood = jax.jit(full(functools.partial(
        iwae.model_log_likelihood, graphdef, likelihood=likelihood, sigma=sigma)), static_argnames='num_samples')

  @property
  def latent_dim(self):
    return self.config.model.latent_dim

  def prior(self):
    """(means, logvars) of the prior's K components, each (K, latent_dim): p(z) = (1/K) sum_k N(means[k],
    diag(exp(logvars[k]))); N(0, I) is one component at zero, the VampPrior the posteriors of its pseudo-inputs.
    Of a model of two levels, the top level's, p(z2)."""
    return tuple(np.asarray(a) for a in self._prior(self.params))

  def encode(self, x):
    """(mean, logvar) of q(z|x), each (N, latent_dim); of a model of two levels, the top level's q(z2|x)."""
    means, logvars = zip(*(self._encode(self.params, self._inputs(b)) for b in self._batches(self._images(x))))
    n = len(x)
    return np.concatenate(means)[:n], np.concatenate(logvars)[:n]

  def transform(self, x):
    """The posterior means E[z|x], (N, latent_dim): the codes to cluster or plot."""
    return self.encode(x)[0]

  def decode(self, z):
    """Pixel means E[x|z] of codes z (N, latent_dim), shaped (N, 28, 28); of a model of two levels, of top-level
    codes z2, decoded at z1 = the mean of p(z1|z2)."""
    z = np.asarray(z, np.float32).reshape(-1, self.latent_dim)
    out = np.concatenate([self._decode(self.params, b) for b in self._batches(z)])[:len(z)]
    return out.reshape(-1, 28, 28)

  def generate(self, z=None, n=100, seed=0):
    """decode(z); without z, the pixel means of n draws with `seed` from the model's prior (model.prior: N(0, I),
    or the VampPrior's mixture), down every level (z2, then z1 ~ p(z1|z2)), shaped (n, 28, 28)."""
    if z is None:
      return np.asarray(self._generate(self.params, jax.random.key(seed), n)).reshape(-1, 28, 28)
    return self.decode(z)

  def reconstruct(self, x):
    """decode(transform(x)), shaped like x."""
    return self.decode(self.transform(x)).reshape(np.shape(x))

  def sample(self, n, seed=0):
    """n draws x ~ p(x|z), z ~ p(z): binary images (Bernoulli) or means plus Gaussian noise, (n, 28, 28)."""
    z_key, x_key = jax.random.split(jax.random.key(seed))
    means = self.generate(n=n, seed=int(jax.random.randint(z_key, (), 0, 2 ** 31 - 1)))
    if self.config.model.likelihood == 'bernoulli':
      return np.asarray(jax.random.bernoulli(x_key, means), np.float32)
    return means + self.config.model.sigma * np.asarray(jax.random.normal(x_key, means.shape))

  def log_likelihood(self, x, num_samples=1000, seed=0, progress=None):
    """Per-image importance-weighted estimate of log p(x) in nats, with `num_samples` samples of q(z|x).

    `progress`: a description to show a progress bar (or periodic log lines) under. The draws depend on how `x` is
    batched (`seed` folded with the batch index, batches of up to `batch_size`): the same images in a call of
    another size get other draws, so compare estimates as estimates, not digit for digit.
    """
    key = jax.random.key(seed)
    batches = self._batches(self._images(x))
    bar = Progress(len(batches), progress) if progress else None
    out = []
    for i, b in enumerate(batches):
      out.append(np.asarray(self._log_likelihood(self.params, self._inputs(b), jax.random.fold_in(key, i),
                                                 num_samples=num_samples)))
      if bar:
        bar.update()
    if bar:
      bar.close()
    return np.concatenate(out)[:len(x)].astype(np.float64)

  def _images(self, x):
    """Images checked and flat, (N, 784): uint8 as they are, floats as float32 in [0, 1]."""
    x = np.asarray(x)
    if x.ndim not in (2, 3) or x.shape[1:] not in ((784,), (28, 28)):
      raise ValueError(f'images must be shaped (N, 28, 28) or (N, 784), got {x.shape}')
    x = x.reshape(len(x), 784)
    if x.dtype != np.uint8:  # Floats in 0..255 (a PNG read as float) or NaNs would encode silently to nonsense codes.
      x = x.astype(np.float32)
      if x.size and not (np.isfinite(x).all() and 0 <= x.min() and x.max() <= 1):
        bad = int(np.sum(~np.isfinite(x)))
        seen = f'{bad} non-finite values' if bad else f'values from {x.min():g} to {x.max():g}'
        raise ValueError(f'float images must lie in [0, 1] (uint8 images in 0..255 are scaled); got {seen}')
    return x

  def _inputs(self, x):
    """A batch of `_images` as the model saw them in evaluation: float (N, 784), under the run's data.preprocessing.

    Per batch: converting 60,000 images at once allocates 188 MB of floats, whose first touch took 1.2 s on 2 cores.
    """
    if x.dtype == np.uint8:
      x = x.astype(np.float32) / 255.0
    return np.asarray(data.from_unit(x, data.eval_mode(self.config.data.preprocessing)))

  def _batches(self, x):
    """Batches of `batch_size` (the last zero-padded); fewer images go in one batch padded to a power of two, so
    each method compiles for a handful of shapes and a few images cost a few images' work, not a full batch's."""
    size = min(self.batch_size, 1 << max(len(x) - 1, 0).bit_length())
    padded = np.zeros((-(-len(x) // size) * size,) + x.shape[1:], x.dtype)
    padded[:len(x)] = x
    return np.split(padded, len(padded) // size) if len(x) else []


def load(workdir, epoch=None):
  """The model saved in `workdir` by run.py: its config.json and the checkpoint of `epoch` (default: the latest,
  or with early stopping the best validation epoch, the one results.json reports, which a finished run's workdir
  can keep alone: `checkpoints-best/` without `checkpoints/`)."""
  config_path = os.path.join(workdir, 'config.json')
  try:
    with open(config_path) as f:
      config = ml_collections.ConfigDict(json.load(f))
  except (OSError, json.JSONDecodeError) as e:
    raise VaeError(f'{config_path}: cannot read the run\'s config ({e})') from None
  best = os.path.join(workdir, 'checkpoints-best')
  name = 'checkpoints-best' if epoch is None and os.path.isdir(best) and os.listdir(best) else 'checkpoints'
  if not os.path.isdir(os.path.join(workdir, name)):  # A finished run may keep only its best parameters.
    raise VaeError(f'{workdir}: no checkpoints folder (train first with run.py)')
  graphdef, params = models.init(config.model, jax.random.key(0))
  like = steps.init_state(params, steps.make_optimizer(config.train))
  if name == 'checkpoints-best':  # Early stopping's best epoch: step and parameters only (vae/workdirs.py).
    like = {'step': like['step'], 'params': like['params']}
  ckpts = checkpoints.Checkpoints(workdir, config.train.keep_checkpoints, read_only=True, name=name)
  try:
    if epoch is None:
      state, epoch = ckpts.restore_latest(like, set_aside=False)
      if state is None:
        raise VaeError(f'{ckpts.directory}: no readable checkpoint')
    else:
      state = ckpts.restore(epoch, like)
  finally:
    ckpts.close()
  return Model(config, graphdef, state['params'], epoch)
