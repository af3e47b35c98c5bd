"""The files a run leaves in its workdir: config.json, metrics.jsonl (one object per epoch), results.json.

Every whole-file write goes to a temporary file first and is renamed into place, so a kill never leaves half a file.
"""
import json
import os
import secrets

from vae.errors import VaeError


def write_json(path, obj):
  """Writes `obj` as JSON to `path` atomically."""
  write_text(path, json.dumps(obj, indent=2, sort_keys=True) + '\n')


# Config keys added after workdirs were written, with the value their absence means (a run's config.json, the
# config its results.json records).
ADDED_KEYS = {'model.prior': 'standard', 'model.num_pseudo_inputs': 500, 'eval.manifold_extent': 0.0,
              'train.matmul_precision': 'float32', 'train.scan_unroll': 1, 'model.conv_impl': 'auto',
              'model.num_exemplars': 25000}


def with_added_keys(config):
  """A config dict (config.json's) with each ADDED_KEYS key it lacks set to what its absence meant."""
  for dotted, value in ADDED_KEYS.items():
    *sections, name = dotted.split('.')
    node = config
    for section in sections:
      node = node.setdefault(section, {})
    node.setdefault(name, value)
  return config


def write_text(path, text):
  """Writes `text` to `path` atomically; raises VaeError if it cannot (the old file, if any, is left as it was)."""
  try:
    fd, tmp = _create_temporary(path)
  except OSError as e:
    raise VaeError(f'{path}: cannot write ({e.strerror or e})') from None
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException as e:
    os.remove(tmp)
    if isinstance(e, OSError):
      raise VaeError(f'{path}: cannot write ({e.strerror or e})') from None
    raise


def _create_temporary(path):
  """A new empty file beside `path`, made as `open(path, 'w')` would make it: mode 0o666 less the umask.

  Not tempfile.mkstemp, whose 0600 would keep colleagues on a shared file system from reading the records. The kernel
  applies the umask (or the folder's default ACL) to the mode given here, so the process's umask is never touched.
  """
  folder, name = os.path.split(path)
  while True:
    tmp = os.path.join(folder or '.', f'.{name}{secrets.token_hex(4)}')
    try:
      return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
    except FileExistsError:
      continue


def read_json(path):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise VaeError(f'{path}: cannot read ({getattr(e, "strerror", None) or e})') from None


def read_jsonl(path):
  """The records of `path`; a last line without its newline (a run killed mid-append) is dropped."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.read().split('\n')
  try:
    return [json.loads(line) for line in lines[:-1] if line.strip()]
  except ValueError as e:
    raise VaeError(f'{path}: corrupt record ({e})') from None


def append_jsonl(path, obj):
  try:
    with open(path, 'a') as f:
      f.write(json.dumps(obj, sort_keys=True) + '\n')
      f.flush()
      os.fsync(f.fileno())
  except OSError as e:
    raise VaeError(f'{path}: cannot write ({e.strerror or e})') from None


def truncate_metrics(path, last_epoch):
  """Keeps the records of epochs <= `last_epoch`: those after the checkpoint a run resumes from are redone."""
  records = [r for r in read_jsonl(path) if r['epoch'] <= last_epoch]
  write_text(path, ''.join(json.dumps(r, sort_keys=True) + '\n' for r in records))
  return records


def flatten(tree, prefix=''):
  """A nested dict (a config's, results.json's) as {dotted key: leaf}."""
  flat = {}
  for key, value in tree.items():
    flat.update(flatten(value, f'{prefix}{key}.') if isinstance(value, dict) else {prefix + key: value})
  return flat
