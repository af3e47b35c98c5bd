"""Burda, Grosse & Salakhutdinov (2016), Table 1, one stochastic layer: VAE and IWAE on dynamically binarized MNIST.

  python run.py --config=configs/burda_mnist.py --workdir=runs/burda_vae              # VAE (k = 1), target 86.76
  python run.py --config=configs/burda_mnist.py:iwae5 --workdir=runs/burda_iwae5      # IWAE k = 5, target 85.54
  python run.py --config=configs/burda_mnist.py:iwae50 --workdir=runs/burda_iwae50    # IWAE k = 50, target 84.78
  python run.py --config=configs/burda_mnist.py:quick --workdir=runs/burda_quick      # a few passes: smoke test
  python run.py --config=configs/burda_mnist.py:fashion --workdir=runs/burda_fashion  # the VAE on Fashion-MNIST
  python run.py --config=configs/burda_mnist.py:two_layer --workdir=runs/burda_two_layer  # 2 levels, target 85.33
  python run.py --config=configs/burda_mnist.py:two_layer_iwae50 --workdir=runs/burda_two_layer_iwae50  # 82.90

Encoder 784-200-200 (tanh) -> 50 latent, decoder 50-200-200 (tanh) -> 784 Bernoulli logits; Adam (0.9, 0.999,
eps 1e-4), batch 20; the paper's schedule: for i = 0..7, 3^i passes at learning rate 0.001 * 10^(-i/7) (3280
passes); evaluation: the importance-weighted NLL with 5000 samples on the 10,000 test images (binarized once).
The targets are the paper's test NLL in nats. `fashion` is the VAE row's setting on dynamically binarized
Fashion-MNIST (experiments/fashion_baseline/). Rerunning a command resumes it: the run is hours on a CPU.

`two_layer`: two stochastic layers (vae/hierarchical.py), as their section 5 describes them: x -> 200-200 -> z1 of
100, z1 -> 100-100 -> z2 of 50, tanh, the generative networks mirrored; the same training and evaluation.

Differences from their code (yburda/iwae, which their README says produced the numbers), stated: the paper's Adam
(beta1 0.9, second moment from zero; the code's beta1 0.99, from ones), the loss a mean over the batch (theirs a
sum, so their eps 1e-4 is 5e-6 on ours); std = exp(linear / 2) (theirs exp(linear)); lecun-normal weights and zero
biases (theirs Glorot-uniform, the decoder's output bias at the logit of the training mean); all 60,000 training
images, as the paper says (the code holds out 400); the one-layer VAE's KL in closed form (theirs sampled); batches
reshuffled each pass; the schedule's rates unrounded.
"""
import ml_collections
from ml_collections import config_dict

VARIANTS = {'vae': 1, 'iwae5': 5, 'iwae50': 50, 'quick': 1, 'fashion': 1, 'two_layer': 1,
            'two_layer_iwae50': 50}  # variant: k


def get_config(variant='vae'):
  if variant not in VARIANTS:
    raise ValueError(f'configs/burda_mnist.py:{variant}: unknown variant (allowed: {", ".join(VARIANTS)})')
  quick = variant == 'quick'
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = 'fashion_mnist' if variant == 'fashion' else 'mnist'
  config.data.source = 'idx'  # idx (the canonical files) | csv (Kaggle's, in data.dir) | tfds (tfds.data_source)
  config.data.dir = config_dict.placeholder(str)
  config.data.classes = config_dict.placeholder(tuple)
  config.data.preprocessing = 'binarize_dynamic'
  config.data.max_train_images = config_dict.placeholder(int) if not quick else 2000
  config.data.max_test_images = config_dict.placeholder(int) if not quick else 500
  config.data.validation_size = 0  # Held out of training, scored each epoch.
  config.data.validation_images = 'last'  # first | last (in file order).

  config.model = ml_collections.ConfigDict()
  config.model.name = 'dense'
  config.model.encoder_widths = (200, 200)
  config.model.decoder_widths = (200, 200)
  config.model.activation = 'tanh'
  config.model.latent_dim = 50
  config.model.likelihood = 'bernoulli'
  config.model.sigma = 1.0
  config.model.conv_impl = 'auto'  # auto | xla | patch, conv models only; auto: the faster here (vae/conv.py).
  config.model.prior = 'standard'  # standard: N(0, I) | vamp: the VampPrior, a mixture of the posteriors of
  config.model.num_pseudo_inputs = 500  # ... this many learnt pseudo-inputs (vamp only; needs kl_estimator sample).
  config.model.num_exemplars = 25000  # ... | exemplar: the posteriors of this many training images a step (sample KL).
  if variant.startswith('two_layer'):
    config.model.name = 'two_layer'  # Two stochastic levels: z2 of latent_dim on top of z1 of z1_dim.
    config.model.z1_dim = 100
    config.model.z1_widths = (100, 100)  # Between z1 and z2, both ways.

  config.train = ml_collections.ConfigDict()
  config.train.num_epochs = 3280 if not quick else 4  # Passes over the training set.
  config.train.batch_size = 20
  config.train.optimizer = 'adam'
  config.train.optimizer_eps = 1e-4
  config.train.learning_rate = 1e-3
  config.train.lr_schedule = 'burda'  # 3^i passes at learning_rate * 10^(-i/7), i = 0, 1, ...
  config.train.objective = 'elbo' if VARIANTS[variant] == 1 else 'iwae'
  config.train.num_samples = VARIANTS[variant]  # k: samples per image of the training objective.
  config.train.beta = 1.0
  config.train.beta_schedule = 'constant'  # constant | linear: beta x min(1, epoch / warmup_epochs).
  config.train.warmup_epochs = 0
  config.train.grad_norm = 'none'  # none | per_tensor: each gradient tensor / (its L2 norm + 1e-7) first.
  config.train.kl_estimator = 'analytic'  # analytic | sample: log q(z|x) - log p(z) at the decoded z.
  if variant.startswith('two_layer'):
    config.train.kl_estimator = 'sample'  # z1 is drawn before z2 (bottom-up): its KL has no closed form given z2.
  config.train.matmul_precision = 'float32'  # float32 | tensorfloat32 | bfloat16 | default: the step's
  # matmuls; full float32 reproduces the CPU's numbers on a GPU (docs/config.md). Scores are float32 always.
  config.train.scan_unroll = 1  # Steps per iteration of the epoch's lax.scan (speed only; docs/performance.md).
  config.train.early_stopping_patience = 0  # 0: off; else stop after more epochs than this without a better
  # validation -ELBO (needs data.validation_size) and report the best validation epoch.
  config.train.checkpoint_every_epochs = 1 if quick else 10
  config.train.keep_checkpoints = 3

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 1000 if not quick else 100
  config.eval.iw_samples = 5000 if not quick else 50
  config.eval.manifold_size = 20 if not quick else 5
  config.eval.manifold_extent = 0.0  # 0: the grid at prior quantiles 0.05..0.95; else linear, +-extent.
  return config.lock()
