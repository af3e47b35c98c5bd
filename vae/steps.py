"""The pure, jit-able computations: the loss, one train step, a whole epoch as one `lax.scan`, evaluation.

State is a pytree {'step', 'params', 'opt_state'}. Randomness comes only from keys passed in: the batch order of
epoch e from fold_in(perm_key, e), and each step's draws from fold_in(key, step), so a resumed run draws exactly
what an uninterrupted one would.
"""
import functools

import jax
import jax.numpy as jnp
import optax

from vae import data, losses, models

# Each optimizer's update direction with optax's defaults; the step scales it by -learning_rate itself, which is
# what optax.adam(lr) etc. do, but with the learning rate an array (one per sweep member), not a compiled constant.
# 'rmsprop_keras' is Keras's RMSprop (the conv write-up's): its epsilon outside the square root.
OPTIMIZERS = {'adam': optax.scale_by_adam, 'rmsprop': optax.scale_by_rms, 'sgd': optax.identity,
              'rmsprop_keras': functools.partial(optax.scale_by_rms, eps_in_sqrt=False)}
HPARAMS = ('beta', 'learning_rate')  # The float hyper-parameters a step takes as arrays: what sweeps may vary.


SCHEDULES = ('constant', 'burda')
BETA_SCHEDULES = ('constant', 'linear')
GRAD_NORMS = ('none', 'per_tensor')
KL_ESTIMATORS = ('analytic', 'sample')
OBJECTIVES = ('elbo', 'iwae')
# train.matmul_precision: how the training step's matmuls and convolutions round (jax.default_matmul_precision).
# 'float32' is full float32 on every backend; 'tensorfloat32' and 'bfloat16' are NVIDIA GPUs' and TPUs' fast
# paths (inputs rounded to 10 / 7 mantissa bits); 'default' is the backend's own choice (TF32 on recent NVIDIA
# GPUs, float32 on the CPU).
MATMUL_PRECISIONS = ('float32', 'tensorfloat32', 'bfloat16', 'default')
FULL_PRECISION = 'float32'  # Every reported likelihood (test -ELBO, IW NLL) is computed at this.


def at_precision(precision, fn):
  """`fn` with its matmuls and convolutions traced at `precision` (one of MATMUL_PRECISIONS)."""
  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with jax.default_matmul_precision(precision):
      return fn(*args, **kwargs)
  return wrapped


def make_optimizer(train_config):
  """The update direction; with train.grad_norm 'per_tensor', of each parameter tensor's gradient divided by
  (its L2 norm + 1e-7) first (the VampPrior code's AdamNormGrad)."""
  direction = optax.identity() if train_config.optimizer == 'sgd' else OPTIMIZERS[train_config.optimizer](
      eps=train_config.get('optimizer_eps', 1e-8))
  if train_config.get('grad_norm', 'none') == 'none':
    return direction
  return optax.chain(_normalize_per_tensor(), direction)


def _normalize_per_tensor(eps=1e-7):
  """g -> g / (||g||_2 + eps) for each leaf; optax has only whole-tree normalisations."""
  return optax.stateless(lambda updates, params: jax.tree.map(
      lambda g: g / (jnp.linalg.norm(g.ravel()) + eps), updates))


def learning_rate_factor(schedule, epoch):
  """The factor on train.learning_rate in (1-based) epoch `epoch`.

  'burda': Burda et al. (2016): for i = 0, 1, ..., 3^i passes at 10^(-i/7) (3280 passes for i <= 7).
  """
  if schedule == 'constant':
    return 1.0
  i, last = 0, 1
  while epoch > last:
    i += 1
    last += 3 ** i
  return 10 ** (-i / 7)


def beta_factor(train_config, epoch):
  """The factor on train.beta in (1-based) epoch `epoch`: 1, or for 'linear' min(1, epoch / train.warmup_epochs)
  (the VampPrior code's warm-up: beta = epoch / warmup, 1 from epoch `warmup_epochs` on)."""
  if train_config.beta_schedule == 'constant' or not train_config.warmup_epochs:
    return 1.0
  return min(1.0, epoch / train_config.warmup_epochs)


def hparams(config):
  """{'beta', 'learning_rate'} of `config` as float32 scalars: traced arguments of the step, not constants."""
  return {name: jnp.float32(config.train[name]) for name in HPARAMS}


