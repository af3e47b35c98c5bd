"""The workdir lock against other processes (refused with the holder's name, freed by SIGKILL and by release), and
the file modes of records.py's writes."""
import datetime
import os
import re
import signal
import socket
import subprocess
import sys

import pytest

from conftest import ROOT
from vae import records, workdir_lock
from vae.errors import VaeError

# Imports vae.workdir_lock without vae/__init__.py, whose JAX import costs seconds per process on this machine.
PRELUDE = f'''
import sys, types
sys.modules['vae'] = types.ModuleType('vae')
sys.modules['vae'].__path__ = [{os.path.join(ROOT, 'vae')!r}]
from vae import workdir_lock
from vae.errors import VaeError
'''
ACQUIRE = PRELUDE + '''
try:
  workdir_lock.acquire(sys.argv[1])
except VaeError as e:
  print(e)
  sys.exit(2)
print('acquired', flush=True)
'''
HOLD = ACQUIRE + 'sys.stdin.read()\n'  # Holds the lock until the test closes its stdin, or kills it.


def try_acquire(workdir):
  return subprocess.run([sys.executable, '-c', ACQUIRE, workdir], capture_output=True, text=True, timeout=30)


@pytest.fixture
def holder(tmp_path):
  """A process that holds the lock of `tmp_path`."""
  process = subprocess.Popen([sys.executable, '-c', HOLD, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
  assert process.stdout.readline() == 'acquired\n'
  yield process
  process.kill()
  process.wait()


def listing(folder):
  return {name: (os.stat(folder / name).st_mtime_ns, (folder / name).read_bytes()) for name in os.listdir(folder)}


def test_another_process_is_refused(tmp_path):
  (tmp_path / 'metrics.jsonl').write_text('{"epoch": 1}\n')
  with workdir_lock.acquire(str(tmp_path)):
    before = listing(tmp_path)  # Opens and closes .lock in the holding process, which must not drop the lock.
    result = try_acquire(str(tmp_path))
    assert result.returncode == 2
    host = re.escape(socket.gethostname())
    match = re.fullmatch(rf'{re.escape(str(tmp_path))}: in use by another run \(host {host}, pid {os.getpid()}, '
                         rf'since (\S+)\); wait for it to finish or use another --workdir\n', result.stdout)
    assert match, result.stdout
    since = datetime.datetime.fromisoformat(match[1])
    assert abs(datetime.datetime.now(datetime.timezone.utc) - since) < datetime.timedelta(minutes=1)
    assert listing(tmp_path) == before


def test_this_process_is_refused_by_another(tmp_path, holder):
  with pytest.raises(VaeError, match=f'in use by another run \\(host {socket.gethostname()}, pid {holder.pid}, '):
    workdir_lock.acquire(str(tmp_path))


def test_a_second_acquire_in_the_holding_process_keeps_the_lock(tmp_path):
  lock = workdir_lock.acquire(str(tmp_path))
  try:
    with pytest.raises(VaeError, match=f'pid {os.getpid()}, '):
      workdir_lock.acquire(str(tmp_path))
    assert try_acquire(str(tmp_path)).returncode == 2  # The refusal did not drop the first holder's lock.
  finally:
    lock.release()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  workdir_lock.acquire(str(tmp_path)).release()


def test_after_release_another_process_acquires(tmp_path):
  workdir_lock.acquire(str(tmp_path)).release()
  assert try_acquire(str(tmp_path)).stdout == 'acquired\n'
  with workdir_lock.acquire(str(tmp_path)):  # And this process again, after the other's exit.
    pass


def test_a_released_lock_can_be_taken_again_here(tmp_path):
  with workdir_lock.acquire(str(tmp_path)):
    pass
  with workdir_lock.acquire(str(tmp_path)):
    assert try_acquire(str(tmp_path)).returncode == 2


@pytest.mark.parametrize('umask', [0o022, 0o002])
def test_records_are_written_with_the_umask(tmp_path, umask):
  old = os.umask(umask)
  try:
    records.write_text(str(tmp_path / 'report.md'), 'a report\n')
    records.write_json(str(tmp_path / 'results.json'), {'test_neg_elbo': 1.0})
    records.append_jsonl(str(tmp_path / 'metrics.jsonl'), {'epoch': 1})
    records.truncate_metrics(str(tmp_path / 'metrics.jsonl'), 1)
  finally:
    os.umask(old)
  modes = {name: os.stat(tmp_path / name).st_mode & 0o777 for name in os.listdir(tmp_path)}
  assert modes == dict.fromkeys(['report.md', 'results.json', 'metrics.jsonl'], 0o666 & ~umask)


def test_run_on_a_workdir_in_use_is_refused_and_changes_nothing(trained, tmp_path):
  """run.py on a workdir another run holds (here: this process) is refused naming the holder; vae.load reads it."""
  import shutil  # pylint: disable=g-import-not-at-top
  from conftest import DENSE, run_cli  # pylint: disable=g-import-not-at-top
  import vae  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / 'run'
  shutil.copytree(trained, workdir)
  def files():
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in workdir.rglob('*') if p.is_file()}

  with workdir_lock.acquire(str(workdir)):
    before = files()
    result = run_cli(*DENSE, '--config.train.num_epochs=3', f'--workdir={workdir}', check=False)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error: {workdir}: in use by another run (host {socket.gethostname()}, pid {os.getpid()}, ')
    assert files() == before
    assert vae.load(str(workdir)).epoch == 2  # Reading needs no lock.
