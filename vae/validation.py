"""Checks of a config before any compute: each failure is a VaeError naming the key and what is wrong."""
import math

import jax
import jax.numpy as jnp
import numpy as np

from vae import data, likelihoods, models, registry, steps
from vae.models import convolution
from vae.errors import VaeError

PRIOR_NAMES = {'vamp': 'VampPrior', 'exemplar': 'exemplar prior'}


def check_config(config, data_devices):
  """Raises VaeError for the first impossible value in `config`, whose batches split over `data_devices` devices."""
  _one_of(config, 'data.source', ('idx',) + tuple(data.SOURCES))
  if config.data.source in ('idx', 'csv'):  # Else the TFDS name, or a free label of one's own images.
    _one_of(config, 'data.name', data.DATASETS)
  _one_of(config, 'data.preprocessing', data.PREPROCESSING)
  _one_of(config, 'data.validation_images', data.VALIDATION_IMAGES)
  try:
    registry.factory(config.model.name)
  except ValueError as e:
    raise VaeError(f'model.name={config.model.name!r}: {e}') from None
  _one_of(config, 'model.activation', tuple(models.ACTIVATIONS))
  _one_of(config, 'model.conv_impl', convolution.CONV_IMPLS)
  _one_of(config, 'model.likelihood', likelihoods.NAMES)
  _one_of(config, 'model.prior', models.PRIORS)
  _one_of(config, 'model.output_bias', models.OUTPUT_BIASES)
  if config.model.output_bias == 'data_mean' and (config.model.name not in models.DATA_MEAN_MODELS or
                                                  config.model.likelihood != 'bernoulli'):
    raise VaeError(f"model.output_bias='data_mean': starts the Bernoulli logits of a dense decoder (model.name "
                   f"{' or '.join(models.DATA_MEAN_MODELS)}, model.likelihood bernoulli), not model.name="
                   f"{config.model.name!r} with the {config.model.likelihood} likelihood")
  _one_of(config, 'train.optimizer', tuple(steps.OPTIMIZERS))
  _one_of(config, 'train.lr_schedule', steps.SCHEDULES)
  _one_of(config, 'train.objective', steps.OBJECTIVES)
  _one_of(config, 'train.beta_schedule', steps.BETA_SCHEDULES)
  _one_of(config, 'train.grad_norm', steps.GRAD_NORMS)
  _one_of(config, 'train.kl_estimator', steps.KL_ESTIMATORS)
  _one_of(config, 'train.matmul_precision', steps.MATMUL_PRECISIONS)
  for key in ('train.warmup_epochs', 'train.early_stopping_patience'):
    value = _get(config, key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
      raise VaeError(f'{key}={value!r}: must be an integer >= 0')
  if config.train.early_stopping_patience and not config.data.validation_size:
    raise VaeError(f'train.early_stopping_patience={config.train.early_stopping_patience}: needs validation images '
                   f'(set data.validation_size)')
  if config.train.beta_schedule == 'linear' and not config.train.warmup_epochs:
    raise VaeError("train.warmup_epochs=0: the 'linear' beta schedule needs the warm-up's length")
  if config.model.likelihood == 'discretized_logistic' and config.data.preprocessing != 'gray':
    raise VaeError(f"model.likelihood='discretized_logistic': models 8-bit pixels as they are (data.preprocessing="
                   f"'gray'), not data.preprocessing={config.data.preprocessing!r}")
  for key in ('num_mixtures', 'conv_downsamples'):  # Every config's, whichever model reads them (saved: may lack).
    value = config.model.get(key, 1)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
      raise VaeError(f'model.{key}={value!r}: must be a positive integer')
  if config.data.preprocessing == 'signed' and config.model.likelihood == 'bernoulli':
    raise VaeError("data.preprocessing='signed': pixels in [-1, 1] are not Bernoulli outcomes (use a gaussian "
                   "likelihood)")
  if config.data.preprocessing == 'signed' and config.model.prior in ('vamp', 'exemplar'):
    raise VaeError(f"data.preprocessing='signed': the {PRIOR_NAMES[config.model.prior]}'s inputs are pixels in "
                   f"[0, 1] (use 'gray' or a binarization)")
  if config.model.name == 'two_layer' and config.train.kl_estimator == 'analytic':
    raise VaeError("train.kl_estimator='analytic': the two_layer model draws z1 before z2, so z1's KL to p(z1|z2) "
                   "has no closed form (use 'sample')")
  if config.model.prior in ('vamp', 'exemplar') and config.train.kl_estimator == 'analytic':
    raise VaeError(f"train.kl_estimator='analytic': the KL to the {PRIOR_NAMES[config.model.prior]} (model.prior="
                   f"'{config.model.prior}') has no closed form (use 'sample')")
  for key in ('seed', 'model.latent_dim', 'model.num_pseudo_inputs', 'model.num_exemplars', 'train.num_epochs',
              'train.batch_size', 'train.checkpoint_every_epochs', 'train.keep_checkpoints', 'train.num_samples',
              'train.scan_unroll', 'eval.batch_size', 'eval.iw_samples', 'eval.manifold_size'):
    value = _get(config, key)
    if not isinstance(value, int) or isinstance(value, bool):
      raise VaeError(f'{key}={value!r}: must be an integer')
    if value <= 0 and key != 'seed':
      raise VaeError(f'{key}={value}: must be positive')
  if not 0 <= config.seed < 2 ** 32:  # The range JAX's keys and scikit-learn's random_state (the evaluation) share.
    raise VaeError(f'seed={config.seed}: must be in 0 .. 2**32 - 1')
  size = _get(config, 'data.validation_size')
  if not isinstance(size, int) or isinstance(size, bool) or size < 0:
    raise VaeError(f'data.validation_size={size!r}: must be an integer >= 0')
  for key in ('data.max_train_images', 'data.max_test_images'):
    value = _get(config, key)
    if value is not None and (not isinstance(value, int) or value <= 0):
      raise VaeError(f'{key}={value!r}: must be a positive integer or None')
  for key in ('train.learning_rate', 'train.optimizer_eps', 'model.sigma'):
    value = _get(config, key)
    if not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
      raise VaeError(f'{key}={value!r}: must be a positive finite number')
  if config.train.objective == 'elbo' and config.train.num_samples != 1:
    raise VaeError(f"train.num_samples={config.train.num_samples}: the 'elbo' objective takes one sample "
                   f"(train.objective='iwae' for k samples)")
  if config.train.objective == 'iwae' and config.train.beta != 1:
    raise VaeError(f'train.beta={config.train.beta}: the iwae objective has no KL weight (use 1.0)')
  beta = config.train.beta
  if not isinstance(beta, (int, float)) or not beta >= 0:
    raise VaeError(f'train.beta={beta!r}: must be a number >= 0')
  for key in ('train.batch_size', 'eval.batch_size'):
    if _get(config, key) % data_devices:
      raise VaeError(f"{key}={_get(config, key)}: must be divisible by the mesh's data axis ({data_devices} devices; "
                     f"--mesh=members:M,data:D sets it)")
  if config.model.name in registry.TWO_LEVELS:
    value = _get(config, 'model.z1_dim')
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
      raise VaeError(f'model.z1_dim={value!r}: must be a positive integer')
  for key, readers in (('model.z1_dim', registry.TWO_LEVELS), ('model.z1_widths', ('two_layer',))):
    if config.model.name in registry.FACTORIES and config.model.name not in readers and config.model.get(
        key.split('.')[1]) is not None:  # A built-in model that would silently ignore it.
      raise VaeError(f'{key}={_get(config, key)!r}: read only by {", ".join(readers)}, not model.name='
                     f'{config.model.name!r} (leave it unset)')
  fraction = config.eval.get('defensive_fraction', 0.0)
  if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 <= fraction < 1:
    raise VaeError(f'eval.defensive_fraction={fraction!r}: must be in [0, 1) (0: the standard IW estimate only)')
  if fraction and config.eval.iw_samples < 2:
    raise VaeError(f'eval.iw_samples={config.eval.iw_samples}: the defensive estimate (eval.defensive_fraction='
                   f'{fraction}) needs at least 2, from q and from the prior')
  extent = _get(config, 'eval.manifold_extent')
  if not isinstance(extent, (int, float)) or isinstance(extent, bool) or not (extent >= 0 and math.isfinite(extent)):
    raise VaeError(f'eval.manifold_extent={extent!r}: must be a finite number >= 0 (0: the grid at prior quantiles)')
  classes = _get(config, 'data.classes')
  if classes is not None and (not classes or len(set(classes)) != len(classes) or not all(
      isinstance(c, int) and not isinstance(c, bool) and 0 <= c for c in classes)):
    raise VaeError(f'data.classes={classes!r}: must be distinct labels >= 0 (unset: every class)')
  for key in ('model.encoder_widths', 'model.decoder_widths') + (  # Every config's, whichever model reads them.
      ('model.z1_widths',) if config.model.name == 'two_layer' else ()):
    widths = _get(config, key)
    if not isinstance(widths, (tuple, list)) or not all(isinstance(w, int) and w > 0 for w in widths):
      raise VaeError(f'{key}={widths!r}: must be a tuple of positive integers')


def check_model(model_config):
  """Traces the model once, abstractly (jax.eval_shape: nothing computed, nothing allocated), on a batch of two
  images; a factory that returns something else, or methods of the wrong shapes, is a VaeError naming the model and
  what it returned, before any data is read or anything is written."""
  name, width = model_config.name, model_config.latent_dim
  size, out_size = models.input_size(model_config), models.output_size(model_config)
  shape = ' x '.join(map(str, models.image_shape(model_config)))

  def probe(key):
    graphdef, params = models.init(model_config, key)
    x = jnp.zeros((2, size))
    exemplars = steps.evaluation_exemplars(jnp.zeros((3, size), jnp.uint8), model_config)
    logits, levels = steps.draw(graphdef, params, x, key, exemplars=exemplars)
    steps.draw(graphdef, params, x, key, method='elbo_draw', exemplars=exemplars)  # What the -ELBO decodes, too.
    prior = models.apply(graphdef, params, 'prior', *steps.with_exemplars(exemplars))[:2]
    return {'encode': models.apply(graphdef, params, 'encode', x), 'prior': prior,
            'decode': models.apply(graphdef, params, 'decode', jnp.zeros((2, width))), 'draw': logits,
            'levels': [(level.z, level.mean, level.logvar) for level in levels]}

  try:
    shapes = jax.eval_shape(probe, jax.random.key(0))
  except models.ShapeError as e:  # A model that cannot take the images' shape says why.
    raise VaeError(f'model.name={name!r}: {e}') from None
  except Exception as e:  # pylint: disable=broad-except  # A model of one's own can fail in any way: say how.
    text = ' '.join(str(e).split())
    raise VaeError(f'model.name={name!r}: traced on 2 images, it fails: {type(e).__name__}: {text[:300]}') from None
  expected = {'encode': [(2, width)] * 2, 'decode': [(2, out_size)], 'draw': [(2, out_size)]}
  for method, want in expected.items():
    got = [tuple(a.shape) for a in jax.tree.leaves(shapes[method])]
    if got != want:
      raise VaeError(f'model.name={name!r}: {method} of 2 images returned shapes {got}, expected {want} (model.'
                     f'latent_dim={width}, images of {shape}, {out_size} outputs for the {model_config.likelihood} '
                     f'likelihood)')
  prior = [tuple(a.shape) for a in jax.tree.leaves(shapes['prior'])]
  if len(prior) != 2 or prior[0] != prior[1] or len(prior[0]) != 2 or prior[0][1] != width:
    raise VaeError(f'model.name={name!r}: prior() returned shapes {prior}, expected (means, logvars), each '
                   f'(K, {width})')


def set_image_shape(config, shape):
  """Sets config.model.image_shape to the data's (H, W, C), or refuses a value set to another shape."""
  shape = tuple(int(d) for d in shape)
  given = config.model.get('image_shape') if 'image_shape' in config.model else models.DEFAULT_IMAGE_SHAPE
  if given is not None and tuple(given) != shape:
    raise VaeError(f'model.image_shape={tuple(given)}: the data ({config.data.source} {config.data.dir or config.data.name}) '
                   f'holds images of {" x ".join(map(str, shape))} (unset it to take the data\'s)')
  if given is None:
    config.model.image_shape = shape


def check_data(config, dataset):
  """Checks that depend on the loaded (and class-filtered) dataset."""
  if config.model.likelihood == 'discretized_logistic':  # Binary images are not 8-bit data: no 256 levels to model.
    values = np.unique(dataset.train_images[:1000])
    if len(values) <= 2:
      raise VaeError(f"model.likelihood='discretized_logistic': the images of {config.data.name} are not 8-bit (their "
                     f"first 1000 hold only the values {values.tolist()}); use a bernoulli likelihood")
  if config.data.classes is not None and not dataset.has_labels:
    raise VaeError(f'data.classes={config.data.classes}: {config.data.name} has no labels')
  if config.data.validation_size and not len(dataset.train_images):
    raise VaeError(f'data.validation_size={config.data.validation_size}: leaves no training images')
  if config.train.batch_size > len(dataset.train_images):
    raise VaeError(f'train.batch_size={config.train.batch_size}: larger than the {len(dataset.train_images)} '
                   f'training images of {config.data.name} (classes {config.data.classes})')


# The keys that fix the shapes and meaning of a checkpoint's arrays: a workdir trained with other values is refused.
HOW_KEYS = ('model.conv_impl',)  # Change how the same function is computed, not the checkpoint's meaning.
MODEL_KEYS = ('model', 'train.optimizer', 'train.grad_norm', 'train.objective', 'train.num_samples',
              'train.lr_schedule', 'data.name', 'data.classes', 'data.preprocessing')


# What a config.json saved before a key existed meant by its absence: the one thing a run could do then.
SAVED_DEFAULTS = {'model': {'output_bias': 'zero'}}


def _as_saved(saved):
  return {**saved, **{part: {**defaults, **saved.get(part, {})} for part, defaults in SAVED_DEFAULTS.items()}}


def check_same_model(saved, config, path):
  """Refuses to resume from checkpoints written under `saved` (config.json's dict) if a model key differs."""
  current, saved = config.to_dict(), _as_saved(saved)
  differences = []
  for key in MODEL_KEYS:
    if _get(saved, key) is None and key != 'data.classes':  # Saved before the key existed.
      continue
    old, new = _flatten(_get(saved, key), key), _flatten(_get(current, key), key)
    # A key the saved config lacks came after it was trained; how a layer computes does not change its arrays.
    differences += [f'{k}={_plain(old.get(k))} there, {_plain(new.get(k))} now' for k in sorted(set(old) | set(new))
                    if k in old and k not in HOW_KEYS and _plain(old.get(k)) != _plain(new.get(k))]
  if differences:
    raise VaeError(f'{path}: the checkpoints in this workdir are of a different model ({"; ".join(differences)}); '
                   f'use another --workdir')


# What a resumed run may change: how long it trains, how it is evaluated and saved, and how the same computation is
# done or where the same data is read from. Anything else would make the workdir's records another experiment's.
RESUME_KEYS = ('train.num_epochs', 'train.checkpoint_every_epochs', 'train.keep_checkpoints', 'train.scan_unroll',
               'model.conv_impl', 'data.dir', 'eval.')  # Not data.source: another source orders the images otherwise.


def check_resume(saved, config, path):
  """Refuses to go on in a workdir whose config.json (`saved`) differs from `config` on a key outside RESUME_KEYS;
  returns {key: (there, now)} of the keys that differ and may (to log and record)."""
  old, new = _flatten(_as_saved(saved), 'config'), _flatten(config.to_dict(), 'config')
  changed = {k[len('config.'):]: (_plain(old[k]), _plain(new.get(k))) for k in sorted(old)
             if _plain(old[k]) != _plain(new.get(k)) and k in new}  # A key saved before it existed: skipped.
  allowed = lambda key: key in RESUME_KEYS or any(key.startswith(p) for p in RESUME_KEYS if p.endswith('.'))
  refused = '; '.join(f'{k}={a!r} there, {b!r} now' for k, (a, b) in changed.items() if not allowed(k))
  if refused:
    keys = ', '.join(k + '*' if k.endswith('.') else k for k in RESUME_KEYS)
    raise VaeError(f'{path}: this workdir holds another experiment ({refused}); a resumed run may change only '
                   f'{keys}: use another --workdir')
  return changed


def _flatten(value, prefix):
  if isinstance(value, dict):
    return {k: v for name, sub in value.items() for k, v in _flatten(sub, f'{prefix}.{name}').items()}
  return {prefix: value}


def _plain(value):
  """JSON's view of a value: tuples and lists alike."""
  return list(value) if isinstance(value, (tuple, list)) else value


def _get(config, dotted):
  """The value at `dotted`: None where a saved dict lacks it; a VaeError where a config lacks it."""
  for part in dotted.split('.'):
    if isinstance(config, dict):
      config = config.get(part)
    elif part not in config:
      raise VaeError(f'{dotted}: missing from the config (every config defines it, see configs/fashion_dense.py)')
    else:
      config = config[part]
  return config


def _one_of(config, key, allowed):
  value = _get(config, key)
  if value not in allowed:
    raise VaeError(f'{key}={value!r}: unknown (allowed: {", ".join(allowed)})')
