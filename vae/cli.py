"""The command line: `python run.py --config=configs/fashion_dense.py --workdir=runs/fashion_dense`, or the same
flags to `vae-train`, the console command `pip install -e .` puts on the PATH.

Override any config key with `--config.train.num_epochs=2`; `--mode=eval` re-evaluates the latest checkpoint (the best
validation epoch where early stopping is on).
"""
import atexit
import gc
import logging as std_logging
import os
import re
import sys
import threading

from absl import app, flags, logging
from ml_collections import config_flags

CONFIG_HELP = ('Experiment config file (configs/*.py[:variant]); without it, the config.json of the --workdir to '
               'resume or evaluate.')
config_flags.DEFINE_config_file('config', None, CONFIG_HELP, lock_config=True)
flags.DEFINE_string('workdir', None, 'Folder for checkpoints, metrics and results; rerunning resumes it.')
flags.DEFINE_enum('mode', 'train', ['train', 'eval'], 'train: train then evaluate; eval: evaluate the latest '
                  'checkpoint (the best validation epoch with early stopping) only.')
flags.DEFINE_bool('restart', False, 'Train from epoch 1: what the workdir holds (checkpoints, records, results) is '
                  'first set aside, whole, in WORKDIR/set-aside-<time>/ (kept, never deleted). Without it a workdir is '
                  'resumed, and one with records but no checkpoint to resume from is refused.')
flags.DEFINE_multi_string('sweep', [], 'KEY=V1,V2,...: train one member per value at once (jax.vmap); repeat '
                          'for a grid. Keys: seed, train.beta, train.learning_rate. Members go to WORKDIR/members/<i>/.')
flags.DEFINE_integer('num_cpu_devices', None, 'Run on the CPU as this many devices (to try layouts on a laptop).')
flags.DEFINE_string('mesh', None, "members:M,data:D: the device mesh (M x D = the device count); default: as many "
                    "devices on 'members' as the member count allows, the rest on 'data'.")
# Several processes (one per host, or per GPU): JAX's multi-controller runtime, started before JAX is first used.
flags.DEFINE_string('coordinator_address', None, 'HOST:PORT of process 0, for a job of --num_processes processes.')
flags.DEFINE_integer('num_processes', None, 'The number of processes of the job.')
flags.DEFINE_integer('process_id', None, 'This process\'s index, 0 .. num_processes - 1.')
flags.DEFINE_bool('distributed', False, 'Start JAX\'s distributed runtime with the cluster it detects (SLURM, '
                  'TPU pods, Open MPI) instead of the three flags above.')
flags.DEFINE_integer('heartbeat_timeout', 60, 'Seconds without a heartbeat after which a process of the job is '
                     'taken for dead and the others stop.')
flags.DEFINE_string('compilation_cache', None, 'Folder of JAX\'s persistent compilation cache, so that a second run '
                    'of a config reuses its compiled programs; default $JAX_COMPILATION_CACHE_DIR, else '
                    '~/.cache/vae/jax; empty: off.')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    _fail(f'unexpected arguments: {" ".join(argv[1:])}')
  try:
    config = FLAGS.config
    config.keys()  # config_flags reports a file it could not load only when the config is first used.
  except OSError as e:
    reason = str(e.__cause__ or e).strip().splitlines()[-1].strip()
    _fail(f'--config={_flag_value(sys.argv, "config")}: cannot load ({reason})')
  import jax  # pylint: disable=g-import-not-at-top
  # At exit the interpreter's last garbage collection walks JAX's and the libraries' object graph: 1.4 s of every
  # run on 2 Zen 3 cores. Frozen objects are not walked; the memory goes back to the OS with the process anyway.
  atexit.register(gc.freeze)
  std_logging.getLogger('jax._src.xla_bridge').setLevel(std_logging.WARNING)  # "Unable to initialize backend 'tpu'"
  _compilation_cache(jax)
  if FLAGS.num_cpu_devices:  # On the CPU backend, whatever accelerator the machine has.
    jax.config.update('jax_platforms', 'cpu')
    jax.config.update('jax_num_cpu_devices', FLAGS.num_cpu_devices)
  ended = _start_distributed(jax) if FLAGS.distributed or FLAGS.coordinator_address else lambda: None
  from vae import sweeps, training  # pylint: disable=g-import-not-at-top
  from vae.errors import VaeError  # pylint: disable=g-import-not-at-top
  from vae import progress  # pylint: disable=g-import-not-at-top
  logging.get_absl_handler().addFilter(progress.quiet_libraries)
  try:
    members = sweeps.member_configs(config, FLAGS.sweep) if FLAGS.sweep else None
    if FLAGS.restart and FLAGS.mode != 'train':
      _fail('--restart: trains from epoch 1, so it goes with --mode=train only')
    if FLAGS.mode == 'train':
      results = training.train_and_evaluate(config, FLAGS.workdir, members, FLAGS.mesh, restart=FLAGS.restart)
    else:
      results = training.evaluate(config, FLAGS.workdir, members, FLAGS.mesh)
  except VaeError as e:  # A lost process can surface as one, e.g. a checkpoint save whose collective failed.
    _end_if_process_lost(e)
    _fail(e)
  except jax.errors.JaxRuntimeError as e:
    _end_if_process_lost(e)
    raise
  ended()
  diverged = [i for i, r in enumerate(results) if 'diverged' in r]
  if diverged:  # The others finished: exit non-zero all the same, so that a script notices.
    first = results[diverged[0]]['diverged']
    _fail(f'{len(diverged)} of {len(results)} sweep members diverged (member {diverged[0]}: {first}); the others\' '
          f'results: {FLAGS.workdir}/sweep.md')


