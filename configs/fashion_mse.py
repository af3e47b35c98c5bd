"""Dense Gaussian VAE on Fashion-MNIST that makes new clothes by shifting a code: 784-400-20, ReLU, Adam, batch 128.

  python run.py --config=configs/fashion_mse.py --workdir=runs/fashion_mse

The setting of the PyTorch write-up (shared/seeds/004): encoder 784-400 (ReLU) -> mean, log-variance of a 20-D
code, decoder 20-400 (ReLU) -> 784, Adam 1e-3, batch 128, 10 epochs, a squared-error reconstruction term plus the
KL. Corrected: pixels in [0, 1] under a Gaussian likelihood whose mean is the decoder's sigmoid, sigma^2 = 1/2, so
that -log p(x|z) is the summed squared error plus a constant and every figure is a true density in nats.
"""
import ml_collections
from ml_collections import config_dict


def get_config():
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
  config.data.validation_size = 0  # Held out of training, scored each epoch.
  config.data.validation_images = 'last'  # first | last (in file order).

  config.model = ml_collections.ConfigDict()
  config.model.name = 'dense'
  config.model.encoder_widths = (400,)
  config.model.decoder_widths = (400,)
  config.model.activation = 'relu'
  config.model.latent_dim = 20
  config.model.likelihood = 'gaussian'  # Its mean the sigmoid of the decoder's output.
  config.model.sigma = 0.5 ** 0.5  # sigma^2 = 1/2: -log p(x|z) is the summed squared error + 784 log(pi) / 2.
  config.model.conv_impl = 'auto'  # auto | xla | patch, conv models only; auto: patch on CPU, XLA's conv elsewhere.

  config.train = ml_collections.ConfigDict()
  config.train.num_epochs = 10
  config.train.batch_size = 128
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
  config.train.early_stopping_patience = 0  # 0: off; else stop after more epochs than this without a better
  # validation -ELBO (needs data.validation_size) and report the best validation epoch.
  config.train.checkpoint_every_epochs = 1
  config.train.keep_checkpoints = 3

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 1000
  config.eval.iw_samples = 100  # Samples per image of the IW estimate test/nll_iw; 5000 for published tables.
  config.eval.manifold_size = 20  # The decoded manifold is manifold_size x manifold_size images.
  return config.lock()
