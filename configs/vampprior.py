"""The VampPrior code's protocol (Tomczak & Welling, AISTATS 2018; jmtomczak/vae_vampprior): the rows of a VAE under
the standard normal prior and under the VampPrior.

  python run.py --config=configs/vampprior.py:fashion --workdir=runs/vamp_fashion --sweep=seed=0,1,2
  python run.py --config=configs/vampprior.py:mnist --workdir=runs/vamp_mnist --sweep=seed=0,1,2
  python run.py --config=configs/vampprior.py:fashion_vamp --workdir=runs/vamp_fashion_vamp
  python run.py --config=configs/vampprior.py:mnist_vamp --workdir=runs/vamp_mnist_vamp

Two stochastic levels (vae/models/hierarchical.py), each row with `_vamp` for the VampPrior on z2 and `conv_` first for
the convHVAE: `fashion_hvae`, `mnist_hvae`, `fashion_hvae_vamp`, `conv_fashion_hvae`, `conv_mnist_hvae_vamp`, ...

  python run.py --config=configs/vampprior.py:fashion_hvae --workdir=runs/hvae_fashion

The exemplar prior (Norouzi, Fleet & Norouzi, NeurIPS 2020; sajadn/Exemplar-VAE), on the one-level VAE:
`fashion_exemplar`, `mnist_exemplar`.

Targets: the Exemplar VAE paper's (Norouzi, Fleet & Norouzi, NeurIPS 2020) rows, test NLL with 5000 importance
samples: "VAE, standard normal prior" 228.70 +- 0.15 on dynamically binarized Fashion-MNIST, 84.45 +- 0.12 on
dynamic MNIST; "VAE, VampPrior" (K = 500) 227.35 +- 0.05 and 82.43 +- 0.06. Two levels: HVAE 227.37 / 82.39 (standard
prior), 226.72 / 81.56 (VampPrior); convHVAE 225.38 / 80.52 and 224.67 / 79.67.

The protocol, from their code: the first 50,000 training images trained on (binarized afresh every time), the last
10,000 for validation; encoder GatedDense 784-300-300 -> mean, log-variance bounded to [-6, 2], latent 40; decoder
GatedDense 40-300-300 -> 784 Bernoulli probabilities clamped to [1e-5, 1 - 1e-5]; He-normal weights (model.name =
'gated'); loss recon + beta KL with the one-sample KL, beta = min(1, epoch / 100); Adam 5e-4 on each gradient
tensor / (its norm + 1e-7); batch 100; at most 2000 epochs, early stopping on the validation -ELBO with patience
50, the best validation epoch evaluated. The VampPrior: K = 500 pseudo-inputs clipped to [0, 1] (their
Hardtanh(0, 1)), initialised N(0.05, 0.01^2) per pixel, as their models/VAE.py does when it adds them after its
He-init loop (in the version whose models/Model.py creates them first, that loop re-initialises them He-normal).

The HVAE and convHVAE (their models/HVAE_2level.py, convHVAE_2level.py): z1 and z2 of 40 dimensions, every
network's hidden layers 300 wide, the KL of both levels by one sample, the same training; convolutions 'SAME'
padded (theirs pad k // 2 on each side, which for the stride-2 layers shifts the sampling grid by one pixel), their
kernels drawn as theirs, PyTorch's default U(+-1/sqrt(fan_in)) (their He loop sets linear layers only); the
7 x 7 x 6 features flattened channel-last (theirs channel-first: a permutation of the next dense layer's
independently drawn inputs).

The exemplar prior, from their code (models/BaseModel.py, the run configs kept in its pretrained_model/): p(z) =
(1/K) sum_k N(z; mu(x_k), sigma^2 I), mu the encoder's mean of the gray training image x_k, log sigma^2 one learnt
scalar initialised N(0, 1); in training K = 25,000 exemplars a step, drawn uniformly with replacement from the
50,000 training images and encoded with gradients, each image's own exemplar left out of its prior (masked, the
weights renormalised over the rest); evaluation over all 50,000 (no approximate nearest neighbours: their density
runs set approximate_prior=False). Everything else as the VAE rows above.

Differences, stated: validation and test are binarized once with this project's fixed JAX key, not numpy's seed
777 (the same distribution, other draws). On Fashion-MNIST seed 0's model the two test sets score 228.757 and
228.767 at 1000 IW samples, a difference of 0.01 +- 0.13 (experiments/published/binarization.py). Two smaller
ones: biases start at zero (theirs keep PyTorch's U(+-1/sqrt(fan_in)), as their He loop sets weights only), and the
validation -ELBO draws the same z noise every epoch (theirs fresh noise each time), which can move the stopping
epoch by a few epochs.
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location('default', os.path.join(os.path.dirname(__file__), 'default.py'))
default = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(default)

DATASETS = {'fashion': 'fashion_mnist', 'mnist': 'mnist'}
MODELS = {'': 'gated', 'hvae': 'hvae', 'conv_hvae': 'conv_hvae'}
# variant -> (data.name, model.name, model.prior): fashion, mnist_vamp, fashion_hvae, conv_mnist_hvae_vamp, ...
VARIANTS = {'_'.join(filter(None, ('conv' if model == 'conv_hvae' else '', data, 'hvae' if model else '', prior))):
            (DATASETS[data], MODELS[model], 'vamp' if prior else 'standard')
            for data in DATASETS for model in MODELS for prior in ('', 'vamp')}
VARIANTS.update({f'{data}_exemplar': (name, 'gated', 'exemplar') for data, name in DATASETS.items()})


def get_config(variant='fashion'):
  if variant not in VARIANTS:
    raise ValueError(f'configs/vampprior.py:{variant}: unknown variant (allowed: {", ".join(VARIANTS)})')
  config = default.get_config()
  config.data.name, config.model.name, config.model.prior = VARIANTS[variant]
  config.data.preprocessing = 'binarize_dynamic'
  config.data.validation_size = 10000  # The last 10,000 training images.
  config.model.encoder_widths = config.model.decoder_widths = (300, 300)
  config.model.activation = 'tanh'  # Read by none of these models; the runs' config.json files record it.
  config.model.latent_dim = 40  # z2's under two levels.
  if config.model.name != 'gated':
    config.model.z1_dim = 40
  config.train.num_epochs = 2000  # At most: early stopping ends it.
  config.train.learning_rate = 5e-4
  config.train.grad_norm = 'per_tensor'
  config.train.kl_estimator = 'sample'
  config.train.beta_schedule, config.train.warmup_epochs = 'linear', 100
  config.train.early_stopping_patience = 50
  config.train.checkpoint_every_epochs, config.train.keep_checkpoints = 5, 1
  config.eval.iw_samples = 5000
  return config.lock()
