"""Shared helpers: running the CLI in a subprocess, and tiny overrides that keep every run fast."""
import atexit
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One persistent XLA compilation cache for the session, shared by this process and every CLI run it starts (they
# inherit the environment; set before JAX is imported): the many tiny runs compile the same programs, and a
# cached executable is the same executable, so results do not change. A tiny CLI run took 25 s cold and 12 s
# warm on the 2-core development CPU. The process that makes the folder removes it: under pytest-xdist that is the
# controller, whose workers inherit the variable and so share the cache.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='vae-tests-jax-cache-')
  atexit.register(shutil.rmtree, os.environ['JAX_COMPILATION_CACHE_DIR'], ignore_errors=True)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

# On a GPU, several test processes (pytest-xdist workers, the CLI runs they start) share one device: each takes what
# it needs, not the 75% of its memory that XLA's client preallocates by default (the second process then cannot start).
os.environ.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')
# The tests check the math at full float32 on every backend, the CPU's only precision: a GPU's default TF32 matmuls
# (10-bit mantissas, ~1e-3 relative) would fail comparisons whose tolerances come from float32 rounding (~1e-6 per
# operation). Set before JAX is imported, so this process and every CLI run it starts inherit it. The tests of the
# fast path set their precision themselves (tests/test_steps.py).
os.environ.setdefault('JAX_DEFAULT_MATMUL_PRECISION', 'float32')

# The same float32 math computed under another batch shape, vmap or fusion: GEMM kernels (a GPU's are chosen by
# shape) sum in another order. A 784-long dot then moves by ~sqrt(784) x 6e-8 ~ 2e-6 of its terms' magnitude, a few
# layers compound that to ~1e-5; 1e-4 leaves a margin, and atol covers outputs near zero. Bitwise equality across
# shapes holds on the CPU only.
REORDERED = dict(rtol=1e-4, atol=1e-5)

# A few hundred images and narrow layers: a whole CLI run in seconds on 2 cores.
TINY = ('--config.data.max_train_images=400', '--config.data.max_test_images=200', '--config.train.batch_size=40',
        '--config.eval.batch_size=100', '--config.eval.iw_samples=20', '--config.eval.manifold_size=5')
DENSE = ('--config=configs/fashion_dense.py',) + TINY
# 2,000 images in 50 steps an epoch, three epochs: long enough for a kill to land while the run trains.
LONG = (*DENSE, '--config.data.max_train_images=2000', '--config.train.num_epochs=3')


def run_cli(*args, check=True):
  """Runs `python run.py ARGS` from the project root; returns the CompletedProcess."""
  env = dict(os.environ, PYTHONUNBUFFERED='1')
  result = subprocess.run([sys.executable, os.path.join(ROOT, 'run.py'), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
  if check and result.returncode != 0:
    raise AssertionError(f'run.py {" ".join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}')
  return result


def read_json(path):
  with open(path) as f:
    return json.load(f)


def read_jsonl(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def shared(tmp_path_factory, name, make):
  """`make(folder)` run once for the whole test session, in `folder` (returned): what it leaves there is shared, and
  tests copy it before changing anything (a refused run too: it takes the workdir's lock).

  Under pytest-xdist each worker has its own session (and its own copy of a module fixture, when the module's tests
  are spread over workers): the first worker to ask makes it in the folder the workers share (the parent of its base
  temp) while the others wait on a lock.
  """
  base = tmp_path_factory.getbasetemp()
  root = base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base
  folder, done = root / name, root / f'{name}.done'
  with open(root / f'{name}.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.exists():
      shutil.rmtree(folder, ignore_errors=True)  # Made part-way before a failure: start it again.
      make(folder)
      done.touch()
  return folder


def shared_run(tmp_path_factory, name, *args, check=True):
  """The workdir of `run.py ARGS --workdir=...`, run once for the whole test session (see `shared`); with
  check=False, (workdir, its CompletedProcess: returncode and stderr) whatever its exit code."""
  def make(workdir):
    result = run_cli(*args, f'--workdir={workdir}', check=check)
    record = {'args': list(args), 'returncode': result.returncode, 'stderr': result.stderr}
    (workdir.parent / f'{name}.json').write_text(json.dumps(record))

  workdir = shared(tmp_path_factory, name, make)
  record = read_json(workdir.parent / f'{name}.json')
  assert record['args'] == list(args), f'shared_run {name!r}: asked for with other arguments'
  if check:
    return str(workdir)
  return str(workdir), subprocess.CompletedProcess(record['args'], record['returncode'], '', record['stderr'])


@pytest.fixture(scope='session')
def trained(tmp_path_factory):
  """The workdir of a 2-epoch tiny fashion_dense run, uninterrupted; tests must not modify it."""
  return shared_run(tmp_path_factory, 'trained', *DENSE, '--config.train.num_epochs=2')


@pytest.fixture(scope='session')
def long_run(tmp_path_factory):
  """The workdir of a LONG run on one process with 2 fake devices, uninterrupted: the reference of the kill tests
  (tests/test_reliability.py) and of the two-process jobs (tests/test_distributed.py); tests must not modify it."""
  return shared_run(tmp_path_factory, 'long_run', *LONG, '--num_cpu_devices=2')


# configs/burda_mnist.py:quick (dynamically binarized MNIST, 4 epochs at batch 20, IW NLL with 50 samples) trained
# with iwae5's objective, on 400 training and 100 test images: 20 steps an epoch.
QUICK_IWAE = ('--config=configs/burda_mnist.py:quick', '--config.train.objective=iwae', '--config.train.num_samples=5',
              '--config.data.max_train_images=400', '--config.data.max_test_images=100')


@pytest.fixture(scope='session')
def quick_iwae(tmp_path_factory):
  """The workdir of a QUICK_IWAE run: the IWAE objective end to end (tests/test_burda.py) and a binarized model's
  scores (tests/test_api.py); tests must not modify it."""
  return shared_run(tmp_path_factory, 'quick_iwae', *QUICK_IWAE)
