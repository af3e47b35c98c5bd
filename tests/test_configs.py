"""Every config loads, has the keys other tools rely on, refuses misspelt keys, and takes typed overrides; the configs
derived from configs/default.py keep every value they had before (tests/config_snapshot.json)."""
import importlib.util
import json
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
NEW = ('images', 'cifar10', 'celeba64')  # The natural-image configs, written after the snapshot.
# get_config(variant).to_dict() of every variant of every config file ('file.py' alone: get_config()), as JSON, written
# before the configs were derived from configs/default.py.
with open(os.path.join(ROOT, 'tests', 'config_snapshot.json')) as f:
  SNAPSHOT = json.load(f)
REQUIRED = ('seed', 'data.name', 'data.dir', 'data.classes', 'model.latent_dim', 'train.num_epochs',
            'train.batch_size', 'train.learning_rate', 'train.beta', 'eval.iw_samples')


def load(name, variant=None, path=None):
  spec = importlib.util.spec_from_file_location(name, path or os.path.join(ROOT, 'configs', f'{name}.py'))
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
    out.update(_flat(v, f'{prefix}{k}.') if isinstance(v, (ml_collections.ConfigDict, dict)) else {prefix + k: v})
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


def _snapshotted(entry):
  """The config a snapshot entry ('file.py' or 'file.py:variant') names, flat, as JSON holds it (tuples as lists)."""
  name, _, variant = entry.partition(':')
  return _flat(json.loads(json.dumps(load(name[:-3], variant or None).to_dict())))


@pytest.mark.parametrize('entry', sorted(SNAPSHOT))
def test_config_keeps_its_snapshot_values(entry):
  """Every key a variant had keeps its value (new keys may come): a changed value would make a run's config.json
  another experiment's, and its resume would be refused."""
  before, after = _flat(SNAPSHOT[entry]), _snapshotted(entry)
  assert {k: (v, after.get(k, 'absent')) for k, v in before.items() if after.get(k, 'absent') != v} == {}


@pytest.mark.parametrize('entry', sorted(SNAPSHOT) + [f'{n}.py' for n in NEW])
def test_configs_set_only_default_keys(entry):
  """default.py holds every key: a config that set a key of its own (a misspelling) would add it."""
  assert set(_snapshotted(entry)) == set(_flat(load('default')))


def test_default_is_unlocked_and_configs_locked():
  assert not load('default').is_locked
  for entry in list(SNAPSHOT) + [f'{n}.py' for n in NEW]:
    name, _, variant = entry.partition(':')
    assert load(name[:-3], variant or None).is_locked, entry


@pytest.mark.parametrize('name', sorted({entry.partition(':')[0][:-3] for entry in SNAPSHOT}))
def test_unknown_variant_is_refused(name):
  with pytest.raises(ValueError, match=f'^configs/{name}.py:nope: unknown variant [(]allowed: '):
    load(name, 'nope')


@pytest.mark.parametrize('name', NEW)
def test_natural_image_configs(name):
  config = load(name)
  assert (config.model.name, config.model.likelihood, config.model.num_mixtures) == ('conv', 'discretized_logistic', 10)
  assert config.model.image_shape is None  # Taken from the data.
  assert (config.data.source, config.data.name, config.data.image_size) == {
      'images': ('folder', 'images', None), 'cifar10': ('tfds', 'cifar10', None),
      'celeba64': ('tfds', 'celeb_a', 64)}[name]
  with pytest.raises(AttributeError):
    config.model.num_mixture = 5  # Locked: a new key is refused.


@pytest.mark.parametrize('source,where', [('npz', 'my_images.npz'), ('folder', 'my_pngs')])
def test_images_commands_parse(source, where, monkeypatch):
  """The two commands of configs/images.py's docstring, as run.py parses them (from the project's root)."""
  monkeypatch.chdir(ROOT)
  config = _parse(['--config=configs/images.py', f'--config.data.source={source}', f'--config.data.dir={where}'])
  assert (config.data.source, config.data.dir) == (source, where)


def test_configs_load_from_any_folder(tmp_path, monkeypatch):
  """A config finds default.py (and cifar10.py images.py) next to itself, whatever the working folder and however
  the config's path is written: vae.launch.load_config and config_flags load it by that path."""
  monkeypatch.chdir(tmp_path)
  for name, variant in (('vampprior', 'conv_mnist_hvae_vamp'), ('cifar10', None)):
    config = load(name, variant, os.path.relpath(os.path.join(ROOT, 'configs', f'{name}.py')))
    assert config.model.name == ('conv_hvae' if variant else 'conv')
  config = _parse([f'--config={os.path.join(ROOT, "configs", "celeba64.py")}', '--config.data.image_size=32'])
  assert config.data.image_size == 32
