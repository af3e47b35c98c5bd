"""The CIFAR-shaped decoder's last layer alone (3 x 3 conv, 32 -> 100 channels at 32 x 32, batch 64): forward, and
forward with backward, in milliseconds (medians of 10), for patch_conv and other ways to lay out its matmul, against
the matmul alone and PyTorch's conv2d (docs/performance.md).

  .venv/bin/python experiments/benchmark/last_conv.py     # PyTorch optional: pip install torch==2.13.0
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position

from vae.models.convolution import patch_conv  # pylint: disable=wrong-import-position

N, SIDE, CIN, COUT = 64, 32, 32, 100


def padded(x):
  return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


def two_stage(x, k):
  """Patches built in two concatenations (the three taps of a row, then the three rows): longer contiguous runs."""
  rows = jnp.concatenate([padded(x)[:, :, j:j + SIDE] for j in range(3)], axis=-1)
  return jnp.concatenate([rows[:, i:i + SIDE] for i in range(3)], axis=-1) @ k.reshape(9 * CIN, COUT)


def row_taps(x, k):
  """Three matmuls, one per kernel row, over the row patches (N, H + 2, W, 3 Cin): a third of the patch array."""
  rows = jnp.concatenate([padded(x)[:, :, j:j + SIDE] for j in range(3)], axis=-1)
  return sum(rows[:, i:i + SIDE] @ k[i].reshape(3 * CIN, COUT) for i in range(3))


def nine_taps(x, k):
  """Nine matmuls of Cin x Cout over shifted views, summed: no patch array at all."""
  xp = padded(x)
  return sum(xp[:, i:i + SIDE, j:j + SIDE] @ k[i, j] for i in range(3) for j in range(3))


def materialised(x, k):
  """patch_conv's patch array behind an optimisation barrier: built whole, not fused into the matmul."""
  xp = padded(x)
  patches = jnp.concatenate([xp[:, i:i + SIDE, j:j + SIDE] for i in range(3) for j in range(3)], axis=-1)
  return jax.lax.optimization_barrier(patches) @ k.reshape(9 * CIN, COUT)


def milliseconds(f, *args):
  jax.block_until_ready(f(*args))
  times = []
  for _ in range(10):
    t = time.perf_counter()
    jax.block_until_ready(f(*args))
    times.append(time.perf_counter() - t)
  return 1000 * float(np.median(times))


def main():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((N, SIDE, SIDE, CIN), np.float32))
  k = jnp.asarray(0.05 * rng.standard_normal((3, 3, CIN, COUT), np.float32))
  reference = patch_conv(x, k)
  for name, f in (('patch_conv', patch_conv), ('two_stage', two_stage), ('row_taps', row_taps),
                  ('nine_taps', nine_taps), ('materialised', materialised)):
    assert float(jnp.abs(f(x, k) - reference).max()) < 1e-4, name  # The same function, float32 rounding apart.
    grad = jax.jit(jax.grad(lambda x, k, f=f: jnp.sum(f(x, k) ** 2), argnums=(0, 1)))
    print(f'{name:14s} forward {milliseconds(jax.jit(f), x, k):6.1f} ms   with backward {milliseconds(grad, x, k):6.1f} ms')
  patches = jnp.asarray(rng.standard_normal((N * SIDE * SIDE, 9 * CIN), np.float32))
  print(f'{"matmul alone":14s} forward {milliseconds(jax.jit(jnp.matmul), patches, k.reshape(9 * CIN, COUT)):6.1f} ms')
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return
  torch.set_num_threads(os.cpu_count())
  for layout in (torch.contiguous_format, torch.channels_last):
    xt = torch.randn(N, CIN, SIDE, SIDE).to(memory_format=layout).requires_grad_()
    kt = torch.randn(COUT, CIN, 3, 3, requires_grad=True)
    times = []
    for _ in range(11):
      t = time.perf_counter()
      (torch.nn.functional.conv2d(xt, kt, padding=1) ** 2).sum().backward()
      times.append(time.perf_counter() - t)
    print(f'torch conv2d {str(layout).split(".")[-1]:16s} with backward {1000 * np.median(times[1:]):6.1f} ms')


if __name__ == '__main__':
  main()
