"""The Python API: `model = vae.load(workdir)`, then encode / decode / generate / reconstruct numpy images, or the
model's pure JAX functions (`model.fns`) of its parameters (`model.params`) under jit, grad and vmap.

Methods take images of the model's `image_shape` (H, W, C), as numpy arrays shaped (N, H, W, C) or flat (N, H*W*C)
(gray ones also (N, H, W)): integers in 0..255 (uint8 and the others), float in [0, 1], or bool (binary); they batch
internally and return numpy arrays, images as float pixel means (N, H, W, C), gray ones (N, H, W).
"""
import functools
import json
import math
import os
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from vae import checkpoints, data, iwae, losses, models, registry, steps
from vae.errors import VaeError
from vae.progress import Progress


class Functions(NamedTuple):
  """A model's pure functions of its parameters, at full float32 on every backend (steps.FULL_PRECISION), to use
  under jax.jit, jax.grad and jax.vmap. `x` is the model's inputs (..., H*W*C) as its evaluation fed them, pixels in
  [0, 1] (in [-1, 1] under data.preprocessing 'signed'); they do not preprocess (`Model.inputs` does); z is
  (..., latent_dim); outputs keep the leading axes. Of a model of two levels, encode and decode are the top level's.
  """
  encode: Callable  # (params, x) -> (mean, logvar) of q(z|x).
  decode: Callable  # (params, z) -> (..., H*W*C) pixel means E[x|z].
  log_likelihood: Callable  # (params, x, key, num_samples) -> (...,) IW estimate of log p(x), nats; num_samples static
  # (and `defensive`, the defensive mixture's share of prior draws, vae/iwae.py; 0: the standard estimate).
  elbo: Callable  # (params, x, key) -> (...,) the ELBO of one draw of q(z|x), nats: what test/neg_elbo averages.
  # Under the exemplar prior (model.prior 'exemplar'), log_likelihood and elbo take its models.Exemplars last
  # (`Model.exemplars`: every training image).


def functions(graphdef, model_config):
  """The Functions of the module `graphdef` under `config.model`'s likelihood."""
  likelihood = models.likelihood_of(model_config)

  def encode(params, x):
    return models.apply(graphdef, params, 'encode', x)

  def decode(params, z):
    return likelihood.mean(models.apply(graphdef, params, 'decode', z))

  def log_likelihood(params, x, key, num_samples, exemplars=None, defensive=0.0):
    return iwae.model_log_likelihood(graphdef, params, x, key, num_samples, likelihood, exemplars, defensive)

  def elbo(params, x, key, exemplars=None):  # As steps.evaluate scores it: the KL in closed form where a level has one.
    logits, levels = steps.draw(graphdef, params, x, key, method='elbo_draw', exemplars=exemplars)
    return likelihood.log_prob(logits, x) - losses.kl(levels, 'auto')

  # The precision is fixed as a function is traced, so it holds for grad's backward pass and under vmap too.
  full = functools.partial(steps.at_precision, steps.FULL_PRECISION)
  return Functions(*(full(fn) for fn in (encode, decode, log_likelihood, elbo)))


def exemplars_of(config, train_images):
  """The models.Exemplars an evaluation of `config`'s model gives its prior: every training image (uint8, (N, H, W,
  C) or flat) under the exemplar prior (steps.evaluation_exemplars); else None."""
  return steps.evaluation_exemplars(jnp.asarray(data.flat(train_images)), config.model)


