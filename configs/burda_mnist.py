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

`two_layer`: two stochastic layers (vae/models/hierarchical.py), as their section 5 describes them: x -> 200-200 ->
z1 of 100, z1 -> 100-100 -> z2 of 50, tanh, the generative networks mirrored; the same training and evaluation, and
the decoder's output bias at the logit of the training mean, as their code (`model.output_bias='data_mean'`): with
zero it trained 7 nats worse by pass 40 and kept 1 of z2's 50 units (experiments/burda_mnist/README.md).

Differences from their code (yburda/iwae, which their README says produced the numbers), stated: the paper's Adam
(beta1 0.9, second moment from zero; the code's beta1 0.99, from ones), the loss a mean over the batch (theirs a
sum, so their eps 1e-4 is 5e-6 on ours); std = exp(linear / 2) (theirs exp(linear)); lecun-normal weights and zero
biases (theirs Glorot-uniform, and the decoder's output bias at the logit of the training mean: the
one-layer rows start it at zero, the two-layer ones as theirs); all 60,000 training
images, as the paper says (the code holds out 400); the one-layer VAE's KL in closed form (theirs sampled); batches
reshuffled each pass; the schedule's rates unrounded.
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location('default', os.path.join(os.path.dirname(__file__), 'default.py'))
default = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(default)

VARIANTS = {'vae': 1, 'iwae5': 5, 'iwae50': 50, 'quick': 1, 'fashion': 1, 'two_layer': 1,
            'two_layer_iwae50': 50}  # variant: k


def get_config(variant='vae'):
  if variant not in VARIANTS:
    raise ValueError(f'configs/burda_mnist.py:{variant}: unknown variant (allowed: {", ".join(VARIANTS)})')
  config = default.get_config()
  config.data.name = 'fashion_mnist' if variant == 'fashion' else 'mnist'
  config.data.preprocessing = 'binarize_dynamic'
  config.model.encoder_widths = config.model.decoder_widths = (200, 200)
  config.model.activation = 'tanh'
  config.model.latent_dim = 50
  config.train.num_epochs = 3280  # The schedule's passes over the training set.
  config.train.batch_size = 20
  config.train.optimizer_eps = 1e-4
  config.train.lr_schedule = 'burda'
  config.train.objective = 'elbo' if VARIANTS[variant] == 1 else 'iwae'
  config.train.num_samples = VARIANTS[variant]
  config.train.checkpoint_every_epochs = 10
  config.eval.iw_samples = 5000
  if variant.startswith('two_layer'):
    config.model.name = 'two_layer'
    config.model.z1_dim = 100
    config.model.z1_widths = (100, 100)
    config.train.kl_estimator = 'sample'  # z1 is drawn before z2 (bottom-up): its KL has no closed form given z2.
    config.model.output_bias = 'data_mean'  # Their code's; without it z2 collapses (experiments/burda_mnist/).
  if variant == 'quick':  # A few passes over a subset: a smoke test.
    config.data.max_train_images, config.data.max_test_images = 2000, 500
    config.train.num_epochs, config.train.checkpoint_every_epochs = 4, 1
    config.eval.batch_size, config.eval.iw_samples, config.eval.manifold_size = 100, 50, 5
  return config.lock()