def _start_distributed(jax):
  """jax.distributed.initialize from the flags (or the detected cluster); CPU collectives over gloo; a watch on the
  job's other processes."""
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # Only the CPU backend reads it.
  # The coordination service, left to itself, ends every process once one stops heartbeating, from a thread in C++
  # (pages of diagnostics, exit 134), even one waiting in a barrier that would report it (Orbax's, at a checkpoint).
  # Recoverable, it only marks the process dead; `_watch` reports it in one line.
  jax.config.update('jax_enable_recoverability', True)
  given = {'coordinator_address': FLAGS.coordinator_address, 'num_processes': FLAGS.num_processes,
           'process_id': FLAGS.process_id}
  if not FLAGS.distributed and None in given.values():
    _fail('--coordinator_address, --num_processes and --process_id go together (or --distributed alone)')
  # Registered before JAX's own shutdown (initialize registers it; atexit runs the last registered first), so it
  # runs after it: the watch thread is stopped and joined before the interpreter finalizes. A daemon thread still in
  # one of the client's C++ calls then aborts the process ('terminate called after throwing', exit -6), as a
  # finished process of a two-process job did under load.
  watcher = {}
  atexit.register(_stop_watch, watcher)
  try:
    # The shutdown barrier waits for process 0's evaluation (the others have nothing left to do): a long timeout;
    # a process that dies is still found within the heartbeat timeout.
    jax.distributed.initialize(**({} if FLAGS.distributed else given), heartbeat_timeout_seconds=FLAGS.heartbeat_timeout,
                               shutdown_timeout_seconds=7 * 24 * 3600)
  except (RuntimeError, ValueError) as e:
    _fail(f'jax.distributed.initialize: {str(e).strip().splitlines()[0]}')
  from jax._src import distributed  # pylint: disable=g-import-not-at-top  # The client: Orbax uses it the same way.
  return _watch(distributed.global_state.client, jax.process_index(), jax.process_count(), watcher)


def _stop_watch(watcher, timeout=30):
  if 'thread' in watcher:
    watcher['stop'].set()
    watcher['thread'].join(timeout)


def _watch(client, me, count, watcher, period=0.5):
  """Ends this process with one line (`_end_job`) when the coordination service takes another process of the job
  for dead, wherever this one is: in a barrier, on the host, or waiting at exit for process 0's evaluation. Returns
  the function by which this process says, in the service's key-value store, that it ended normally."""

  stop = threading.Event()

  def watch():
    while not stop.wait(period):
      try:
        live = client.get_live_nodes(list(range(count)))
        ended = {key.rsplit('/', 1)[-1] for key, _ in client.key_value_dir_get('vae/ended/')}
      except Exception:  # pylint: disable=broad-except  # Process 0, the service, is gone: JAX ends this one.
        return
      lost = [i for i in range(count) if i not in live and str(i) not in ended]
      if lost:
        _end_job(f'process {lost[0]} of the job is lost', f'no heartbeat for --heartbeat_timeout='
                 f'{FLAGS.heartbeat_timeout} s')

  thread = threading.Thread(target=watch, name='vae-job-watch', daemon=True)
  thread.start()
  watcher.update(stop=stop, thread=thread)
  return lambda: client.key_value_set(f'vae/ended/{me}', '')


def _compilation_cache(jax):
  """JAX's persistent compilation cache in --compilation_cache: every program, however quick to compile (this
  project's take 0.1 to 5 s each; JAX's default caches only those over 1 s). A cached executable is the same
  executable, so results do not change."""
  folder = FLAGS.compilation_cache
  if folder is None:
    folder = os.environ.get('JAX_COMPILATION_CACHE_DIR') or os.path.expanduser('~/.cache/vae/jax')
  if folder:
    jax.config.update('jax_compilation_cache_dir', folder)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
    jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
    jax.config.update('jax_compilation_cache_max_size', 2 ** 30)  # Least recently used entries go past 1 GiB.
  else:
    jax.config.update('jax_enable_compilation_cache', False)


