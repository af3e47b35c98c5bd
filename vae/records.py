"""The files a run leaves in its workdir: config.json, metrics.jsonl (one object per epoch), results.json.

Every whole-file write goes to a temporary file first and is renamed into place, so a kill never leaves half a file.
"""
import json
import os
import tempfile


def write_json(path, obj):
  """Writes `obj` as JSON to `path` atomically."""
  write_text(path, json.dumps(obj, indent=2, sort_keys=True) + '\n')


def write_text(path, text):
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or '.', prefix='.' + os.path.basename(path))
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    os.remove(tmp)
    raise


def read_jsonl(path):
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def append_jsonl(path, obj):
  with open(path, 'a') as f:
    f.write(json.dumps(obj, sort_keys=True) + '\n')
    f.flush()
    os.fsync(f.fileno())


def truncate_metrics(path, last_epoch):
  """Keeps the records of epochs <= `last_epoch`: those after the checkpoint a run resumes from are redone."""
  records = [r for r in read_jsonl(path) if r['epoch'] <= last_epoch]
  write_text(path, ''.join(json.dumps(r, sort_keys=True) + '\n' for r in records))
  return records
