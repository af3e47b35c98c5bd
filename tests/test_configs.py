"""Every config loads, has the keys other tools rely on, refuses misspelt keys, and takes typed overrides."""
import importlib.util
import os

import ml_collections
import pytest
from absl import flags
from ml_collections import config_flags

from conftest import ROOT

CONFIGS = [('fashion_dense', None), ('mnist18_conv', None), ('latent2d', None), ('latent2d', 'fashion'),
           ('burda_mnist', None), ('burda_mnist', 'iwae50'), ('burda_mnist', 'quick'), ('burda_mnist', 'fashion'),
           ('mnist18_conv', 'fashion'), ('fashion_dense', 'writeup'), ('fashion_mse', None),
           ('vampprior', 'fashion'), ('vampprior', 'mnist'), ('vampprior', 'mnist_vamp'), ('fashion_mse', 'writeup'),
           ('latent2d', 'writeup'), ('latent2d', 'writeup20'), ('mnist18_conv', 'writeup')]
REQUIRED = ('seed', 'data.name', 'data.dir', 'data.classes', 'model.latent_dim', 'train.num_epochs',
            'train.batch_size', 'train.learning_rate', 'train.beta', 'eval.iw_samples')


def load(name, variant=None):
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config() if variant is None else module.get_config(variant)


def get(config, dotted):
  for part in dotted.split('.'):
    config = config[part]
  return config


@pytest.mark.parametrize('name,variant', CONFIGS)
def test_config_has_required_keys(name, variant):
  config = load(name, variant)
  for key in REQUIRED:
    get(config, key)  # KeyError if absent.
  assert config.model.latent_dim > 0 and config.train.num_epochs > 0


def test_configs_share_one_key_set():
  key_sets = [set(_flat(load(n, v))) for n, v in CONFIGS]
  assert all(s == key_sets[0] for s in key_sets)


def test_source_settings():
  dense = load('fashion_dense')
  assert (dense.model.encoder_widths, dense.model.latent_dim, dense.train.batch_size, dense.train.num_epochs) == (
      (512, 256), 128, 100, 15)
  conv = load('mnist18_conv')
  assert conv.data.classes == (1, 8) and conv.train.optimizer == 'rmsprop' and conv.train.batch_size == 16
  assert conv.train.beta == pytest.approx(0.196)
  mse = load('fashion_mse')
  assert (mse.model.encoder_widths, mse.model.latent_dim, mse.model.likelihood, mse.train.batch_size,
          mse.train.num_epochs) == ((400,), 20, 'gaussian', 128, 10) and mse.model.sigma ** 2 == pytest.approx(0.5)
  fashion2d = load('latent2d', 'fashion')
  assert fashion2d.model.likelihood == 'gaussian' and fashion2d.model.sigma == 1.0
  with pytest.raises(ValueError, match='unknown variant'):
    load('latent2d', 'cifar')


def _flat(config, prefix=''):
  """{dotted key: value} of a nested ConfigDict."""
  out = {}
  for k, v in config.items():
    out.update(_flat(v, f'{prefix}{k}.') if isinstance(v, ml_collections.ConfigDict) else {prefix + k: v})
  return out


@pytest.mark.parametrize('name,base,changed', [
    ('fashion_dense', 'default', {'data.validation_size': 5000, 'data.validation_images': 'first',
                                  'model.name': 'experiments/seed_writeups/models.py:TanhHeadVAE'}),
    ('burda_mnist', 'vae', {'data.name': 'fashion_mnist'}),
    ('mnist18_conv', 'mnist18', {'data.name': 'fashion_mnist', 'data.classes': None, 'model.latent_dim': 16,
                                 'train.num_epochs': 30, 'train.batch_size': 100, 'train.optimizer': 'adam',
                                 'train.beta': 1.0})])
def test_fashion_variants_change_only_what_they_say(name, base, changed):
  """The variants (Fashion-MNIST baselines, the write-up's own setting) differ from their base in exactly the
  documented keys."""
  before, after = _flat(load(name, base)), _flat(load(name, 'writeup' if name == 'fashion_dense' else 'fashion'))
  assert {k: v for k, v in after.items() if before[k] != v} == changed


def _parse(argv):
  """Parses config flags as run.py does, in a fresh FlagValues."""
  values = flags.FlagValues()
  argv = ['prog'] + argv
  config_flags.DEFINE_config_file('config', None, 'config', flag_values=values, lock_config=True, sys_argv=argv)
  values(argv)
  return values.config


def test_overrides_including_typed_placeholder():
  path = os.path.join(ROOT, 'configs', 'fashion_dense.py')
  config = _parse([f'--config={path}', "--config.data.classes=(1, 8)", '--config.train.num_epochs=2',
                   '--config.model.encoder_widths=(64,32)'])
  assert config.data.classes == (1, 8) and config.train.num_epochs == 2 and config.model.encoder_widths == (64, 32)
  config = _parse([f'--config={os.path.join(ROOT, "configs", "latent2d.py")}:fashion'])
  assert config.data.name == 'fashion_mnist'


def test_misspelt_override_is_refused():
  path = os.path.join(ROOT, 'configs', 'fashion_dense.py')
  with pytest.raises((AttributeError, KeyError), match='Did you mean "num_epochs"'):
    _parse([f'--config={path}', '--config.train.num_epoch=2'])
