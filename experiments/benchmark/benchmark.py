"""Benchmark: how fast each config trains here, against PyTorch and against this machine's own matmul peak.

  .venv/bin/pip install torch==2.13.0                     # benchmark-only dependency
  .venv/bin/python experiments/benchmark/benchmark.py     # table on stdout, JSON in experiments/benchmark/results.json

Each measurement runs in its own process (so peak RSS is its own, and JAX and PyTorch never share threads):
- peak: fp32 matmul GFLOP/s of 4096x4096 products in JAX and in PyTorch; the machine's peak is the larger.
- jax / torch, per config: training images/s over whole epochs after a warm-up epoch (data in memory; JAX: the
  epoch as one compiled `lax.scan`, data on device), seconds per epoch, peak RSS. FLOPs per image are XLA's cost
  analysis of one compiled train step divided by the batch size; the FLOP rate is that times images/s.
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
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

# Config spec -> images per timed epoch (None: the whole train set); conv is ~100 ms a step here, so a slice.
CONFIGS = {'fashion_dense': None, 'mnist18_conv': 3200, 'latent2d': None, 'latent2d:fashion': None}
SWEEP_MEMBERS = (1, 4, 16, 64)
SWEEP_IMAGES = 6000


def load_config(spec):
  import importlib.util  # pylint: disable=g-import-not-at-top
  name, _, variant = spec.partition(':')
  module_spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(variant) if variant else module.get_config()


def peak_rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- Workers: each prints one JSON object -------------------------------------------------------------------------

def worker_peak(args):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  n, reps = (1024, 3) if args.quick else (4096, 5)
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  dot = jax.jit(jnp.dot)
  dot(a, a).block_until_ready()
  t0 = time.perf_counter()
  for _ in range(reps):
    dot(a, a).block_until_ready()
  out = {'jax_gflops': 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9}
  try:
    import torch  # pylint: disable=g-import-not-at-top
    b = torch.randn(n, n)
    torch.mm(b, b)
    t0 = time.perf_counter()
    for _ in range(reps):
      torch.mm(b, b)
    out['torch_gflops'] = 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9
  except ImportError:
    pass
  return out


def _step_flops(run, config):
  """XLA's FLOP count of one train step on one batch."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vae import steps  # pylint: disable=g-import-not-at-top
  x = jnp.zeros((config.train.batch_size, 784), jnp.float32)
  step = jax.jit(lambda s, x, k, h: steps.train_step(s, x, k, h, graphdef=run.graphdef, optimizer=run.optimizer,
                                                      model_config=config.model, objective=config.train.objective,
                                                      num_samples=config.train.num_samples))
  cost = step.lower(run.initial_states[0], x, jax.random.key(0), steps.hparams(config)).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost['flops'])


