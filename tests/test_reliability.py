"""What docs/reliability.md promises, tried through the CLI as a user meets it.

Runs killed with SIGKILL at several moments and resumed end bit-identical to an uninterrupted run; corrupt
checkpoints are set aside; a different model's workdir, a non-finite loss, a full disk and every kind of bad config
value end with one line on stderr, exit code 2, and nothing lost.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import DENSE, LONG, ROOT, read_json, read_jsonl, run_cli
from vae import records


def snapshot(workdir):
  """{relative path: bytes} of every file under `workdir`: to show that a refused run changed nothing."""
  out = {}
  for path in glob.glob(os.path.join(workdir, '**'), recursive=True):
    if os.path.isfile(path):
      with open(path, 'rb') as f:
        out[os.path.relpath(path, workdir)] = f.read()
  return out


def assert_refused(result, *fragments):
  """Exit code 2, no traceback, and a last stderr line `error: ...` holding each fragment."""
  assert result.returncode == 2, result.stderr[-2000:]
  assert 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error: '), last
  for fragment in fragments:
    assert fragment in last, last
  return last


def same_epochs(a, b):
  """metrics.jsonl records agree on every metric (timings aside)."""
  assert [{k: v for k, v in r.items() if '/' in k or k in ('epoch', 'step')} for r in read_jsonl(a)] == [
      {k: v for k, v in r.items() if '/' in k or k in ('epoch', 'step')} for r in read_jsonl(b)]


def final_params(workdir):
  import vae  # pylint: disable=g-import-not-at-top
  return jax.tree.leaves(jax.device_get(vae.load(workdir).params))


# --- Exact resume after SIGKILL --------------------------------------------------------------------------------

# Epochs long enough (50 steps) that a kill lands inside one; three of them, a checkpoint after each; the batches split
# over 2 devices. The reference is the same command uninterrupted (conftest.long_run).
KILL_ARGS = (*LONG, '--num_cpu_devices=2')


def _lines(path):
  return len(read_jsonl(path)) if os.path.exists(path) else 0


def _saving(workdir):
  folder = os.path.join(workdir, 'checkpoints')
  return os.path.isdir(folder) and any('tmp' in name for name in os.listdir(folder))


def _evaluating(workdir):
  folder = os.path.join(workdir, 'figures')
  return os.path.isdir(folder) and bool(os.listdir(folder))


def _checkpointed(workdir, epoch):
  return os.path.isdir(os.path.join(workdir, 'checkpoints', str(epoch)))  # Orbax renames it there once complete.


KILL_POINTS = {
    # During epoch 2: once epoch 1's checkpoint is complete (its asynchronous save overlaps epoch 2's compute).
    'mid_epoch': (lambda w: _checkpointed(w, 1), 0.0),
    # While Orbax writes a checkpoint's temporary folder (or, if that is too quick to see, right after epoch 2).
    'mid_checkpoint': (lambda w: _saving(w) or _lines(os.path.join(w, 'metrics.jsonl')) >= 2, 0.0),
    # While the final evaluation writes its figures.
    'mid_evaluation': (_evaluating, 0.0),
}


def _kill_at(point, workdir, log_path):
  """Starts the run in `workdir` and SIGKILLs it at `point`."""
  condition, delay = KILL_POINTS[point]
  args = [sys.executable, os.path.join(ROOT, 'run.py'), *KILL_ARGS, f'--workdir={workdir}']
  with open(log_path, 'w') as log:
    proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=log)
    deadline = time.monotonic() + 300
    while not condition(workdir):
      assert proc.poll() is None, f'the run ended before the kill point {point}'
      assert time.monotonic() < deadline
      time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  assert proc.returncode == -signal.SIGKILL
  assert not os.path.exists(os.path.join(workdir, 'results.json')), point  # Killed before the run was complete.


# Each sequence of kills, then the same command once more. A run killed mid-checkpoint is resumed and killed again
# mid-evaluation (a point only the final evaluation reaches, whatever the run did before): one run fewer.
@pytest.mark.parametrize('points', [('mid_epoch',), ('mid_checkpoint', 'mid_evaluation')], ids='+'.join)
def test_sigkill_then_rerun_is_bit_identical(points, long_run, tmp_path):
  workdir = str(tmp_path)
  for point in points:
    _kill_at(point, workdir, tmp_path.parent / f'{point}.log')
  lines = _lines(os.path.join(workdir, 'metrics.jsonl'))
  rerun = run_cli(*KILL_ARGS, f'--workdir={workdir}')  # The same command again.
  if points == ('mid_epoch',):  # Killed inside epoch 2, so the rerun resumes from epoch 1's checkpoint.
    assert lines == 1 and 'resuming from the checkpoints of epoch 1 ' in rerun.stderr, (lines, rerun.stderr[-2000:])
  assert read_json(os.path.join(workdir, 'results.json')) == read_json(os.path.join(long_run, 'results.json'))
  same_epochs(os.path.join(workdir, 'metrics.jsonl'), os.path.join(long_run, 'metrics.jsonl'))
  for a, b in zip(final_params(workdir), final_params(long_run), strict=True):
    np.testing.assert_array_equal(a, b)
  assert not glob.glob(os.path.join(workdir, 'checkpoints', '*tmp*'))  # Orbax's leftovers are cleaned up.


def test_torn_last_metrics_line_is_dropped(tmp_path):
  path = str(tmp_path / 'metrics.jsonl')
  with open(path, 'w') as f:
    f.write('{"epoch": 1}\n{"epoch": 2}\n{"epo')  # Killed mid-append.
  assert records.read_jsonl(path) == [{'epoch': 1}, {'epoch': 2}]
  assert records.truncate_metrics(path, 1) == [{'epoch': 1}]
  assert records.read_jsonl(path) == [{'epoch': 1}]


# --- Corrupt checkpoints -----------------------------------------------------------------------------------------

def _truncate_arrays(checkpoint):
  for path in glob.glob(os.path.join(checkpoint, 'default', 'ocdbt.process_0', 'd', '*')):
    with open(path, 'r+b') as f:
      f.truncate(20)


def _wrong_digest(checkpoint):
  path = os.path.join(checkpoint, '_CHECKPOINT_METADATA')
  metadata = read_json(path)
  metadata['custom_metadata']['sha256'] = '0' * 64
  with open(path, 'w') as f:
    json.dump(metadata, f)


@pytest.mark.parametrize('corrupt', [_truncate_arrays, _wrong_digest], ids=['truncated', 'digest'])
def test_corrupt_latest_checkpoint_is_set_aside_and_the_previous_used(corrupt, trained, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(trained, workdir)
  os.remove(os.path.join(workdir, 'results.json'))
  corrupt(os.path.join(workdir, 'checkpoints', '2'))
  result = run_cli(*DENSE, '--config.train.num_epochs=2', f'--workdir={workdir}')
  assert 'checkpoints/2: ' in result.stderr and 'trying the checkpoint before it' in result.stderr
  assert [name.split('-')[0] for name in os.listdir(os.path.join(workdir, 'checkpoints-unreadable'))] == ['2']
  # Epoch 2 was redone from epoch 1's checkpoint, exactly as the first time.
  assert read_json(os.path.join(workdir, 'results.json')) == read_json(os.path.join(trained, 'results.json'))
  same_epochs(os.path.join(workdir, 'metrics.jsonl'), os.path.join(trained, 'metrics.jsonl'))


@pytest.mark.parametrize('case', ['every checkpoint corrupt', 'kept for its parameters'])
def test_no_checkpoint_to_resume_is_a_refusal_not_a_restart(case, trained, tmp_path):
  """Training again from epoch 1 would overwrite the run's records: refused, one line, the records intact."""
  workdir = str(tmp_path / 'run')
  shutil.copytree(trained, workdir)
  if case == 'every checkpoint corrupt':
    for epoch in ('1', '2'):
      _truncate_arrays(os.path.join(workdir, 'checkpoints', epoch))
    fragments = ('checkpoints: no readable checkpoint to resume from', 'use another --workdir')
  else:
    shutil.rmtree(os.path.join(workdir, 'checkpoints'))
    fragments = ('a finished run kept without its resume checkpoints', 'vae.load opens it')
  before = {k: v for k, v in snapshot(workdir).items() if 'checkpoints' not in k}
  result = run_cli(*DENSE, '--config.train.num_epochs=3', f'--workdir={workdir}', check=False)
  if case == 'every checkpoint corrupt':
    # The failed restores' leftover TensorStore reads print "RuntimeError: Event loop is closed" tracebacks as the
    # process ends (Orbax closed its loop; not through sys.excepthook): the last line is the refusal all the same.
    # They interleave from several threads, so only the log's own lines and the error line are kept.
    result.stderr = '\n'.join(l for l in result.stderr.splitlines() if re.match(r'([IWE]\d{4} |error: )', l))
  assert_refused(result, *fragments)
  assert {k: v for k, v in snapshot(workdir).items() if 'checkpoints' not in k} == before
  if case == 'kept for its parameters':  # Starting over is explicit, and loses nothing: the old run is set aside.
    run_cli('--config.train.num_epochs=1', '--restart', f'--workdir={workdir}')
    (aside,) = glob.glob(os.path.join(workdir, 'set-aside-*'))
    assert {k: v for k, v in snapshot(aside).items() if 'checkpoints' not in k} == before
    assert [r['epoch'] for r in read_jsonl(os.path.join(workdir, 'metrics.jsonl'))] == [1]


