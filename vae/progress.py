"""Progress of long loops: a bar with ETA on a terminal, plain periodic log lines otherwise (CI logs stay readable)."""
import contextlib
import logging as std_logging
import sys
import time

from absl import flags, logging

BAR_WIDTH = 30


def quiet_libraries(record):
  """Keeps warnings and this project's log lines; drops the libraries' (Orbax's, XLA's) chatter at INFO."""
  return record.levelno >= std_logging.WARNING or not any(p in record.pathname for p in ('/orbax/', 'xla_bridge'))


@contextlib.contextmanager
def shown(verbose=True):
  """Within it, this project's INFO lines (each epoch's, the evaluation's) are shown, the libraries' are not; with
  `verbose` False, only warnings. absl's verbosity and handler are as they were after."""
  if not flags.FLAGS.is_parsed():  # Outside absl's app.run (a notebook): no "logging before flag parsing" line.
    flags.FLAGS.mark_as_parsed()
  logging.use_absl_handler()  # ... and absl's lines would not reach the screen without its handler.
  handler, before = logging.get_absl_handler(), logging.get_verbosity()
  handler.addFilter(quiet_libraries)
  stream = handler.python_handler.setStream(sys.stderr)  # Today's stderr (a notebook cell's), not the first one's.
  logging.set_verbosity(logging.INFO if verbose else logging.WARNING)
  try:
    yield
  finally:
    logging.set_verbosity(before)
    handler.removeFilter(quiet_libraries)
    if stream is not None:
      handler.python_handler.setStream(stream)


class Progress:
  """`update()` after each of `total` units of work; `close()` at the end."""

  def __init__(self, total, description, log_every_seconds=15.0, stream=None):
    self.total, self.description, self.log_every = total, description, log_every_seconds
    self.stream = stream or sys.stderr
    self.terminal = hasattr(self.stream, 'isatty') and self.stream.isatty()
    self.done, self.start, self.last_log = 0, time.perf_counter(), time.perf_counter()

  def update(self, n=1):
    self.done += n
    elapsed = time.perf_counter() - self.start
    eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
    if self.terminal:
      filled = int(BAR_WIDTH * self.done / max(self.total, 1))
      self.stream.write(f'\r{self.description} [{"#" * filled}{"." * (BAR_WIDTH - filled)}] {self.done}/{self.total}'
                        f'  {duration(elapsed)} elapsed, ETA {duration(eta)} ')
      self.stream.flush()
    elif time.perf_counter() - self.last_log >= self.log_every or self.done == self.total:
      self.last_log = time.perf_counter()
      logging.info('%s: %d/%d, %s elapsed, ETA %s', self.description, self.done, self.total, duration(elapsed),
                   duration(eta))

  def close(self):
    if self.terminal:
      self.stream.write('\n')
      self.stream.flush()


def duration(seconds):
  seconds = int(round(seconds))
  return f'{seconds // 60}m{seconds % 60:02d}s' if seconds >= 60 else f'{seconds}s'
