"""VAEs with a 2-D latent space, for scatter plots of the codes and decoded manifolds.

  python run.py --config=configs/latent2d.py --workdir=runs/latent2d                  # MNIST
  python run.py --config=configs/latent2d.py:fashion --workdir=runs/latent2d_fashion  # Fashion-MNIST
  python run.py --config=configs/latent2d.py:writeup --workdir=runs/latent2d_writeup  # 002 as written; :writeup20

`mnist` (default) reproduces the 2-D MNIST write-up: dense 500-500 softplus, Bernoulli, Adam 1e-3, batch 100,
75 epochs. `fashion` reproduces the 2-D Fashion-MNIST one: encoder 400-200-100-20, decoder 20-100-200-400, batch
200, 60 epochs, and a Gaussian likelihood with sigma = 1: -ELBO is SSE / 2 + KL + 784 log(2 pi) / 2, with SSE the
summed squared error. The write-up's test loss "MSE 10.83 + KLD 4.42" is that SSE / 2 + KL (we measured 11.22 + 4.33;
sigma^2 = 1/2, i.e. SSE + KL, gives 21.79 + 5.49): see experiments/seed_writeups/README.md.

`writeup` and `writeup20` are the sklearn-like MNIST write-up (shared/seeds/002) as written: its two models, latent
2 and latent 20, 500-500 softplus with Xavier-uniform weights and zero biases (heads included), trained on
TensorFlow's 55,000-image split (the first 5,000 held out), and its 20x20 manifold over a linear -3..3 grid.
"""
import ml_collections
from ml_collections import config_dict


VARIANTS = ('mnist', 'fashion', 'writeup', 'writeup20')


def get_config(variant='mnist'):
  if variant not in VARIANTS:
    raise ValueError(f'configs/latent2d.py:{variant}: unknown variant (allowed: {", ".join(VARIANTS)})')
  fashion, writeup = variant == 'fashion', variant.startswith('writeup')
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = 'fashion_mnist' if fashion else 'mnist'
  config.data.source = 'idx'  # idx (the canonical files) | csv (Kaggle's, in data.dir) | tfds (tfds.data_source)
  config.data.dir = config_dict.placeholder(str)
  config.data.classes = config_dict.placeholder(tuple)
  config.data.preprocessing = 'gray'
  config.data.max_train_images = config_dict.placeholder(int)  # None: all (after the class filter).
  config.data.max_test_images = config_dict.placeholder(int)
  config.data.validation_size = 5000 if writeup else 0  # Held out of training, scored each epoch.
  config.data.validation_images = 'first' if writeup else 'last'  # first | last (in file order).

  config.model = ml_collections.ConfigDict()
  config.model.name = 'experiments/seed_writeups/models.py:XavierDenseVAE' if writeup else 'dense'
  config.model.encoder_widths = (400, 200, 100, 20) if fashion else (500, 500)
  config.model.decoder_widths = (20, 100, 200, 400) if fashion else (500, 500)
  config.model.activation = 'relu' if fashion else 'softplus'
  config.model.latent_dim = 20 if variant == 'writeup20' else 2
  config.model.likelihood = 'gaussian' if fashion else 'bernoulli'
  config.model.sigma = 1.0
  config.model.conv_impl = 'auto'  # auto | xla | patch, conv models only; auto: the faster here (vae/conv.py).
  config.model.prior = 'standard'  # standard: N(0, I) | vamp: the VampPrior, a mixture of the posteriors of
  config.model.num_pseudo_inputs = 500  # ... this many learnt pseudo-inputs (vamp only; needs kl_estimator sample).
  config.model.num_exemplars = 25000  # ... | exemplar: the posteriors of this many training images a step (sample KL).

  config.train = ml_collections.ConfigDict()
  config.train.num_epochs = 60 if fashion else 75
  config.train.batch_size = 200 if fashion else 100
  config.train.optimizer = 'adam'
  config.train.learning_rate = 1e-3
  config.train.optimizer_eps = 1e-8  # adam / rmsprop epsilon (optax's default).
  config.train.lr_schedule = 'constant'  # constant | burda (3^i passes at learning_rate * 10^(-i/7))
  config.train.objective = 'elbo'  # elbo | iwae (the k-sample bound of Burda et al.)
  config.train.num_samples = 1  # k: samples per image of the objective (iwae only).
  config.train.beta = 1.0
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
  config.eval.manifold_extent = 3.0 if writeup else 0.0  # 0: the grid at prior quantiles 0.05..0.95; else +-extent.
  return config.lock()