def init_state(params, optimizer):
  return {'step': jnp.zeros((), jnp.int32), 'params': params, 'opt_state': optimizer.init(params)}


def draw(graphdef, params, x, key, num_samples=None, method='draw', exemplars=None):
  """(logits, levels) of one draw per image keyed `key` (with `num_samples`, that many, on a leading axis): the
  model's infer (given the exemplar prior's `exemplars`), then `method` (draw or elbo_draw; models.py), the noise
  standard normal."""
  inferred = models.apply(graphdef, params, 'infer', x, *with_exemplars(exemplars))
  shape = x.shape[:-1] + (models.apply(graphdef, params, 'noise_size', inferred),)
  eps = jax.random.normal(key, shape if num_samples is None else (num_samples,) + shape)
  return models.apply(graphdef, params, method, inferred, eps)


def with_exemplars(exemplars):
  """The trailing arguments of a model's infer, prior and generate: none but under the exemplar prior."""
  return () if exemplars is None else (exemplars,)


# The exemplar prior's exemplars in training: uniform draws with replacement from the training images, each step's
# from fold_in(the step's key, EXEMPLAR_STREAM), as the Exemplar VAE code draws them for every batch.
EXEMPLAR_STREAM = 1


def training_exemplars(images, batch_indices, key, model_config):
  """models.Exemplars of one step: model.num_exemplars training images (uint8 `images`, (N, H*W*C)) drawn with
  replacement, gray, each batch image's own left out; None unless model.prior is 'exemplar'."""
  if model_config.get('prior', 'standard') != 'exemplar':
    return None
  ids = jax.random.randint(jax.random.fold_in(key, EXEMPLAR_STREAM), (model_config.num_exemplars,), 0,
                           images.shape[0])
  return models.Exemplars(data.preprocess(images[ids], 'gray'), ids, batch_indices)


def evaluation_exemplars(images, model_config):
  """models.Exemplars of an evaluation: every training image (uint8 `images`), gray, none left out (the Exemplar
  VAE code's test-time prior); None unless model.prior is 'exemplar'."""
  if model_config.get('prior', 'standard') != 'exemplar':
    return None
  return models.Exemplars(data.preprocess(images, 'gray'))


def loss_fn(params, graphdef, x, key, model_config, beta, objective='elbo', num_samples=1, kl_estimator='analytic',
            exemplars=None):
  """(loss, metrics) of one batch, recon and kl each summed over the model's levels.

  'elbo': the beta-weighted -ELBO, one reparameterised draw per image, the KL in closed form ('analytic') or as
  log q(z|x) - log p(z) at that same draw ('sample', as the VampPrior code trains). 'iwae': minus the
  importance-weighted bound L_k = E[log (1/k) sum_i w_i] with k = `num_samples` (losses.log_weight); recon and kl
  are then those of the first draw, so that neg_elbo stays comparable.
  """
  if objective == 'elbo':
    logits, levels = draw(graphdef, params, x, key, method='elbo_draw', exemplars=exemplars)
    recon = -models.likelihood_of(model_config).log_prob(logits, x)
    metrics = losses.batch_metrics(recon, losses.kl(levels, kl_estimator), beta)
    return metrics['loss'], metrics
  logits, levels = draw(graphdef, params, x, key, num_samples, exemplars=exemplars)
  log_px_z = models.likelihood_of(model_config).log_prob(logits, x)  # (k, N)
  bound = jax.nn.logsumexp(losses.log_weight(log_px_z, levels), axis=0) - jnp.log(num_samples)
  kl = jnp.broadcast_to(losses.kl(levels, 'auto'), log_px_z.shape)  # A closed form has no sample axis.
  metrics = losses.batch_metrics(-log_px_z[0], kl[0], beta)
  metrics['loss'] = -jnp.mean(bound)
  return metrics['loss'], metrics