BAD_MODELS = '''
import jax.numpy as jnp
from flax import nnx
from vae import losses, models

class Narrow(nnx.Module):
  def __init__(self, rngs):
    self.linear = nnx.Linear(4, 500, rngs=rngs)
  def __call__(self, z):
    return self.linear(z)

def narrow_decoder(model_config, *, rngs):
  encoder = models.DenseEncoder((16,), 4, models.ACTIVATIONS['relu'], input_size=784, rngs=rngs)
  return models.VAE(encoder, Narrow(rngs))

def not_a_module(model_config, *, rngs):
  return 'a string'

class OnePrior(models.VAE):
  def prior(self):
    return losses.Mixture(*(2 * [jnp.zeros((3,))]))

def flat_prior(model_config, *, rngs):
  return OnePrior(models.DenseEncoder((16,), 4, models.ACTIVATIONS['relu'], input_size=784, rngs=rngs),
                  models.DenseDecoder((16,), 4, models.ACTIVATIONS['relu'], output_size=784, rngs=rngs))
'''


@pytest.mark.parametrize('factory,fragments', [
    ('narrow_decoder', ('decode of 2 images returned shapes [(2, 500)], expected [(2, 784)]',)),
    ('not_a_module', ("traced on 2 images, it fails: AttributeError: 'str' object has no attribute",)),
    ('flat_prior', ('prior() returned shapes [(3,), (3,)], expected (means, logvars), each (K, 4)',)),
])
def test_a_model_of_the_wrong_shapes_is_refused_before_anything_is_written(factory, fragments, tmp_path):
  path = tmp_path / 'bad_models.py'
  path.write_text(BAD_MODELS)
  workdir = tmp_path / 'run'
  result = run_cli(*DENSE, f'--config.model.name={path}:{factory}', '--config.model.latent_dim=4',
                   f'--workdir={workdir}', check=False)
  assert_refused(result, f"model.name='{path}:{factory}'", *fragments)
  assert not workdir.exists()


