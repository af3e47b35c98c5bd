"""Dense Bernoulli VAE on Fashion-MNIST: 784-512-256 encoder, latent 128, mirrored decoder, Adam, batch 100.

  python run.py --config=configs/fashion_dense.py --workdir=runs/fashion_dense
  python run.py --config=configs/fashion_dense.py:writeup --workdir=runs/fashion_dense_writeup

Reproduces the dense Fashion-MNIST VAE write-up (15 epochs of Adam 1e-3, batch 100, summed binary cross-entropy
on gray pixels), whose reconstructions and latent clustering the evaluation reports. `writeup` is that write-up as
written (shared/seeds/000): TensorFlow's split (the first 5,000 training images held out, 55,000 trained on), its
model (experiments/seed_writeups/models.py:TanhHeadVAE: a tanh-bounded posterior whose standard deviation is a
softplus + 1e-6, a tanh first decoder layer, Xavier-uniform weights, zero biases), the same loss and optimizer.
"""
import ml_collections
from ml_collections import config_dict


VARIANTS = ('default', 'writeup')


def get_config(variant='default'):
  if variant not in VARIANTS:
    raise ValueError(f'configs/fashion_dense.py:{variant}: unknown variant (allowed: {", ".join(VARIANTS)})')
  writeup = variant == 'writeup'
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = 'fashion_mnist'
  config.data.source = 'idx'  # idx (the canonical files) | csv (Kaggle's, in data.dir) | tfds (tfds.data_source)
  config.data.dir = config_dict.placeholder(str)  # None: cache, then system places, then fetch.
  config.data.classes = config_dict.placeholder(tuple)  # None: all ten classes.
  config.data.preprocessing = 'gray'  # gray | binarize_static | binarize_dynamic
  config.data.max_train_images = config_dict.placeholder(int)  # None: all (after the class filter).
  config.data.max_test_images = config_dict.placeholder(int)
  config.data.validation_size = 5000 if writeup else 0  # Held out of training, scored each epoch.
  config.data.validation_images = 'first' if writeup else 'last'  # first | last (in file order).

  config.model = ml_collections.ConfigDict()
  config.model.name = 'experiments/seed_writeups/models.py:TanhHeadVAE' if writeup else 'dense'  # Or your own.
  config.model.encoder_widths = (512, 256)
  config.model.decoder_widths = (256, 512)
  config.model.activation = 'relu'
  config.model.latent_dim = 128
  config.model.likelihood = 'bernoulli'
  config.model.sigma = 1.0  # Gaussian likelihood only: the fixed pixel standard deviation.
  config.model.conv_impl = 'auto'  # auto | xla | patch, conv models only; auto: the faster here (vae/conv.py).
  config.model.prior = 'standard'  # standard: N(0, I) | vamp: the VampPrior, a mixture of the posteriors of
  config.model.num_pseudo_inputs = 500  # ... this many learnt pseudo-inputs (vamp only; needs kl_estimator sample).
  config.model.num_exemplars = 25000  # ... | exemplar: the posteriors of this many training images a step (sample KL).

  config.train = ml_collections.ConfigDict()
  config.train.num_epochs = 15
  config.train.batch_size = 100
  config.train.optimizer = 'adam'
  config.train.learning_rate = 1e-3
  config.train.optimizer_eps = 1e-8  # adam / rmsprop epsilon (optax's default).
  config.train.lr_schedule = 'constant'  # constant | burda (3^i passes at learning_rate * 10^(-i/7))
  config.train.objective = 'elbo'  # elbo | iwae (the k-sample bound of Burda et al.)
  config.train.num_samples = 1  # k: samples per image of the objective (iwae only).
  config.train.beta = 1.0  # KL weight: loss = recon + beta * kl.
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
  config.eval.batch_size = 1000
  config.eval.iw_samples = 100  # Samples per image of the IW estimate test/nll_iw; 5000 for published tables.
  config.eval.manifold_size = 20  # The decoded manifold is manifold_size x manifold_size images.
  config.eval.manifold_extent = 0.0  # 0: the grid at prior quantiles 0.05..0.95; else linear, +-extent.
  return config.lock()
