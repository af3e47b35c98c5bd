"""Training from Python, for notebooks: `model = vae.train('configs/fashion_dense.py', 'runs/fd', seed=1)`.

It runs exactly what `python run.py --config=... --workdir=...` runs (train_and_evaluate, resuming a workdir) and
returns the trained model as `vae.load` gives it.
"""
import importlib.util
import os

from absl import logging

from vae import api, progress, sweeps, training
from vae.errors import VaeError

SUMMARY = ('test/neg_elbo', 'test/nll_iw', 'test/active_units', 'latent/linear_probe_acc')  # Shown at the end.


def train(config, workdir, overrides=None, sweep=(), mesh=None, verbose=True, **keywords):
  """Trains `config` in `workdir` and returns the model (for a `sweep`, the list of the members' models, None in
  the place of a member that diverged).

  `config`: a ConfigDict, or a config file 'configs/x.py[:variant]'. `overrides`: {'train.num_epochs': 2, ...};
  keywords set keys too, a double underscore for each dot (train__num_epochs=2). `sweep`: run.py's --sweep
  strings ('seed=0,1,2'); `mesh`: run.py's --mesh. `verbose`: one line per epoch and the evaluation's progress, as
  run.py logs them (the libraries' own lines left out), and the results; False: warnings only.
  """
  config = configure(config, {**(overrides or {}), **{k.replace('__', '.'): v for k, v in keywords.items()}})
  members = sweeps.member_configs(config, list(sweep)) if sweep else None
  with progress.shown(verbose):
    results = training.train_and_evaluate(config, workdir, members, mesh)
    for i, result in enumerate(results):
      where = workdir if members is None else os.path.join(training.workdirs.members_of(workdir), str(i))
      if 'diverged' in result:  # The others trained on, as run.py's do; the sweep's summary lists it too.
        logging.warning('%s diverged (%s); its diverged.json says where', where, result['diverged'])
      else:
        logging.info('%s: %s', where, ', '.join(f'{k} {result[k]:.2f}' for k in SUMMARY if k in result))
  if members is None:
    return api.load(workdir)
  return [None if 'diverged' in result else api.load(os.path.join(training.workdirs.members_of(workdir), str(i)))
          for i, result in enumerate(results)]


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