# --- A different model's workdir -----------------------------------------------------------------------------

@pytest.mark.parametrize('with_config_json', [True, False])
def test_workdir_of_another_model_is_refused_untouched(with_config_json, trained, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(trained, workdir)
  if not with_config_json:
    os.remove(os.path.join(workdir, 'config.json'))
  before = snapshot(workdir)
  result = run_cli(*DENSE, '--config.train.num_epochs=3', '--config.model.latent_dim=8', f'--workdir={workdir}',
                   check=False)
  if with_config_json:
    assert_refused(result, 'different model', 'model.latent_dim=128 there, 8 now')
  else:  # Only the checkpoint's shapes to go by.
    assert_refused(result, 'different model', 'params/encoder/mean/bias: float32[128] in the checkpoint, '
                   'float32[8] now')
  assert snapshot(workdir) == before


def test_eval_of_another_model_is_refused(trained, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(trained, workdir)
  before = snapshot(workdir)
  result = run_cli(*DENSE, '--config.train.optimizer=rmsprop', '--mode=eval', f'--workdir={workdir}', check=False)
  assert_refused(result, 'different model', 'train.optimizer=adam there, rmsprop now')
  assert snapshot(workdir) == before


def test_closing_checkpoints_waits_for_orbax_cleanup_thread(tmp_path):
  """A run refused right after opening its checkpoints must not exit under Orbax's temporary-folder cleanup
  thread (seen as a RuntimeError traceback after the one-line error, in about 1 of 4 refused sweeps)."""
  import threading  # pylint: disable=g-import-not-at-top
  from vae import checkpoints  # pylint: disable=g-import-not-at-top
  for i in range(5):
    ckpts = checkpoints.Checkpoints(str(tmp_path / str(i)), keep=1)
    ckpts.close()
    assert not [t.name for t in threading.enumerate() if '_target_setting_result' in t.name and t.is_alive()]

# --- Non-finite loss -------------------------------------------------------------------------------------------

def test_nan_stops_training_and_keeps_the_last_good_checkpoint(trained, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(trained, workdir)
  # A learning rate of 1e30 sends the first Adam update's parameters to ~1e30: the next loss overflows. A resume
  # may not change the learning rate, so the workdir's own config.json says it (the run reads it without --config).
  config = read_json(os.path.join(workdir, 'config.json'))
  config['train']['learning_rate'] = 1e30
  records.write_json(os.path.join(workdir, 'config.json'), config)
  before = snapshot(workdir)
  result = run_cli('--config.train.num_epochs=3', f'--workdir={workdir}', check=False)
  line = assert_refused(result, 'epoch 3, step 22: ', 'training stopped, the checkpoint of epoch 2 is kept')
  assert 'loss is nan' in line or 'loss is inf' in line
  assert snapshot(workdir) == before  # Checkpoints, metrics, results and config all as they were.


# --- Full disk, unwritable workdir --------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
  """A 40 MB tmpfs (root only; skipped where mounting is not allowed)."""
  mount = tmp_path / 'disk'
  mount.mkdir()
  if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=40m', 'tmpfs', str(mount)], capture_output=True,
                    check=False).returncode:
    pytest.skip('cannot mount a tmpfs here (needs root)')
  yield mount
  subprocess.run(['umount', str(mount)], check=False)


def _fill(disk, leave_bytes):
  filler = disk / 'filler'
  with open(filler, 'wb', buffering=0) as f:
    try:
      while True:
        f.write(b'\0' * 2 ** 16)
    except OSError:
      pass
  os.truncate(filler, os.path.getsize(filler) - leave_bytes)
  return filler


def test_full_disk_keeps_the_previous_checkpoint(small_disk, trained):
  workdir = str(small_disk / 'run')
  run_cli(*DENSE, '--config.train.num_epochs=1', f'--workdir={workdir}')
  results = read_json(os.path.join(workdir, 'results.json'))
  filler = _fill(small_disk, 256 * 1024)
  result = run_cli(*DENSE, '--config.train.num_epochs=2', f'--workdir={workdir}', check=False)
  assert_refused(result, 'checkpoints: cannot save the checkpoint of epoch 2', 'MB free',
                 'the checkpoint of epoch 1 is intact')
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == ['1']
  assert [r['epoch'] for r in read_jsonl(os.path.join(workdir, 'metrics.jsonl'))] == [1]
  assert read_json(os.path.join(workdir, 'results.json')) == results
  os.remove(filler)  # Space again: the same command finishes as if nothing had happened.
  run_cli(*DENSE, '--config.train.num_epochs=2', f'--workdir={workdir}')
  assert read_json(os.path.join(workdir, 'results.json')) == read_json(os.path.join(trained, 'results.json'))


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('a file, not a folder')
  result = run_cli(*DENSE, f'--workdir={blocker}/run', check=False)
  assert_refused(result, f'workdir {blocker}/run: cannot write')
  assert blocker.read_text() == 'a file, not a folder'


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes to read-only folders')
def test_read_only_workdir(tmp_path):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  workdir.chmod(0o500)
  result = run_cli(*DENSE, f'--workdir={workdir}', check=False)
  assert_refused(result, f'workdir {workdir}: cannot write')
  assert not os.listdir(workdir)


# --- Bad config values, bad flags, bad data ------------------------------------------------------------------

# Through the CLI: one of each path a bad value takes to the user (config checks, the mesh, the loaded data, absl's
# flag parsing, the locked config); the other config checks are tried in-process below.
BAD_VALUES = [
    (('--config.model.latent_dim=0',), 'model.latent_dim=0: must be positive'),
    (('--config.train.batch_size=30', '--num_cpu_devices=4'),
     "train.batch_size=30: must be divisible by the mesh's data axis (4 devices"),
    (('--config.train.batch_size=500',), 'train.batch_size=500: larger than the 400 training images'),
    (('--config.data.classes=(1, 11)',), 'data.classes=(1, 11): fashion_mnist has classes 0..9'),
    (('--config.train.num_epochs=two',), "flag --config.train.num_epochs=two: invalid literal for int()"),
    (('--config.train.num_epoch=2',), "--config.train.num_epoch: no such config key (did you mean 'num_epochs'?)"),
]


@pytest.mark.parametrize('overrides,message', BAD_VALUES, ids=[m.split(':')[0] for _, m in BAD_VALUES])
def test_bad_config_value(overrides, message, tmp_path):
  workdir = tmp_path / 'run'
  result = run_cli(*DENSE, *overrides, f'--workdir={workdir}', check=False)
  assert_refused(result, message)
  assert not workdir.exists()  # Checked before anything is written.


BAD_CONFIG_VALUES = [
    ('train.num_epochs', -1, 'train.num_epochs=-1: must be positive'),
    ('train.batch_size', 0, 'train.batch_size=0: must be positive'),
    ('train.learning_rate', 0.0, 'train.learning_rate=0.0: must be a positive finite number'),
    ('train.learning_rate', float('inf'), 'train.learning_rate=inf: must be a positive finite number'),
    ('seed', -1, 'seed=-1: must be in 0 .. 2**32 - 1'),  # Would train, then fail in the evaluation's k-means.
    ('seed', 2 ** 32, 'seed=4294967296: must be in 0 .. 2**32 - 1'),
    ('eval.manifold_size', 0, 'eval.manifold_size=0: must be positive'),  # Would train, then fail drawing it.
    ('train.matmul_precision', 'fp16', "train.matmul_precision='fp16': unknown (allowed: float32, tensorfloat32, "
                                       "bfloat16, default)"),
    ('train.scan_unroll', 0, 'train.scan_unroll=0: must be positive'),
    ('train.beta', -1.0, 'train.beta=-1.0: must be a number >= 0'),
    ('data.name', 'cifar10', "data.name='cifar10': unknown (allowed: mnist, fashion_mnist)"),
    ('model.name', 'resnet', "model.name='resnet': unknown (built-in: dense, conv, gated, hvae, conv_hvae, two_layer; or your own, as "
                            "path/to/file.py:Name or package.module:Name)"),
    ('model.name', 'my_models.py:VAE', "model.name='my_models.py:VAE': my_models.py: no such file (from "),
    ('model.likelihood', 'poisson', "model.likelihood='poisson': unknown (allowed: bernoulli, gaussian, discretized_logistic)"),
    ('model.conv_impl', 'cudnn', "model.conv_impl='cudnn': unknown (allowed: auto, xla, patch)"),
    ('train.optimizer', 'lamb', "train.optimizer='lamb': unknown (allowed: adam, rmsprop, sgd, rmsprop_keras)"),
    ('model.prior', 'flow', "model.prior='flow': unknown (allowed: standard, vamp, exemplar)"),
    ('model.prior', 'vamp', "train.kl_estimator='analytic': the KL to the VampPrior"),  # The config's analytic KL.
    ('data.preprocessing', 'signed', "data.preprocessing='signed': pixels in [-1, 1] are not Bernoulli outcomes"),
]


@pytest.mark.parametrize('key,value,message', BAD_CONFIG_VALUES, ids=[f'{k}={v}' for k, v, _ in BAD_CONFIG_VALUES])
def test_bad_config_value_in_process(key, value, message):
  from test_sweeps import _config  # pylint: disable=g-import-not-at-top
  from vae import validation  # pylint: disable=g-import-not-at-top
  from vae.errors import VaeError  # pylint: disable=g-import-not-at-top
  config = _config()
  *sections, name = key.split('.')
  (config[sections[0]] if sections else config)[name] = value
  with pytest.raises(VaeError) as error:
    validation.check_config(config, 1)
  assert str(error.value).startswith(message)


def _invalid_values(value):
  """Candidates for an invalid value of a key whose default is `value`, by its type."""
  if isinstance(value, bool):
    return ['yes']
  if isinstance(value, int):
    return [-1]
  if isinstance(value, float):
    return [float('nan'), -1.0]
  if isinstance(value, str):
    return ['bogus']
  if isinstance(value, (tuple, list)):
    return [(0,), (99,)]
  return [-1, (99,), '/nonexistent']  # An unset (None) placeholder: a value of its type out of range.


EVERY_CONFIG = ('fashion_dense', 'mnist18_conv', 'latent2d', 'vampprior:fashion_hvae', 'burda_mnist:two_layer')


def test_every_key_of_every_config_refuses_an_invalid_value():
  """Each key of each config, set to a value out of its range, is refused before anything is trained or written
  (runs.Run checks the config, traces the model and reads the data first): one line naming the key (or, for
  data.dir, the folder)."""
  from test_configs import load  # pylint: disable=g-import-not-at-top
  from vae import runs  # pylint: disable=g-import-not-at-top
  load_config = lambda spec: load(*spec.split(':'))
  from vae.errors import VaeError  # pylint: disable=g-import-not-at-top
  accepted, checked, tried = [], set(), set()
  for spec in EVERY_CONFIG:
    for key, default in records.flatten(load_config(spec).to_dict()).items():
      if key in checked:
        continue
      for value in _invalid_values(default):
        config = load_config(spec)
        *sections, name = key.split('.')
        node = config
        for section in sections:
          node = node[section]
        try:
          node[name] = value
        except TypeError:  # ConfigDict refuses the type (and so does the command line).
          continue
        tried.add(key)
        try:
          runs.Run([config])
          accepted.append(f'{spec} {key}={value!r}')
        except VaeError as e:
          message = str(e)
          assert '\n' not in message and (key in message or key == 'data.dir' and '/nonexistent' in message), (
              spec, key, value, message)
        break
      checked.add(key)
  assert not accepted, accepted
  assert tried == checked and len(tried) > 40, sorted(checked - tried)


def test_missing_config_file_and_flags(tmp_path):
  result = run_cli('--config=configs/nope.py', f'--workdir={tmp_path}', check=False)
  assert_refused(result, '--config=configs/nope.py: cannot load', 'No such file')
  assert_refused(run_cli(*DENSE, check=False), '--workdir', 'must have a value')


def test_corrupt_data_file_names_it(tmp_path):
  from vae import data  # pylint: disable=g-import-not-at-top
  folder = tmp_path / 'fashion'
  shutil.copytree(data.find_dir('fashion_mnist'), folder)
  target = sorted(folder.glob('t10k-labels*'))[0]
  target.write_bytes(target.read_bytes()[:-1] if target.suffix != '.gz' else b'\x1f\x8b not gzip')
  result = run_cli(*DENSE, f'--config.data.dir={folder}', f'--workdir={tmp_path / "run"}', check=False)
  assert_refused(result, str(target))
  assert not (tmp_path / 'run').exists()


def test_unknown_config_variant_is_one_line(tmp_path):
  result = run_cli('--config=configs/latent2d.py:cifar', f'--workdir={tmp_path}/run', check=False)
  assert_refused(result, '--config=configs/latent2d.py:cifar: ValueError: configs/latent2d.py:cifar: unknown variant')
