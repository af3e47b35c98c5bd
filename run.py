"""Trains and evaluates a VAE: `python run.py --config=configs/fashion_dense.py --workdir=runs/fashion_dense`.

Override any config key with `--config.train.num_epochs=2`; `--mode=eval` re-evaluates the latest checkpoint.
"""
import logging as std_logging
import sys

from absl import app, flags, logging
from ml_collections import config_flags

config_flags.DEFINE_config_file('config', None, 'Experiment config file (configs/*.py[:variant]).',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Folder for checkpoints, metrics and results; rerunning resumes it.')
flags.DEFINE_enum('mode', 'train', ['train', 'eval'], 'train: train then evaluate; eval: evaluate the latest '
                  'checkpoint only.')
flags.DEFINE_integer('num_cpu_devices', None, 'Fake this many CPU devices (to try data parallelism on CPU).')
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  import jax  # pylint: disable=g-import-not-at-top
  if FLAGS.num_cpu_devices:
    jax.config.update('jax_num_cpu_devices', FLAGS.num_cpu_devices)
  from vae import train  # pylint: disable=g-import-not-at-top
  from vae.errors import VaeError  # pylint: disable=g-import-not-at-top
  logging.get_absl_handler().addFilter(_quiet_libraries)
  try:
    if FLAGS.mode == 'train':
      train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    else:
      train.evaluate(FLAGS.config, FLAGS.workdir)
  except VaeError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


def _quiet_libraries(record):
  """Keeps warnings and this project's log lines; drops the libraries' (Orbax's) chatter at INFO."""
  return record.levelno >= std_logging.WARNING or '/orbax/' not in record.pathname


if __name__ == '__main__':
  app.run(main)
