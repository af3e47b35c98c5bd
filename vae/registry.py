"""Which model a config's `model.name` names: a built-in factory, or one of one's own ('path/to/file.py:Name',
'package.module:Name'), and the copy of an own model's file a run keeps in its workdir. Nothing of the project's is
imported here until a name is resolved (vae/models/ imports this module).
"""
import importlib
import importlib.util
import os

# The built-in models: `model.name` -> where its factory (model_config, *, rngs) -> module lives, named as one's own
# models are and imported when first named.
FACTORIES = {'dense': 'vae.models.dense:dense_vae', 'conv': 'vae.models.conv:conv_vae',
             'gated': 'vae.models.gated:gated_vae', 'hvae': 'vae.models.hierarchical:gated_hvae',
             'conv_hvae': 'vae.models.hierarchical:conv_hvae',
             'two_layer': 'vae.models.hierarchical:two_layer'}
TWO_LEVELS = ('hvae', 'conv_hvae', 'two_layer')  # The built-in models of two levels: z1 of model.z1_dim too.
_LOADED = {}  # Absolute file path -> its module: one class object per file, however often a config names it.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # The project's root.


def model_file(name):
  """The absolute path of the file a `model.name` of the form 'path/to/file.py:Name' names (from the working
  folder, else from the project's root); None for other names or a file not found."""
  where, _, _ = name.rpartition(':')
  if not where.endswith('.py'):
    return None
  return next((p for p in (os.path.abspath(where), os.path.join(ROOT, where)) if os.path.isfile(p)), None)


MODEL_FILE_DIR = 'model_file'  # WORKDIR/model_file/<file>.py: an own model's file as it was when training began.


def kept_model_name(name, workdir):
  """`name` ('path/to/file.py:Name') naming instead the copy of its file kept in WORKDIR/model_file/ when the run
  began, if there is one; any other name as it is."""
  where, _, attribute = name.rpartition(':')
  copy = os.path.join(os.path.abspath(workdir), MODEL_FILE_DIR, os.path.basename(where))
  return f'{copy}:{attribute}' if where.endswith('.py') and os.path.isfile(copy) else name


def factory(name):
  """The model factory `name` names: a built-in (FACTORIES), or 'path/to/file.py:Name' (a path from the working
  folder, else from the project's root) or 'package.module:Name'; ValueError saying why it cannot be found.

  `Name(model_config, rngs=rngs)` returns the module: a `VAE(encoder, decoder)` of one's own encoder and decoder, or
  any nnx.Module with the same four methods (encode(x) -> (mean, logvar), decode(z) -> (N, H*W*P), __call__(x, key),
  prior() -> (means, logvars) of its mixture components).
  """
  if name in FACTORIES:
    return factory(FACTORIES[name])
  where, sep, attribute = name.rpartition(':')
  if not sep or not where or not attribute:
    raise ValueError(f'unknown (built-in: {", ".join(FACTORIES)}; or your own, as path/to/file.py:Name or '
                     f'package.module:Name)')
  if where.endswith('.py'):
    path = model_file(name)
    if path is None:
      raise ValueError(f'{where}: no such file (from {os.getcwd()} or {ROOT})')
    if path not in _LOADED:
      spec = importlib.util.spec_from_file_location(f'vae_user_model_{len(_LOADED)}', path)
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      _LOADED[path] = module
    module = _LOADED[path]
  else:
    try:
      module = importlib.import_module(where)
    except ImportError as e:
      raise ValueError(f'cannot import {where} ({e})') from None
  if not callable(getattr(module, attribute, None)):
    raise ValueError(f'{where} defines no {attribute}')
  return getattr(module, attribute)