def train_step(state, x, key, hparams, exemplars=None, *, graphdef, optimizer, model_config, objective='elbo',
               num_samples=1, kl_estimator='analytic'):
  """One optimizer update on batch `x` (under the exemplar prior, given `exemplars`); returns the new state and the
  batch's metrics."""
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  (_, metrics), grads = grad_fn(state['params'], graphdef, x, key, model_config, hparams['beta'], objective,
                                num_samples, kl_estimator, exemplars)
  direction, opt_state = optimizer.update(grads, state['opt_state'], state['params'])
  params = jax.tree.map(lambda p, d: p - hparams['learning_rate'] * d, state['params'], direction)
  metrics['grad_norm'] = optax.tree.norm(grads)
  return {'step': state['step'] + 1, 'params': params, 'opt_state': opt_state}, metrics


def train_epoch(state, images, epoch, keys, hparams, *, graphdef, optimizer, config, batch_sharding):
  """One pass over `images` (uint8, (N, H*W*C), on device) in a fresh order.

  Returns (state, metrics, health): metrics are means over the epoch's steps; health holds each step's loss and
  gradient norm, so that a non-finite one can be named. The last N % batch_size images of each permutation are
  dropped, so every step has a full batch.
  """
  batch_size = config.train.batch_size
  num_steps = images.shape[0] // batch_size
  order = jax.random.permutation(jax.random.fold_in(keys['perm'], epoch), images.shape[0])
  order = order[:num_steps * batch_size].reshape(num_steps, batch_size)
  step_fn = functools.partial(train_step, hparams=hparams, graphdef=graphdef, optimizer=optimizer,
                              model_config=config.model, objective=config.train.get('objective', 'elbo'),
                              num_samples=config.train.get('num_samples', 1),
                              kl_estimator=config.train.get('kl_estimator', 'analytic'))

  def body(state, batch_indices):
    step = state['step']
    batch_indices = jax.lax.with_sharding_constraint(batch_indices, batch_sharding)
    x = data.preprocess(images[batch_indices], config.data.preprocessing,
                        jax.random.fold_in(keys['binarize'], step))
    key = jax.random.fold_in(keys['train'], step)
    return step_fn(state, x, key, exemplars=training_exemplars(images, batch_indices, key, config.model))

  new_state, metrics = jax.lax.scan(body, state, order, unroll=config.train.scan_unroll)
  # A member stopped early (hparams['active'] 0) is frozen: it computes along, but keeps its state.
  state = jax.tree.map(lambda new, old: jnp.where(hparams['active'] > 0, new, old), new_state, state)
  health = {'loss': metrics['loss'], 'grad_norm': metrics['grad_norm']}
  return state, jax.tree.map(jnp.mean, metrics), health


def evaluate(params, batches, key, hparams, exemplars=None, *, num_images, graphdef, config, batch_sharding):
  """Test-set metrics from `batches` (uint8, (B, batch, H*W*C), zero-padded past `num_images`), one z per image
  (under the exemplar prior, given evaluation_exemplars).

  The same `key` every epoch makes the single-sample estimates comparable across epochs.
  """
  preprocessing = data.eval_mode(config.data.preprocessing)

  def body(_, inputs):
    index, batch = inputs
    x = data.preprocess(jax.lax.with_sharding_constraint(batch, batch_sharding), preprocessing)
    logits, levels = draw(graphdef, params, x, jax.random.fold_in(key, index), method='elbo_draw',
                          exemplars=exemplars)
    recon = -models.likelihood_of(config.model).log_prob(logits, x)
    return None, (recon, losses.kl(levels, 'auto'))  # Each level's closed form where it has one.

  _, (recon, kl) = jax.lax.scan(body, None, (jnp.arange(batches.shape[0]), batches))
  recon, kl = recon.reshape(-1)[:num_images], kl.reshape(-1)[:num_images]
  # The median image's -ELBO beside the mean: one image whose one-draw KL is heavy-tailed can move the mean by
  # nats (experiments/published/README.md), not the median.
  return {**losses.batch_metrics(recon, kl, hparams['beta']), 'neg_elbo_median': jnp.median(recon + kl)}


def pad_batches(images, batch_size):
  """Splits (N, ...) into (ceil(N / batch_size), batch_size, ...), zero-padding the last batch."""
  num_batches = -(-images.shape[0] // batch_size)
  padded = jnp.zeros((num_batches * batch_size,) + images.shape[1:], images.dtype).at[:images.shape[0]].set(images)
  return padded.reshape((num_batches, batch_size) + images.shape[1:])