def _time_epochs(run_epoch, epochs):
  run_epoch()  # Warm-up.
  times = []
  for _ in range(epochs):
    t0 = time.perf_counter()
    run_epoch()
    times.append(time.perf_counter() - t0)
  return sorted(times)[len(times) // 2]


def worker_ceiling(args):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  config = load_config('fashion_dense')
  m = config.model
  encoder = (784,) + tuple(m.encoder_widths)
  decoder = (m.latent_dim,) + tuple(m.decoder_widths) + (784,)
  shapes = [*zip(encoder, encoder[1:]), (encoder[-1], 2 * m.latent_dim), *zip(decoder, decoder[1:])]
  weights = [jnp.full(shape, 1e-3, jnp.float32) for shape in shapes]
  n_enc = len(encoder)

  def matmuls(ws, x):  # The step's chain of products: encoder, (mean, logvar), decoder; a loss that needs h.
    h = x
    for w in ws[:n_enc]:
      h = h @ w
    h = h[:, :m.latent_dim] + h[:, m.latent_dim:]
    for w in ws[n_enc:]:
      h = h @ w
    return jnp.vdot(h, h)

  def step(ws, x):
    return [w - 1e-9 * g for w, g in zip(ws, jax.grad(matmuls)(ws, x))], None

  batch, steps = config.train.batch_size, 20 if args.quick else 600
  xs = jnp.full((steps, batch, 784), 0.5, jnp.float32)
  epoch = jax.jit(lambda ws, xs: jax.lax.scan(step, ws, xs)[0])
  seconds = _time_epochs(lambda: jax.block_until_ready(epoch(weights, xs)), 1 if args.quick else 3)
  cost = jax.jit(step).lower(weights, xs[0]).compile().cost_analysis()
  flops = float((cost[0] if isinstance(cost, (list, tuple)) else cost)['flops']) / batch
  return {'images_per_sec': steps * batch / seconds, 'flops_per_image': flops,
          'gflops': flops * steps * batch / seconds / 1e9}


def worker_jax(args):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  if args.num_cpu_devices:  # Before vae's import, whose modules create arrays.
    jax.config.update('jax_num_cpu_devices', args.num_cpu_devices)
  from vae import data, runs, sweeps  # pylint: disable=g-import-not-at-top
  config = load_config(args.config)
  images = SWEEP_IMAGES if args.members else CONFIGS[args.config]
  if args.quick:
    images = min(images or 10 ** 9, 20 * config.train.batch_size)
  with config.unlocked():
    config.data.max_train_images = images
    config.model.conv_impl = args.conv_impl
  configs = sweeps.member_configs(config, [f'seed={",".join(map(str, range(args.members)))}']) if args.members else [
      config]
  run = runs.Run(configs, args.mesh)
  initial = run.place(run.initial_states)
  t0 = time.perf_counter()
  compiled = run.compile_epoch(initial)
  compile_seconds = time.perf_counter() - t0
  state = {'s': initial}

  def run_epoch():
    state['s'], metrics, _ = compiled(state['s'], run.train_images, jnp.int32(1), run.keys, run.hparams)
    jax.block_until_ready(metrics)

  seconds = _time_epochs(run_epoch, 1 if args.quick or args.members else 3)
  num_images = run.steps_per_epoch * config.train.batch_size * max(1, args.members)
  full_set = len(data.load(config.data.name, None, config.data.classes).train_images)
  full_steps = full_set // config.train.batch_size
  flops = _step_flops(runs.Run([config]), config) / config.train.batch_size
  return {'images_per_sec': num_images / seconds, 'epoch_images': num_images, 'seconds_per_epoch': seconds,
          'full_epoch_seconds': seconds * full_steps / run.steps_per_epoch, 'compile_seconds': compile_seconds,
          'flops_per_image': flops, 'gflops': flops * num_images / seconds / 1e9, 'peak_rss_mb': peak_rss_mb(),
          'devices': jax.device_count(), 'backend': jax.default_backend(),
          'mesh': f'members:{run.layout.members},data:{run.layout.data}'}


def worker_torch(args):
  import torch  # pylint: disable=g-import-not-at-top
  import torch_vae  # pylint: disable=g-import-not-at-top  # Beside this file.
  from vae import data  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(os.cpu_count())
  torch.set_flush_denormal(True)  # As XLA does on CPU.
  torch.manual_seed(0)
  config = load_config(args.config)
  dataset = data.load(config.data.name, None, config.data.classes)
  images = CONFIGS[args.config] or len(dataset.train_images)
  if args.quick:
    images = min(images, 20 * config.train.batch_size)
  train_images = torch.from_numpy(dataset.train_images[:images].copy())
  model = torch_vae.make(config)
  opt = torch_vae.optimizer(model, config.train)
  generator = torch.Generator().manual_seed(0)
  seconds = _time_epochs(lambda: torch_vae.train_epoch(model, opt, train_images, config, generator),
                         1 if args.quick else 3)
  num_images = len(train_images) // config.train.batch_size * config.train.batch_size
  full_steps = len(dataset.train_images) // config.train.batch_size
  return {'images_per_sec': num_images / seconds, 'seconds_per_epoch': seconds,
          'full_epoch_seconds': seconds * full_steps * config.train.batch_size / num_images,
          'peak_rss_mb': peak_rss_mb(),
          'threads': torch.get_num_threads()}


def worker_iwae(args):
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from vae import api, models, data  # pylint: disable=g-import-not-at-top
  config = load_config('fashion_dense')
  graphdef, params = models.init(config.model, jax.random.key(0))
  model = api.Model(config, graphdef, params)
  test = data.load('fashion_mnist').test_images[:1000 if args.quick else 10000]
  num_samples = 100 if args.quick else 1000
  model.log_likelihood(test[:model.batch_size], num_samples)  # Compile.
  t0 = time.perf_counter()
  log_px = model.log_likelihood(test, num_samples)
  seconds = time.perf_counter() - t0
  decoder_macs = sum(a * b for a, b in zip((128, 256, 512), (256, 512, 784)))
  return {'images': len(test), 'samples': num_samples, 'seconds': seconds, 'finite': bool(np.isfinite(log_px).all()),
          'decoder_gflops': 2 * decoder_macs * len(test) * num_samples / seconds / 1e9,
          'decoder_tflop': 2 * decoder_macs * len(test) * num_samples / 1e12}


def worker_startup(args):
  """Seconds from launching run.py to its log line of epoch 1 (a one-step epoch: compile and data load included)."""
  with tempfile.TemporaryDirectory() as workdir:
    config = load_config('fashion_dense')
    cmd = [sys.executable, os.path.join(ROOT, 'run.py'), '--config=configs/fashion_dense.py', f'--workdir={workdir}',
           f'--config.data.max_train_images={config.train.batch_size}', '--config.train.num_epochs=1']
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seconds = None
    for line in proc.stderr:
      if 'epoch 1/1' in line:
        seconds = time.perf_counter() - t0
        break
    proc.kill()
    proc.wait()
  return {'seconds_to_first_epoch': seconds}


WORKERS = {'peak': worker_peak, 'jax': worker_jax, 'torch': worker_torch, 'iwae': worker_iwae,
           'startup': worker_startup, 'ceiling': worker_ceiling}


def spawn(kind, quick, **kwargs):
  cmd = [sys.executable, os.path.abspath(__file__), f'--worker={kind}'] + (['--quick'] if quick else []) + [
      f'--{k}={v}' for k, v in kwargs.items()]
  result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
  if result.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed:\n{result.stderr[-3000:]}')
  return json.loads(result.stdout.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--worker', choices=sorted(WORKERS))
  parser.add_argument('--config', default='fashion_dense')
  parser.add_argument('--members', type=int, default=0)
  parser.add_argument('--mesh', default=None, help='members:M,data:D (run.py --mesh); default: automatic')
  parser.add_argument('--num_cpu_devices', type=int, default=0)
  parser.add_argument('--conv_impl', default='auto')
  parser.add_argument('--quick', action='store_true')
  parser.add_argument('--out', default=os.path.join(ROOT, 'experiments', 'benchmark', 'results.json'))
  args = parser.parse_args()
  if args.worker:
    print(json.dumps(WORKERS[args.worker](args)))
    return

  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    has_torch = True
  except ImportError:
    has_torch = False
    print('PyTorch is not installed (pip install torch==2.13.0): no comparison', file=sys.stderr)
  started = time.time()
  out = {'machine': {**_cpu(), 'cores': os.cpu_count(), 'platform': platform.platform()},
         'command': ' '.join([os.path.relpath(sys.executable, ROOT)] + sys.argv), 'quick': args.quick}
  out['peak'] = spawn('peak', args.quick)
  peak = max(v for k, v in out['peak'].items() if k.endswith('gflops'))
  out['peak']['gflops'] = peak
  out['configs'] = {}
  for spec in CONFIGS:
    row = {'jax': spawn('jax', args.quick, config=spec)}
    row['jax']['fraction_of_peak'] = row['jax']['gflops'] / peak
    if has_torch:
      row['torch'] = spawn('torch', args.quick, config=spec)
      row['speedup_vs_torch'] = row['jax']['images_per_sec'] / row['torch']['images_per_sec']
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


def _cpu():
  """The CPU's name, family and model (a cloud "AMD EPYC" may be Zen 4 one day and Zen 5 the next), AVX-512."""
  fields = {}
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        key, _, value = line.partition(':')
        fields.setdefault(key.strip(), value.strip())
  except OSError:
    pass
  return {'cpu': fields.get('model name', platform.processor()), 'cpu_family': fields.get('cpu family'),
          'cpu_model': fields.get('model'), 'avx512': 'avx512f' in fields.get('flags', '').split()}


def _print_row(spec, row):
  j = row['jax']
  torch_part = (f'  torch {row["torch"]["images_per_sec"]:9.0f} img/s  x{row["speedup_vs_torch"]:.2f}'
                if 'torch' in row else '')
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