class Model:
  """A trained VAE: its config, the module structure and the parameters of one checkpoint.

  `params` is the pure dict of jax arrays the functions `fns` take; `module` the Flax NNX module holding them;
  `exemplars` the exemplar prior's components (None under the other priors).
  """

  def __init__(self, config, graphdef, params, epoch=None, batch_size=500, exemplars=None):
    self.config, self.graphdef, self.epoch, self.batch_size = config, graphdef, epoch, batch_size
    self.exemplars = exemplars
    self.params = jax.tree.map(jnp.asarray, params)
    self.fns = functions(graphdef, config.model)
    self.image_shape = models.image_shape(config.model)  # (H, W, C)
    self._shown = self.image_shape if self.image_shape[-1] > 1 else self.image_shape[:2]  # What methods return.
    likelihood = models.likelihood_of(config.model)
    full = functools.partial(steps.at_precision, steps.FULL_PRECISION)  # On every backend, whatever trained it.
    self._encode, self._decode = jax.jit(self.fns.encode), jax.jit(self.fns.decode)
    self._log_likelihood = jax.jit(self.fns.log_likelihood, static_argnames=('num_samples', 'defensive'))
    ex = steps.with_exemplars
    self._prior = jax.jit(full(lambda p, e: models.apply(graphdef, p, 'prior', *ex(e))))
    self._generate = jax.jit(full(lambda p, key, n, e: likelihood.mean(
        models.apply(graphdef, p, 'generate', key, n, *ex(e)))), static_argnums=2)
    self._sample = jax.jit(full(lambda p, key, n, e: likelihood.sample(jax.random.fold_in(key, 1), models.apply(
        graphdef, p, 'generate', key, n, *ex(e)))), static_argnums=2)

  @property
  def latent_dim(self):
    return self.config.model.latent_dim

  @property
  def module(self):
    """The nnx.Module with the trained parameters: a fresh copy on each access (nnx.merge of graphdef and params),
    so changing it changes neither `params` nor this model."""
    return nnx.merge(self.graphdef, self.params)

  def prior(self):
    """(means, logvars) of the prior's K components, each (K, latent_dim): p(z) = (1/K) sum_k N(means[k],
    diag(exp(logvars[k]))); N(0, I) is one component at zero, the VampPrior the posteriors of its pseudo-inputs,
    the exemplar prior the posterior means of every training image with its one learnt variance. Of a model of two
    levels, the top level's, p(z2)."""
    return tuple(np.asarray(a) for a in self._prior(self.params, self.exemplars)[:2])

  def inputs(self, x, *, preprocess=True):
    """Images as the model reads them, float32 (N, H*W*C): what `fns` take (see encode for `preprocess`)."""
    return self._inputs(self._pixels(x, preprocess), preprocess)

  def encode(self, x, *, preprocess=True):
    """(mean, logvar) of q(z|x), each (N, latent_dim); of a model of two levels, the top level's q(z2|x).

    With `preprocess`, images go in as the run's evaluation read them (data.preprocessing): thresholded at 0.5
    ('binarize_static'), or for 'binarize_dynamic' gray images binarized as its test set was (data.binarize_once:
    one Bernoulli draw per pixel, with the evaluation's fixed key, by the pixel's place in the array, so the test
    set passed gray is scored as results.json scored it). Binary images (0 / 255, 0.0 / 1.0 or bool) are unchanged
    by either. preprocess=False: the pixels as given (the VampPrior's gray pseudo-inputs, say).
    """
    means, logvars = zip(*(self._encode(self.params, self._inputs(b, preprocess))
                           for b in self._batches(self._pixels(x, preprocess))))
    return np.concatenate(means)[:len(x)], np.concatenate(logvars)[:len(x)]

  def transform(self, x, *, preprocess=True):
    """The posterior means E[z|x], (N, latent_dim): the codes to cluster or plot."""
    return self.encode(x, preprocess=preprocess)[0]

  def decode(self, z):
    """Pixel means E[x|z] of codes z (N, latent_dim), shaped (N, H, W, C) ((N, H, W) gray); of a model of two levels, of top-level
    codes z2, decoded at z1 = the mean of p(z1|z2)."""
    z = np.asarray(z, np.float32)
    if z.ndim != 2 or z.shape[1] != self.latent_dim:
      raise ValueError(f'codes must be shaped (N, {self.latent_dim}), the model\'s latent_dim; got {z.shape}')
    out = np.concatenate([self._decode(self.params, b) for b in self._batches(z)])[:len(z)]
    return out.reshape((-1,) + self._shown)

  def generate(self, z=None, n=100, seed=0):
    """decode(z); without z, the pixel means of n draws with `seed` from the model's prior (model.prior: N(0, I),
    or the VampPrior's mixture), down every level (z2, then z1 ~ p(z1|z2)), shaped as `decode`'s."""
    if z is None:
      return np.asarray(self._generate(self.params, jax.random.key(seed), n, self.exemplars)).reshape(
          (-1,) + self._shown)
    return self.decode(z)

  def reconstruct(self, x, *, preprocess=True):
    """decode(transform(x)), shaped like x."""
    return self.decode(self.transform(x, preprocess=preprocess)).reshape(np.shape(x))

  def sample(self, n, seed=0):
    """n draws x ~ p(x|z), z ~ p(z), shaped as `decode`'s: binary images (Bernoulli), means plus Gaussian noise,
    or 8-bit values k / 255 (the discretized logistic mixture)."""
    return np.asarray(self._sample(self.params, jax.random.key(seed), n, self.exemplars)).reshape((-1,) + self._shown)

  def log_likelihood(self, x, num_samples=1000, seed=0, progress=None, *, preprocess=True, defensive=0.0):
    """Per-image importance-weighted estimate of log p(x) in nats, with `num_samples` samples of q(z|x); images
    preprocessed as by `encode`. `defensive` in (0, 1): the defensive mixture estimate instead, that share of the
    samples drawn from the prior (vae/iwae.py): robust to an image whose q(z|x) misses its posterior.

    `progress`: a description to show a progress bar (or periodic log lines) under. The draws depend on how `x` is
    batched (`seed` folded with the batch index, batches of up to `batch_size`): the same images in a call of
    another size get other draws, so compare estimates as estimates, not digit for digit.
    """
    key = jax.random.key(seed)
    batches = self._batches(self._pixels(x, preprocess))
    bar = Progress(len(batches), progress) if progress else None
    out = []
    for i, b in enumerate(batches):
      out.append(np.asarray(self._log_likelihood(self.params, self._inputs(b, preprocess),
                                                 jax.random.fold_in(key, i), num_samples=num_samples,
                                                 exemplars=self.exemplars, defensive=float(defensive))))
      if bar:
        bar.update()
    if bar:
      bar.close()
    return np.concatenate(out)[:len(x)].astype(np.float64)

  def _images(self, x):
    """Images checked and flat, (N, H*W*C): integers and bools as uint8 in 0..255, floats as float32 in [0, 1]."""
    x = np.asarray(x)
    shapes = {self.image_shape, (math.prod(self.image_shape),), self._shown}
    if x.ndim < 2 or x.shape[1:] not in shapes:
      raise ValueError(f'images must be shaped (N, {", ".join(map(str, self.image_shape))}) or (N, '
                       f'{math.prod(self.image_shape)}), the model\'s image_shape; got {x.shape}')
    x = data.flat(x)
    if x.dtype == bool:
      return x.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(x.dtype, np.integer):
      low, high = (x.min(), x.max()) if x.size else (0, 0)
      if low < 0 or high > 255:
        raise ValueError(f'{x.dtype} images must lie in 0..255 (float images in [0, 1]); got values from {low} to '
                         f'{high}')
      if high == 1:  # 0/1 binary images, or 0..255 ones all but black: never guessed.
        raise ValueError(f'{x.dtype} images hold only 0 and 1, which in 0..255 are nearly black: pass binary images '
                         f'as images.astype(bool) (or images * 255)')
      return x.astype(np.uint8)
    if not np.issubdtype(x.dtype, np.floating):
      raise ValueError(f'images must be integers in 0..255, float in [0, 1] or bool; got dtype {x.dtype}')
    x = x.astype(np.float32)  # Floats in 0..255 (a PNG read as float) or NaNs would encode silently to nonsense.
    if x.size and not (np.isfinite(x).all() and 0 <= x.min() and x.max() <= 1):
      bad = int(np.sum(~np.isfinite(x)))
      seen = f'{bad} non-finite values' if bad else f'values from {x.min():g} to {x.max():g}'
      raise ValueError(f'float images must lie in [0, 1] (integer images in 0..255 are scaled); got {seen}')
    return x

  def _pixels(self, x, preprocess):
    """`_images(x)`, and with `preprocess`, for a dynamically binarized model, gray images binarized as
    data.binarize_once binarized its test set (its key, its rule: a Bernoulli draw of each pixel's value in [0, 1]),
    as uint8 0 / 255.

    Whole, not per batch: a pixel's draw is keyed by its flat index in the array. A binary image draws itself.
    """
    x = self._images(x)
    if not preprocess or self.config.data.preprocessing != 'binarize_dynamic':
      return x
    top = 255 if x.dtype == np.uint8 else 1
    if ((x == 0) | (x == top)).all():  # Binary already (evaluation's own calls): spares the draw.
      return x
    key = data.eval_binarization_key('test')
    unit = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x
    return np.asarray(data.from_unit(unit, 'binarize_dynamic', key), np.uint8) * np.uint8(255)

  def _inputs(self, x, preprocess):
    """A batch of `_pixels` as the model reads it: float (N, H*W*C), under the evaluation's preprocessing, or with
    preprocess=False the pixels as they are (mapped to [-1, 1] under 'signed', the model's scale).

    Per batch: converting 60,000 images at once allocates 188 MB of floats, whose first touch took 1.2 s on 2 cores.
    """
    mode = self.config.data.preprocessing
    mode = data.eval_mode(mode) if preprocess or mode == 'signed' else 'gray'
    if x.dtype == np.uint8:
      x = x.astype(np.float32) / 255.0
    return np.asarray(data.from_unit(x, mode))

  def _batches(self, x):
    """Batches of `batch_size` (the last zero-padded); fewer images go in one batch padded to a power of two, so
    each method compiles for a handful of shapes and a few images cost a few images' work, not a full batch's.
    No images: one batch of one zero image, whose outputs, cut to none, have the right shapes."""
    size = min(self.batch_size, 1 << max(len(x) - 1, 0).bit_length())
    padded = np.zeros((max(1, -(-len(x) // size)) * size,) + x.shape[1:], x.dtype)
    padded[:len(x)] = x
    return np.split(padded, len(padded) // size)


def load(workdir, epoch=None):
  """The model saved in `workdir` by run.py: its config.json and the checkpoint of `epoch` (default: the latest,
  or with early stopping the best validation epoch, the one results.json reports, which a finished run's workdir
  can keep alone: `checkpoints-best/` without `checkpoints/`). An own model (`model.name=path/to/file.py:Name`) is
  built from the copy of its file the run kept in WORKDIR/model_file/ (logged at INFO), from any folder."""
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
  model_config = ml_collections.ConfigDict(config.model.to_dict())
  model_config.name = registry.kept_model_name(config.model.name, workdir)  # An own model's file: the run's copy.
  if model_config.name != config.model.name:
    logging.info('%s: the model file kept by the run, %s', config.model.name, model_config.name)
  graphdef, params = models.init(model_config, jax.random.key(0))
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
  exemplars = None
  if config.model.get('prior') == 'exemplar':  # Its prior is made of the training images: read them.
    dataset = data.hold_out(data.load(config.data.name, config.data.dir, config.data.classes, config.data.source,
                                      config.data.get('image_size')),
                            config.data.validation_size, config.data.validation_images)
    exemplars = exemplars_of(config, dataset.train_images[:config.data.max_train_images])
  return Model(config, graphdef, state['params'], epoch, exemplars=exemplars)
