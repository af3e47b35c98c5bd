"""Training from Python, for notebooks: `model = vae.train('configs/fashion_dense.py', 'runs/fd', seed=1)`.

It runs exactly what `python run.py --config=... --workdir=...` runs (train_and_evaluate, resuming a workdir) and
returns the trained model as `vae.load` gives it.
"""
import importlib.util
import os

from vae import api, sweeps
from vae import training
from vae.errors import VaeError


def train(config, workdir, overrides=None, sweep=(), mesh=None, **keywords):
  """Trains `config` in `workdir` and returns the model (for a `sweep`, the list of the members' models).

  `config`: a ConfigDict, or a config file 'configs/x.py[:variant]'. `overrides`: {'train.num_epochs': 2, ...};
  keywords set keys too, a double underscore for each dot (train__num_epochs=2). `sweep`: run.py's --sweep
  strings ('seed=0,1,2'); `mesh`: run.py's --mesh.
  """
  config = configure(config, {**(overrides or {}), **{k.replace('__', '.'): v for k, v in keywords.items()}})
  members = sweeps.member_configs(config, list(sweep)) if sweep else None
  training.train_and_evaluate(config, workdir, members, mesh)
  if members is None:
    return api.load(workdir)
  return [api.load(os.path.join(training.workdirs.members_of(workdir), str(i))) for i in range(len(members))]


def configure(config, overrides):
  """A copy of `config` (a ConfigDict, or a config file 'configs/x.py[:variant]') with {dotted key: value} set."""
  config = load_config(config) if isinstance(config, str) else config.copy_and_resolve_references()
  for key, value in overrides.items():
    *parents, last = key.split('.')
    node = config
    try:
      for part in parents:
        node = node[part]
      if last not in node:
        raise KeyError(last)
      node[last] = value
    except (KeyError, AttributeError):
      raise VaeError(f'{key}: no such config key') from None
    except TypeError as e:
      raise VaeError(f'{key}={value!r}: {e}') from None
  return config


def load_config(spec):
  """get_config(variant) of the config file `spec` ('configs/x.py' or 'configs/x.py:variant')."""
  path, _, variant = spec.partition(':')
  if not os.path.isfile(path):
    raise VaeError(f'{path}: no such config file')
  module_spec = importlib.util.spec_from_file_location(f'vae_config_{os.path.basename(path)[:-3]}', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(variant) if variant else module.get_config()
