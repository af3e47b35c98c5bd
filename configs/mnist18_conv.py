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
import ml_collections
from ml_collections import config_dict


VARIANTS = ('mnist18', 'fashion', 'writeup')


def get_config(variant='mnist18'):
  if variant not in VARIANTS:
    raise ValueError(f'configs/mnist18_conv.py:{variant}: unknown variant (allowed: {", ".join(VARIANTS)})')
  fashion, writeup = variant == 'fashion', variant == 'writeup'
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = 'fashion_mnist' if fashion else 'mnist'
  config.data.source = 'idx'  # idx (the canonical files) | csv (Kaggle's, in data.dir) | tfds (tfds.data_source)
  config.data.dir = config_dict.placeholder(str)
  config.data.classes = config_dict.placeholder(tuple) if fashion else (1, 8)
  config.data.preprocessing = 'gray'
  config.data.max_train_images = config_dict.placeholder(int)  # None: all (after the class filter).
  config.data.max_test_images = config_dict.placeholder(int)
  config.data.validation_size = 0  # Held out of training, scored each epoch.
  config.data.validation_images = 'last'  # first | last (in file order).

  config.model = ml_collections.ConfigDict()
  config.model.name = 'experiments/seed_writeups/models.py:KerasConvVAE' if writeup else 'conv'
  config.model.encoder_widths = ()  # The conv model's layers are fixed.
  config.model.decoder_widths = ()
  config.model.activation = 'relu'
  config.model.latent_dim = 16 if fashion else 4
  config.model.likelihood = 'bernoulli'
  config.model.sigma = 1.0
  config.model.conv_impl = 'auto'  # auto | xla | patch, conv models only; auto: the faster here (vae/conv.py).
  config.model.prior = 'standard'  # standard: N(0, I) | vamp: the VampPrior, a mixture of the posteriors of
  config.model.num_pseudo_inputs = 500  # ... this many learnt pseudo-inputs (vamp only; needs kl_estimator sample).
  config.model.num_exemplars = 25000  # ... | exemplar: the posteriors of this many training images a step (sample KL).

  config.train = ml_collections.ConfigDict()
  config.train.num_epochs = 30 if fashion else 10
  config.train.batch_size = 100 if fashion else 16
  config.train.optimizer = 'adam' if fashion else 'rmsprop_keras' if writeup else 'rmsprop'
  config.train.learning_rate = 1e-3
  config.train.optimizer_eps = 1e-7 if writeup else 1e-8  # adam / rmsprop epsilon (optax's default; Keras's 1e-7).
  config.train.lr_schedule = 'constant'  # constant | burda (3^i passes at learning_rate * 10^(-i/7))
  config.train.objective = 'elbo'  # elbo | iwae (the k-sample bound of Burda et al.)
  config.train.num_samples = 1  # k: samples per image of the objective (iwae only).
  config.train.beta = 1.0 if fashion else 784 * 5e-4 / 2
  config.train.beta_schedule = 'constant'  # constant | linear: beta x min(1, epoch / warmup_epochs).
  config.train.warmup_epochs = 0
  config.train.grad_norm = 'none'  # none | per_tensor: each gradient tensor / (its L2 norm + 1e-7) first.
  config.train.kl_estimator = 'analytic'  # analytic | sample: log q(z|x) - log p(z) at the decoded z.
  config.train.matmul_precision = 'float32'  # float32 | tensorfloat32 | bfloat16 | default: the step's
  # matmuls; full float32 reproduces the CPU's numbers on a GPU (docs/config.md). Scores are float32 always.
  config.train.scan_unroll = 1  # Steps per iteration of the epoch's lax.scan (speed only; docs/performance.md).
  config.train.early_stopping_patience = 0  # 0: off; else stop after more epochs than this without a better
  # validation -ELBO (needs data.validation_size) and report the best validation epoch.
  config.train.checkpoint_every_epochs = 1
  config.train.keep_checkpoints = 3

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 500
  config.eval.iw_samples = 100  # Samples per image of the IW estimate test/nll_iw; 5000 for published tables.
  config.eval.manifold_size = 9 if writeup else 20  # The decoded manifold: manifold_size^2 images.
  config.eval.manifold_extent = 2.0 if writeup else 0.0  # 0: the grid at prior quantiles 0.05..0.95; else +-extent.
  return config.lock()
