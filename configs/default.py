"""The base of every config: each key once, with what it means. configs/*.py start from it and set only what differs.

Its values are configs/fashion_dense.py's experiment (a dense Bernoulli VAE on Fashion-MNIST's gray pixels), the run
a reader meets first; `python run.py --config=configs/fashion_dense.py --workdir=runs/fashion_dense` runs them.

A config finds this file next to itself, by path (importlib.util.spec_from_file_location): config files are loaded by
path (ml_collections' config_flags, vae.launch.load_config) from any working folder and any install, where `from
configs import default` would need the project's root on sys.path.
"""
import ml_collections
from ml_collections import config_dict


def get_config():
  """Unlocked, so that a config can change it; each config returns its own `config.lock()`."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = 'fashion_mnist'  # mnist | fashion_mnist for idx and csv; the TFDS name for tfds; a free
  # label for npz and folder.
  config.data.source = 'idx'  # idx (the canonical files) | csv (Kaggle's, in data.dir) | tfds (any TFDS image
  # dataset, by data.name) | npz (data.dir names one .npz file with x_train, x_test and optional y_train, y_test) |
  # folder (PNG/JPEG files under data.dir/train and data.dir/test; class subfolders give labels).
  config.data.dir = config_dict.placeholder(str)  # None: cache, then system places, then fetch (npz, folder: needed).
  config.data.classes = config_dict.placeholder(tuple)  # None: all the classes.
  config.data.preprocessing = 'gray'  # gray (intensities in [0, 1]) | binarize_static | binarize_dynamic | signed
  config.data.image_size = config_dict.placeholder(int)  # None: images as they are; else folder images are
  # center-cropped to a square and resized to image_size x image_size.
  config.data.max_train_images = config_dict.placeholder(int)  # None: all (after the class filter).
  config.data.max_test_images = config_dict.placeholder(int)
  config.data.validation_size = 0  # Held out of training, scored each epoch.
  config.data.validation_images = 'last'  # first | last (in file order).

  config.model = ml_collections.ConfigDict()
  config.model.name = 'dense'  # Or your own.
  config.model.image_shape = config_dict.placeholder(tuple)  # (H, W, C) of the images; None: taken from the data
  # when training starts (recorded in config.json).
  config.model.encoder_widths = (512, 256)
  config.model.decoder_widths = (256, 512)
  config.model.activation = 'relu'
  config.model.latent_dim = 128
  config.model.z1_dim = config_dict.placeholder(int)  # Two-level models (hvae, conv_hvae, two_layer): z1's size; z2
  # is latent_dim.
  config.model.z1_widths = config_dict.placeholder(tuple)  # two_layer only: between z1 and z2, both ways.
  config.model.likelihood = 'bernoulli'  # bernoulli | gaussian | discretized_logistic (8-bit images; reports
  # bits/dim).
  config.model.sigma = 1.0  # Gaussian likelihood only: the fixed pixel standard deviation.
  config.model.num_mixtures = 10  # discretized_logistic likelihood only: logistic components per pixel (PixelCNN++).
  config.model.conv_downsamples = 1  # conv only: stride-2 layers; H and W must divide by 2^conv_downsamples.
  config.model.conv_impl = 'auto'  # auto | xla | patch, conv models only; auto: the faster here (models/convolution.py)
  config.model.prior = 'standard'  # standard: N(0, I) | vamp: the VampPrior, a mixture of the posteriors of
  config.model.num_pseudo_inputs = 500  # ... this many learnt pseudo-inputs (vamp only; needs kl_estimator sample).
  config.model.num_exemplars = 25000  # ... | exemplar: the posteriors of this many training images a step (sample KL).
  config.model.output_bias = 'zero'  # zero | data_mean: the logit of the training mean pixel (dense decoders' logits).

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
  config.eval.defensive_fraction = 0.0  # > 0: also test/nll_iw_defensive, this share of the IW samples drawn
  # from the prior (the defensive mixture, vae/iwae.py): robust to an image whose q(z|x) misses its posterior.
  config.eval.iw_samples = 100  # Samples per image of the IW estimate test/nll_iw; 5000 for published tables.
  config.eval.manifold_size = 20  # The decoded manifold is manifold_size x manifold_size images.
  config.eval.manifold_extent = 0.0  # 0: the grid at prior quantiles 0.05..0.95; else linear, +-extent.
  return config
