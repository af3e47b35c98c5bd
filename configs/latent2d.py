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
import importlib.util
import os

_spec = importlib.util.spec_from_file_location('default', os.path.join(os.path.dirname(__file__), 'default.py'))
default = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(default)

VARIANTS = ('mnist', 'fashion', 'writeup', 'writeup20')


def get_config(variant='mnist'):
  if variant not in VARIANTS:
    raise ValueError(f'configs/latent2d.py:{variant}: unknown variant (allowed: {", ".join(VARIANTS)})')
  config = default.get_config()
  config.model.latent_dim = 20 if variant == 'writeup20' else 2
  if variant == 'fashion':
    config.model.encoder_widths = (400, 200, 100, 20)
    config.model.decoder_widths = (20, 100, 200, 400)
    config.model.likelihood = 'gaussian'  # sigma = 1: -ELBO is SSE / 2 + KL + 784 log(2 pi) / 2.
    config.train.num_epochs = 60
    config.train.batch_size = 200
  else:
    config.data.name = 'mnist'
    config.model.encoder_widths = config.model.decoder_widths = (500, 500)
    config.model.activation = 'softplus'
    config.train.num_epochs = 75
  if variant.startswith('writeup'):  # TensorFlow's split: the first 5,000 training images held out.
    config.data.validation_size, config.data.validation_images = 5000, 'first'
    config.model.name = 'experiments/seed_writeups/models.py:XavierDenseVAE'
    config.eval.manifold_extent = 3.0
  return config.lock()
