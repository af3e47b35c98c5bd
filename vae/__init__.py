"""Variational autoencoders on MNIST and Fashion-MNIST in JAX/Flax: data, models, losses, training, checkpoints.

`vae.load(workdir)` returns the trained model of a run (see vae/api.py); `vae.train(config, workdir)` trains one
from Python, as run.py does, and returns it (vae/launch.py).

Both are imported on first use (PEP 562), so `python -m vae.data` runs its module once, without the rest.
"""
import importlib

_EXPORTS = {'Model': 'vae.api', 'load': 'vae.api', 'train': 'vae.launch'}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name not in _EXPORTS:
    raise AttributeError(f'module vae has no attribute {name!r}')
  return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__():
  return sorted(list(globals()) + __all__)
