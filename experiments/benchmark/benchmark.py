"""Benchmark: how fast each config trains here, against PyTorch and against this machine's own matmul peak.

  .venv/bin/pip install torch==2.13.0                     # benchmark-only dependency
  .venv/bin/python experiments/benchmark/benchmark.py     # table on stdout, JSON in experiments/benchmark/results.json

Each measurement runs in its own process (so peak RSS is its own, and JAX and PyTorch never share threads):
- peak: fp32 matmul GFLOP/s of 4096x4096 products in JAX and in PyTorch; the machine's peak is the larger.
- jax / torch, per config: training images/s over whole epochs after a warm-up epoch (data in memory; JAX: the
  epoch as one compiled `lax.scan`, data on device), seconds per epoch, peak RSS. FLOPs per image are XLA's cost
  analysis of one compiled train step divided by the batch size; the FLOP rate is that times images/s. cifar10 (the
  conv VAE at 32 x 32 x 3 under the discretized logistic mixture) trains on random uint8 images in memory
  (workers.SYNTHETIC: CIFAR-10 comes from TFDS, not on this machine).
- agreement, per config: the largest relative difference of log p(x | z) per image between the two implementations'
  likelihoods on the same decoder outputs (float32 rounding: ~1e-7), so that the comparison is like for like.
- startup: seconds from launching `python run.py` to the end of its first (one-step) epoch, compile included.
- sweep: aggregate images/s of fashion_dense with 1, 4, 16, 64 members vmapped in one program.
- iwae: seconds for the importance-weighted log-likelihood of 10,000 test images x 1000 samples (fashion_dense).
- ceiling: images/s of fashion_dense's train-step matmuls alone (forward and backward, no activations, loss or
  optimizer), an epoch as one `lax.scan`: what no implementation of this step at this batch size can beat here.
`--quick` shortens everything (a smoke test, not figures to quote).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import workers  # pylint: disable=wrong-import-position  # Beside this file.

SWEEP_MEMBERS = (1, 4, 16, 64)


def spawn(kind, quick, **kwargs):
  cmd = [sys.executable, os.path.abspath(__file__), f'--worker={kind}'] + (['--quick'] if quick else []) + [
      f'--{k}={v}' for k, v in kwargs.items()]
  result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
  if result.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{result.stderr[-3000:]}')
  return json.loads(result.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--worker', choices=sorted(workers.WORKERS))
  parser.add_argument('--config', default='fashion_dense')
  parser.add_argument('--members', type=int, default=0)
  parser.add_argument('--mesh', default=None, help='members:M,data:D (run.py --mesh); default: automatic')
  parser.add_argument('--num_cpu_devices', type=int, default=0)
  parser.add_argument('--conv_impl', default='auto')
  parser.add_argument('--quick', action='store_true')
  parser.add_argument('--out', default=os.path.join(ROOT, 'experiments', 'benchmark', 'results.json'))
  args = parser.parse_args()
  if args.worker:
    print(json.dumps(workers.WORKERS[args.worker](args)))
    return

  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    has_torch = True
  except ImportError:
    has_torch = False
    print('PyTorch is not installed (pip install torch==2.13.0): no comparison', file=sys.stderr)
  started = time.time()
  out = {'machine': {**workers.cpu(), 'cores': os.cpu_count(), 'platform': platform.platform()},
         'command': ' '.join([os.path.relpath(sys.executable, ROOT)] + sys.argv), 'quick': args.quick}
  out['peak'] = spawn('peak', args.quick)
  peak = max(v for k, v in out['peak'].items() if k.endswith('gflops'))
  out['peak']['gflops'] = peak
  out['configs'] = {}
  for spec in workers.CONFIGS:
    row = {'jax': spawn('jax', args.quick, config=spec)}
    row['jax']['fraction_of_peak'] = row['jax']['gflops'] / peak
    if has_torch:
      row['torch'] = spawn('torch', args.quick, config=spec)
      row['speedup_vs_torch'] = row['jax']['images_per_sec'] / row['torch']['images_per_sec']
      row['agreement'] = spawn('agreement', args.quick, config=spec)
    out['configs'][spec] = row
    _print_row(spec, row)
  out['startup'] = spawn('startup', args.quick)
  out['sweep'] = {m: spawn('jax', args.quick, members=m) for m in SWEEP_MEMBERS}
  out['iwae'] = spawn('iwae', args.quick)
  out['ceiling'] = spawn('ceiling', args.quick)
  out['seconds'] = time.time() - started
  with open(args.out, 'w') as f:
    json.dump(out, f, indent=2)
  _print_summary(out)
  print(f'written to {args.out}')


def _print_row(spec, row):
  j = row['jax']
  torch_part = (f'  torch {row["torch"]["images_per_sec"]:9.0f} img/s  x{row["speedup_vs_torch"]:.2f}  '
                f'(log p(x|z) within {row["agreement"]["max_relative_difference"]:.0e})' if 'torch' in row else '')
  print(f'{spec:18s} jax {j["images_per_sec"]:9.0f} img/s  {j["full_epoch_seconds"]:6.2f} s/epoch  '
        f'{j["gflops"]:6.1f} GFLOP/s ({100 * j["fraction_of_peak"]:.0f}% of peak)  rss {j["peak_rss_mb"]:.0f} MB'
        f'{torch_part}', flush=True)


def _print_summary(out):
  machine = out['machine']
  print(f'\nmachine: {machine["cpu"]} (family {machine.get("cpu_family")}, model {machine.get("cpu_model")}), '
        f'{machine["cores"]} cores; fp32 matmul peak '
        f'{out["peak"]["gflops"]:.0f} GFLOP/s ({", ".join(f"{k} {v:.0f}" for k, v in out["peak"].items() if k != "gflops")})')
  print(f'startup (run.py to end of first epoch): {out["startup"]["seconds_to_first_epoch"]:.1f} s')
  for m, r in out['sweep'].items():
    print(f'sweep {m:3d} members: {r["images_per_sec"]:9.0f} img/s in aggregate ({r["gflops"]:.0f} GFLOP/s), '
          f'rss {r["peak_rss_mb"]:.0f} MB')
  i = out['iwae']
  print(f'IWAE: {i["images"]} images x {i["samples"]} samples in {i["seconds"]:.1f} s '
        f'({i["decoder_tflop"]:.1f} TFLOP of decoder, {i["decoder_gflops"]:.0f} GFLOP/s)')
  c, dense = out['ceiling'], out['configs'].get('fashion_dense')
  share = f'; fashion_dense trains at {dense["jax"]["images_per_sec"] / c["images_per_sec"]:.0%} of it' if dense else ''
  print(f'ceiling: fashion_dense\'s step matmuls alone {c["images_per_sec"]:.0f} img/s ({c["gflops"]:.0f} GFLOP/s)'
        f'{share}')


if __name__ == '__main__':
  main()
