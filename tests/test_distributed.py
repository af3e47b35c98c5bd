"""Several processes, one job: two run.py processes on 127.0.0.1 (gloo CPU collectives) against one process with
the same total device count, and a process killed mid-run. These fake CPU devices (--num_cpu_devices)."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import LONG as JOB, ROOT, read_json, read_jsonl
CLOSE = dict(rel=1e-5, abs=1e-5)
HEARTBEAT = 5  # Seconds: a dead process is found within this (plus the service's polling).


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _start(workdir, devices, *args):
  """The two processes of a job, each faking `devices` CPU devices; returns the Popen objects."""
  port, env = _free_port(), dict(os.environ, PYTHONUNBUFFERED='1')
  return [subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'run.py'), *JOB, *args, f'--workdir={workdir}', f'--num_cpu_devices={devices}',
       f'--coordinator_address=127.0.0.1:{port}', '--num_processes=2', f'--process_id={i}',
       f'--heartbeat_timeout={HEARTBEAT}'], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]


def _finish(procs):
  outputs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  return [err for _, err in outputs]


def _assert_same_results(folder, reference):
  got, want = read_json(os.path.join(folder, 'results.json')), read_json(os.path.join(reference, 'results.json'))
  for key in ('test/neg_elbo', 'test/recon', 'test/kl', 'test/nll_iw', 'latent/kmeans_acc'):
    assert got[key] == pytest.approx(want[key], **CLOSE), key
  lines, expected = read_jsonl(os.path.join(folder, 'metrics.jsonl')), read_jsonl(os.path.join(reference,
                                                                                               'metrics.jsonl'))
  assert [r['epoch'] for r in lines] == [1, 2, 3]  # One line per epoch: only process 0 writes.
  for a, b in zip(lines, expected):
    assert a['train/neg_elbo'] == pytest.approx(b['train/neg_elbo'], **CLOSE)


def test_sweep_spread_over_two_processes(long_run, tmp_path):
  """2 devices each, 2 members: mesh members:2,data:2, member i on process i's devices, in its own folder."""
  logs = _finish(_start(tmp_path, 2, '--sweep=seed=0,1'))
  assert 'mesh members:2,data:2 over 4 cpu device(s) in 2 process(es)' in logs[0]
  # Member 0 is the reference's config (seed 0): the layout does not change its results (tests/test_layout.py).
  _assert_same_results(str(tmp_path / 'members' / '0'), long_run)
  member = read_json(tmp_path / 'members' / '1' / 'results.json')
  assert member['test/neg_elbo'] != read_json(os.path.join(long_run, 'results.json'))['test/neg_elbo']
  assert read_json(tmp_path / 'members' / '1' / 'config.json')['seed'] == 1
  assert [r['epoch'] for r in read_jsonl(tmp_path / 'members' / '1' / 'metrics.jsonl')] == [1, 2, 3]
  assert sorted(os.listdir(tmp_path / 'members' / '1' / 'checkpoints')) == ['1', '2', '3']
  assert read_json(tmp_path / 'sweep.json')['summary'][0]['num_seeds'] == 2


def test_killed_process_ends_the_job_and_the_rerun_resumes(long_run, tmp_path):
  workdir = str(tmp_path)
  procs = _start(workdir, 1)
  metrics = os.path.join(workdir, 'metrics.jsonl')
  deadline = time.time() + 300
  while not os.path.isdir(os.path.join(workdir, 'checkpoints', '1')) and time.time() < deadline:
    time.sleep(0.02)  # Orbax renames the checkpoint there once complete.
  assert procs[0].poll() is None, 'the job ended before the kill'
  procs[1].send_signal(signal.SIGKILL)  # Mid-run: epoch 1 is checkpointed, epoch 2 is training.
  killed = time.time()
  _, err = procs[0].communicate(timeout=120)
  procs[1].communicate()
  # Not left hanging, nor aborted in JAX's shutdown barrier: one line naming the lost process and the epoch a rerun
  # resumes from, exit 2.
  assert time.time() - killed < HEARTBEAT + 30
  assert procs[0].returncode == 2, err[-3000:]
  assert 'Traceback' not in err, err[-3000:]
  errors = [line for line in err.splitlines() if line.startswith('error:')]
  assert len(errors) == 1 and errors[0].startswith('error: process 1 of the job is lost'), err[-3000:]
  resumes = int(re.search(r'resumes from epoch (\d+)$', errors[0]).group(1))
  saved = [int(name) for name in os.listdir(os.path.join(workdir, 'checkpoints')) if name.isdigit()]
  assert resumes == max(saved, default=0) and resumes in (1, 2)
  # Nothing past the last complete checkpoint.
  assert [r['epoch'] for r in read_jsonl(metrics)] == list(range(1, resumes + 1))

  # The same command again resumes from the last checkpoint, and ends as one process with 2 devices does: the two
  # processes split each batch (1 device each), their gradients all-reduced by gloo.
  _finish(_start(workdir, 1))
  _assert_same_results(workdir, long_run)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['1', '2', '3']


def test_hung_process_ends_the_job_in_one_line(tmp_path):
  """A process that stops (SIGSTOP: no heartbeat, its sockets open, so no collective fails) is found by the
  coordination service within the heartbeat timeout; the other ends with one line wherever it waits (a collective,
  Orbax's barrier), not with JAX's abort from C++."""
  procs = _start(str(tmp_path), 1)
  deadline = time.time() + 300
  while not os.path.isdir(os.path.join(tmp_path, 'checkpoints', '1')) and time.time() < deadline:
    time.sleep(0.02)
  procs[1].send_signal(signal.SIGSTOP)
  stopped = time.time()
  try:
    _, err = procs[0].communicate(timeout=120)
  finally:
    procs[1].kill()
    procs[1].communicate()
  assert time.time() - stopped < HEARTBEAT + 30
  assert procs[0].returncode == 2 and 'Traceback' not in err, err[-3000:]
  errors = [line for line in err.splitlines() if line.startswith('error:')]
  saved = max(int(name) for name in os.listdir(tmp_path / 'checkpoints') if name.isdigit())  # 1, unless slow to stop.
  assert errors == [f'error: process 1 of the job is lost (no heartbeat for --heartbeat_timeout={HEARTBEAT} s); '
                    f'rerunning the same command on every process resumes from epoch {saved}'], err[-3000:]
