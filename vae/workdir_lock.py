"""One owner per workdir: a run holds an exclusive lock on `WORKDIR/.lock` for as long as it trains or evaluates.

The lock lives on an open file descriptor, so the kernel drops it when the process ends, even by SIGKILL: no stale
lock outlives its run. The file names the holder (host, pid, start time) so that a refused run can say who has it.
"""
import datetime
import errno
import fcntl
import json
import os
import socket
import struct
import time

from vae.errors import VaeError

FILENAME = '.lock'


class Lock:
  """The lock of one workdir, held until `release()` (or the end of a `with` block, or of the process)."""

  def __init__(self, workdir, fd, holder):
    self.workdir, self.holder, self._fd = workdir, holder, fd

  def release(self):
    if self._fd is None:
      return
    try:
      os.ftruncate(self._fd, 0)  # An empty file names nobody.
    finally:
      os.close(self._fd)  # This drops the lock.
      self._fd = None

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.release()


def acquire(workdir):
  """Locks `workdir` (created if need be) for this process, or raises VaeError naming the run that holds it.

  A refused run changes nothing in the workdir. The lock belongs to the open file, not to the process: a second
  acquire in the holding process (another thread, a test that trains twice without releasing) is refused like any
  other, and reading the workdir's files, .lock included, never drops it.
  """
  path = os.path.join(workdir, FILENAME)
  try:
    os.makedirs(workdir, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
  except OSError as e:
    raise VaeError(f'workdir {workdir}: cannot write ({e.strerror or e})') from None
  try:
    _lock(fd)
  except OSError as e:
    held = e.errno in (errno.EAGAIN, errno.EACCES)
    holder = _read_holder(fd) if held else None
    os.close(fd)
    if held:
      raise VaeError(_in_use(workdir, holder)) from None
    raise VaeError(f'{path}: cannot lock ({e.strerror or e})') from None
  holder = {'host': socket.gethostname(), 'pid': os.getpid(),
            'since': datetime.datetime.now().astimezone().isoformat(timespec='seconds')}
  try:
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + '\n').encode(), 0)
    os.fsync(fd)  # A run on another host reads it through the file server.
  except OSError as e:
    os.close(fd)
    raise VaeError(f'{path}: cannot write ({e.strerror or e})') from None
  return Lock(workdir, fd, holder)


def _lock(fd):
  """Locks the whole file of `fd` for writing without waiting; OSError with EAGAIN or EACCES if it is held.

  Linux's open-file-description (OFD) locks: fcntl record locks, so NFS clients pass them on to the server (lockd, or
  NFSv4's own locks) and runs on two hosts sharing a workdir exclude each other. Classic POSIX locks (fcntl.lockf)
  would belong to the process and be dropped when it closes *any* descriptor of the file, e.g. when the holding
  process merely reads .lock or copies the workdir. Elsewhere flock, which also belongs to the open file.
  """
  if hasattr(fcntl, 'F_OFD_SETLK'):
    # struct flock {short l_type, l_whence; off_t l_start, l_len; pid_t l_pid;}: all of the file; l_pid must be 0.
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack('hhqqi4x', fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
  else:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_holder(fd):
  """The holder the lock file names; its holder writes it just after locking, so an empty file is waited for."""
  for _ in range(50):
    try:
      holder = json.loads(os.pread(fd, 4096, 0))
      return holder if isinstance(holder, dict) else None
    except ValueError:
      time.sleep(0.01)
  return None


def _in_use(workdir, holder):
  who = (f'host {holder.get("host")}, pid {holder.get("pid")}, since {holder.get("since")}' if holder else
         f'its {FILENAME} names no holder')
  return f'{workdir}: in use by another run ({who}); wait for it to finish or use another --workdir'