def parse_flags(argv):
  """absl's parsing, with each mistake (unknown or misspelt key, bad value, missing flag) as one line and exit 2.

  Without --config, the config is the --workdir's config.json (a run to resume or evaluate), overridable with
  --config.KEY=VALUE as a file's would be.
  """
  if not any(a == '--config' or a.startswith('--config=') for a in argv[1:]):
    _config_from_workdir(_flag_value(argv, 'workdir'))
  try:
    return FLAGS(argv)
  except flags.Error as e:
    if 'Traceback' in str(e):  # The config file's get_config raised: its last line says why.
      _fail(f'--config={_flag_value(argv, "config")}: {str(e).strip().splitlines()[-1]}')
    _fail(e)
  except (AttributeError, KeyError) as e:  # The locked config refuses a key it does not have.
    text = str(e)
    hint = re.search(r'Did you mean "([^"]+)" instead of "([^"]+)"', text)
    name = hint.group(2) if hint else re.search(r'\w+', text).group(0)
    overrides = [a.split('=')[0] for a in argv[1:] if a.startswith('--config.') and name in a.split('=')[0].split('.')]
    _fail(f'{overrides[0] if overrides else name}: no such config key'
          f'{f" (did you mean {hint.group(1)!r}?)" if hint else ""}')


def _config_from_workdir(workdir):
  """Redefines --config as the workdir's config.json (a dict flag), or fails with one line saying why it cannot."""
  import json  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  if workdir == '?':
    _fail('--config is required (or --workdir of a run, whose config.json is used)')
  path = os.path.join(workdir, 'config.json')
  try:
    with open(path) as f:
      saved = json.load(f)
  except FileNotFoundError:
    if os.path.isdir(os.path.join(workdir, 'members')):
      _fail(f'--config is required: {workdir} holds a sweep (resume it with its --config and --sweep flags)')
    _fail(f'--config is required: {path} does not exist (no run there to resume or evaluate)')
  except (OSError, json.JSONDecodeError) as e:
    _fail(f'{path}: cannot read the run\'s config ({e})')
  from vae import records  # pylint: disable=g-import-not-at-top
  tuples = lambda v: {k: tuples(x) for k, x in v.items()} if isinstance(v, dict) else (
      tuple(v) if isinstance(v, list) else v)  # JSON's lists were the config file's tuples.
  FLAGS.__delattr__('config')
  try:
    config_flags.DEFINE_config_dict('config', ml_collections.ConfigDict(tuples(records.with_added_keys(saved))),
                                    CONFIG_HELP, lock_config=True)
  except config_flags.config_flags.UnsupportedOperationError as e:  # An override of a key config.json leaves unset.
    field = re.search(r'field (config\.[\w.]+)', str(e))
    _fail(f'--{field.group(1) if field else "config"}: {path} leaves it unset, so its type is unknown; give the '
          f'run\'s --config file too')


def _flag_value(argv, name):
  """The value of --name=VALUE or --name VALUE in `argv` ('?' if absent)."""
  values = [a.split('=', 1)[1] if '=' in a else b for a, b in zip(argv, argv[1:] + [None])
            if a.startswith(f'--{name}=') or (a == f'--{name}' and b is not None)]
  return values[-1] if values else '?'


def _fail(message):
  print(f'error: {" ".join(str(message).split())}', file=sys.stderr)
  sys.exit(2)


def _end_if_process_lost(error):
  """Ends this process with one line and exit 2 if `error` (or the error it was raised from) is a gloo collective
  that failed in a job of several processes: another process of the job is lost."""
  import jax  # pylint: disable=g-import-not-at-top
  text, cause = '', error
  while cause is not None:  # `raise VaeError(...) from None` keeps the original in __context__.
    text, cause = f'{text} {cause}', cause.__cause__ or cause.__context__
  gloo = re.search(r'Gloo ([\w-]+) failed', text)
  if not (gloo and jax.distributed.is_initialized()):
    return
  me, peer = jax.process_index(), re.search(r'Connection (closed|reset) by peer', text)
  reason = f'gloo {gloo.group(1).lower()} failed{f": connection {peer.group(1)} by peer" if peer else ""}'
  # Gloo names the peer's address, not its index: the index is known when the job has one other process only.
  who = f'process {1 - me} of the job is lost' if jax.process_count() == 2 else (
      f'process {me} lost another process of the job')
  _end_job(who, reason)


_ENDING = threading.Lock()


def _end_job(who, reason):
  """Ends this process with one line naming the lost process and what a rerun does, and exit 2 (once, whichever
  thread learns of the loss first: the other waits on the lock until the exit)."""
  _ENDING.acquire()  # Never released.
  from vae import sweeps, workdirs  # pylint: disable=g-import-not-at-top
  if FLAGS.mode == 'train':
    num_members = len(sweeps.member_configs(FLAGS.config, FLAGS.sweep)) if FLAGS.sweep else None
    then = f'resumes from epoch {workdirs.resume_epoch(FLAGS.workdir, num_members)}'
  else:
    then = 'evaluates again'
  print(f'error: {who} ({reason}); rerunning the same command on every process {then}', file=sys.stderr)
  logging.flush()
  sys.stdout.flush()
  sys.stderr.flush()
  # Not sys.exit: at exit JAX's shutdown barrier would wait for the lost process.
  os._exit(2)  # pylint: disable=protected-access


def run():
  """The entry point of run.py and of `vae-train`."""
  app.run(main, flags_parser=parse_flags)
