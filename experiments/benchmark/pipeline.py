"""The data pipeline at CelebA's size: 200,000 images of 64 x 64 x 3 (2.46 GB of uint8) in memory, fed to the step.

  .venv/bin/python experiments/benchmark/pipeline.py [--images=200000] [--side=64]

Random uint8 images stand in for CelebA (none can be downloaded here). A tiny dense Bernoulli VAE (one hidden
layer of 16, latent 2) makes the compute small, so that what the data costs shows. Measured: the run's set-up (the
images' one placement on the device), peak RSS, the seconds of one epoch over N images against the same number of
steps over N / 10 images (ten epochs), whose difference is what the set's size costs per epoch (the epoch's
permutation and the gathers from the large array: the images are placed once and never copied again), and the
host's share of an epoch (until the call that runs the whole epoch, one lax.scan, returns). Prints one JSON line.
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--images', type=int, default=200_000)
  parser.add_argument('--side', type=int, default=64)
  args = parser.parse_args()
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vae import data, launch, runs  # pylint: disable=g-import-not-at-top

  shape = (args.side, args.side, 3)
  t0 = time.perf_counter()
  images = np.random.default_rng(0).integers(0, 256, (args.images,) + shape, dtype=np.uint8)
  make_seconds = time.perf_counter() - t0
  test = images[:1000]
  unlabelled = lambda n: np.full((n,), -1, np.int32)

  def fake_load(*_, **__):  # The Dataset data.load would return for such a folder.
    return data.Dataset(images[:fake_load.n], unlabelled(fake_load.n), test, unlabelled(len(test)), ())

  data.load = fake_load
  config = launch.load_config(os.path.join(ROOT, 'configs', 'images.py'))
  with config.unlocked():
    config.model.name, config.model.encoder_widths, config.model.decoder_widths = 'dense', (16,), (16,)
    config.model.latent_dim, config.model.likelihood = 2, 'bernoulli'
    config.train.batch_size, config.eval.batch_size = 100, 1000

  def epoch_seconds(n, epochs):
    fake_load.n = n
    t = time.perf_counter()
    run = runs.Run([config])
    setup = time.perf_counter() - t
    state = run.place(run.initial_states)
    compiled = run.compile_epoch(state)
    state, metrics, _ = compiled(state, run.train_images, jnp.int32(1), run.keys, run.hparams)  # Warm-up.
    jax.block_until_ready(metrics)
    t, host = time.perf_counter(), 0.0
    for e in range(epochs):
      call = time.perf_counter()
      state, metrics, _ = compiled(state, run.train_images, jnp.int32(e + 2), run.keys, run.hparams)
      host += time.perf_counter() - call  # The host's share: the call returns once the epoch is dispatched.
      jax.block_until_ready(metrics)
    return (time.perf_counter() - t) / epochs, setup, host / epochs

  big, big_setup, big_host = epoch_seconds(args.images, 2)
  small, small_setup, _ = epoch_seconds(args.images // 10, 10)
  print(json.dumps({
      'images': args.images, 'shape': shape, 'gigabytes': images.nbytes / 1e9, 'make_seconds': make_seconds,
      'run_setup_seconds': big_setup, 'small_run_setup_seconds': small_setup,
      'epoch_seconds': big, 'host_seconds_per_epoch': big_host, 'ten_small_epochs_seconds': 10 * small,
      'per_epoch_cost_of_the_set_size_seconds': big - 10 * small,
      'peak_rss_gb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))


if __name__ == '__main__':
  main()
