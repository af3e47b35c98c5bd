"""The accelerator benchmark's workers (experiments/benchmark/accelerator.sh runs them, one process each).

  python experiments/benchmark/accelerator.py --worker=grid --config=fashion_dense --precision=float32,tensorfloat32
  python experiments/benchmark/accelerator.py --worker=e2e --cache=/tmp/jax-cache [-- run.py overrides]
  python experiments/benchmark/accelerator.py --worker=torch [--config=cifar10]

Each prints one JSON object. Figures are images/s over whole epochs after a warm-up epoch (median of `--epochs`),
compile excluded, as in benchmark.py, whose workers `iwae` and `ceiling` the script also runs.
- grid: one config's training throughput over every combination of --precision (train.matmul_precision),
  --unroll (train.scan_unroll), --conv_impl and --batch_size, in one process; --members for a vmapped sweep.
- e2e: `run.py` end to end in a fresh workdir, timed by its log lines as they arrive: start-up to the end of
  epoch 1, the seconds between epochs beyond each epoch's own compute (metrics.jsonl's `seconds`), the evaluation,
  the wall time; and the run's test -ELBO and IW NLL (the NLL under each training precision).
- torch: fashion_dense in PyTorch on CUDA when there is one (else the CPU): eager with fused Adam, the whole step
  captured in one CUDA graph, and a 64-member sweep as batched matmuls (bmm) in one graph; float32 and TF32. With
  --config another config (a conv one: cifar10), its torch_vae.py model eager (cuDNN autotuned), float32 and TF32.
Configs without their data here (cifar10) train on random images of their shape (workers.SYNTHETIC).
"""
import argparse
import functools
import itertools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

import workers  # Beside this file.

ROOT = workers.ROOT
# Images per timed epoch (None: the train set).
STEP_IMAGES = {'fashion_dense': None, 'mnist18_conv': 3200, 'cifar10': 6400}


def worker_grid(args):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vae import runs, sweeps  # pylint: disable=g-import-not-at-top
  out = {'backend': jax.default_backend(), 'device': jax.devices()[0].device_kind, 'rows': []}
  for precision, unroll, impl, batch in itertools.product(args.precision.split(','), args.unroll.split(','),
                                                          args.conv_impl.split(','), args.batch_size.split(',')):
    config = workers.load_config(args.config)
    with config.unlocked():
      config.train.matmul_precision, config.train.scan_unroll = precision, int(unroll)
      config.model.conv_impl = impl
      if batch:
        config.train.batch_size = int(batch)
      images = args.members_images if args.members else STEP_IMAGES.get(args.config)
      config.data.max_train_images = min(images or 10 ** 9, 20 * config.train.batch_size) if args.quick else images
    members = min(args.members, 4) if args.quick else args.members  # A CPU compiles 64 vmapped lanes slowly.
    configs = sweeps.member_configs(config, [f'seed={",".join(map(str, range(members)))}']) if members else [config]
    row = {'precision': precision, 'unroll': int(unroll), 'conv_impl': impl, 'batch_size': config.train.batch_size,
           'members': max(1, members)}
    try:
      with workers.data_of(args.config, config, config.data.max_train_images):
        run = runs.Run(configs)
      state = {'s': run.place(run.initial_states)}
      t0 = time.perf_counter()
      compiled = run.compile_epoch(state['s'])
      row['compile_seconds'] = time.perf_counter() - t0

      def epoch(compiled=compiled, run=run, state=state):
        state['s'], metrics, _ = compiled(state['s'], run.train_images, jnp.int32(1), run.keys, run.hparams)
        jax.block_until_ready(metrics)

      seconds = workers.time_epochs(epoch, 1 if args.quick else args.epochs)
      images = run.steps_per_epoch * config.train.batch_size * len(configs)
      row.update(images_per_sec=images / seconds, seconds_per_epoch=seconds,
                 microseconds_per_step=1e6 * seconds / run.steps_per_epoch)
    except Exception as e:  # pylint: disable=broad-except  # One failed variant (out of memory, say) is a row too.
      row['failed'] = f'{type(e).__name__}: {str(e).splitlines()[0][:300]}'
    out['rows'].append(row)
    print(json.dumps(row), file=sys.stderr, flush=True)
  return out


def worker_e2e(args):
  """run.py end to end; its phases from the log lines' arrival times and metrics.jsonl."""
  with tempfile.TemporaryDirectory() as workdir:
    cmd = [sys.executable, os.path.join(ROOT, 'run.py'), f'--config=configs/{args.config}.py', f'--workdir={workdir}',
           f'--compilation_cache={args.cache}', *args.overrides]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED='1'))
    epochs, evaluated, compiled, tail = {}, None, None, []
    for line in proc.stderr:
      now = time.perf_counter() - t0
      tail = (tail + [line])[-20:]
      if (m := re.search(r'\] epoch (\d+)/\d+', line)):
        epochs[int(m.group(1))] = now
      elif 'compiled the epoch' in line:
        compiled = now
      elif (m := re.search(r'evaluated in ([\d.]+)s', line)):
        evaluated = float(m.group(1))
    proc.wait()
    wall = time.perf_counter() - t0
    if proc.returncode:
      return {'failed': f'run.py exited {proc.returncode}: {"".join(tail)[-1500:]}'}
    records = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
    with open(os.path.join(workdir, 'results.json')) as f:
      results = json.load(f)
  own = {r['epoch']: r['seconds'] for r in records}
  gaps = [epochs[e] - epochs[e - 1] - own[e] for e in sorted(epochs) if e - 1 in epochs and e in own]
  return {'wall_seconds': wall, 'seconds_to_compiled': compiled, 'seconds_to_first_epoch': epochs.get(1),
          'epoch_compute_seconds': sum(own.values()), 'between_epochs_seconds_mean': sum(gaps) / max(1, len(gaps)),
          'between_epochs_seconds_max': max(gaps, default=None), 'evaluation_seconds': evaluated,
          'after_last_epoch_seconds': wall - max(epochs.values(), default=0.0), 'epochs': len(records),
          'test/neg_elbo': results['test/neg_elbo'], 'test/nll_iw': results['test/nll_iw'],
          'eval/iw_samples': results['eval/iw_samples'], 'overrides': args.overrides}


def worker_torch(args):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from vae import data  # pylint: disable=g-import-not-at-top
  cuda = torch.cuda.is_available()
  dev = 'cuda' if cuda else 'cpu'
  out = {'torch': torch.__version__, 'device': torch.cuda.get_device_name() if cuda else 'cpu'}
  if args.config == 'fashion_dense':
    images = data.flat(data.load('fashion_mnist').train_images)
    forms = (('eager', _eager), ('graph', _graph), ('sweep64', _sweep)) if cuda else (('eager', _eager),)
  else:
    config = workers.load_config(args.config)
    images, _ = workers.train_images(args.config, config, STEP_IMAGES.get(args.config))
    with config.unlocked():
      config.model.image_shape = images.shape[1:]
    images = data.flat(images)
    forms = (('eager', functools.partial(_eager_config, config)),)
    torch.backends.cudnn.benchmark = True
  if args.quick:
    images = images[:2000]
  images = torch.from_numpy(np.ascontiguousarray(images)).to(dev)
  for tf32 in ((False, True) if cuda else (False,)):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    for name, fn in forms:
      key = f'{name}_{"tf32" if tf32 else "float32"}'
      try:
        out[key] = fn(torch, images, dev, 1 if args.quick else args.epochs)
      except Exception as e:  # pylint: disable=broad-except
        out[key] = f'failed: {type(e).__name__}: {e}'[:300]
      print(json.dumps({key: out[key]}), file=sys.stderr, flush=True)
  return out


BATCH, LATENT, WIDTHS = 100, 128, ((784, 512), (512, 256), (256, 256), (128, 256), (256, 512), (512, 784))


def _dense(dev):
  """fashion_dense in PyTorch (torch_vae.py, beside this file: the model and loss benchmark.py compares against)."""
  import torch_vae  # pylint: disable=g-import-not-at-top
  return torch_vae.make(workers.load_config('fashion_dense')).to(dev), torch_vae.loss


def _median_epoch(torch, epoch, epochs):
  sync = torch.cuda.synchronize if torch.cuda.is_available() else lambda: None
  epoch()
  sync()
  times = []
  for _ in range(epochs):
    t0 = time.perf_counter()
    epoch()
    sync()
    times.append(time.perf_counter() - t0)
  return sorted(times)[len(times) // 2]


def _eager(torch, images, dev, epochs):
  """A plain loop, fused Adam, a fresh permutation every epoch (pytorch/examples' VAE), data on the device."""
  model, loss = _dense(dev)
  return _eager_loop(torch, images, dev, epochs, model, 1e-3, BATCH, lambda x: loss(model, x, 'bernoulli', 1.0, 1.0))


def _eager_config(config, torch, images, dev, epochs):
  """torch_vae.py's model of `config` in a plain loop, fused Adam, data on the device."""
  import torch_vae  # pylint: disable=g-import-not-at-top
  model, m = torch_vae.make(config).to(dev), config.model
  return _eager_loop(torch, images, dev, epochs, model, config.train.learning_rate, config.train.batch_size,
                     lambda x: torch_vae.loss(model, x, m.likelihood, m.get('sigma', 1.0), config.train.beta))


def _eager_loop(torch, images, dev, epochs, model, lr, batch, loss_of):
  """Images/s of epochs of `loss_of(x)` steps on `model`: a fresh permutation every epoch, fused Adam."""
  opt = torch.optim.Adam(model.parameters(), lr=lr, fused=dev == 'cuda')
  steps = len(images) // batch

  def epoch():
    order = torch.randperm(len(images), device=dev)
    for i in range(steps):
      x = images[order[i * batch:(i + 1) * batch]].float() / 255.0
      opt.zero_grad(set_to_none=True)
      loss_of(x).backward()
      opt.step()
  return steps * batch / _median_epoch(torch, epoch, epochs)


def _graphed(torch, images, step_fn, index, steps, images_per_step, epochs):
  """step_fn (reading its batch through `index`) captured in one CUDA graph; images/s of its replays."""
  stream = torch.cuda.Stream()
  stream.wait_stream(torch.cuda.current_stream())
  with torch.cuda.stream(stream):
    for _ in range(3):
      step_fn()
  torch.cuda.current_stream().wait_stream(stream)
  graph = torch.cuda.CUDAGraph()
  with torch.cuda.graph(graph):
    step_fn()

  def epoch():
    order = torch.randperm(len(images), device='cuda')
    for i in range(steps):
      start = (i * BATCH) % (len(images) - BATCH + 1)
      index.copy_(order[start:start + BATCH])
      graph.replay()
  return steps * images_per_step / _median_epoch(torch, epoch, epochs)


def _graph(torch, images, dev, epochs):
  model, loss = _dense(dev)
  opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True, fused=True)
  index = torch.zeros(BATCH, dtype=torch.long, device=dev)

  def step():
    x = images[index].float() / 255.0
    opt.zero_grad(set_to_none=False)
    loss(model, x, 'bernoulli', 1.0, 1.0).backward()
    opt.step()
  return _graphed(torch, images, step, index, len(images) // BATCH, BATCH, epochs)


def _sweep(torch, images, dev, epochs, members=64, member_images=6000):
  """64 independent members as batched matmuls, one Adam over the stacked tensors (elementwise: the members stay
  independent), in one CUDA graph; aggregate images/s, each member's epoch `member_images` images."""
  from torch import nn  # pylint: disable=g-import-not-at-top
  from torch.nn import functional as F  # pylint: disable=g-import-not-at-top
  params = []
  for a, b in WIDTHS:
    w = torch.empty(members, a, b, device=dev)
    for m in range(members):
      nn.init.kaiming_uniform_(w[m].T, a=math.sqrt(5))
    params += [w.requires_grad_(), torch.zeros(members, 1, b, device=dev, requires_grad=True)]
  opt = torch.optim.Adam(params, lr=1e-3, capturable=True, fused=True)
  index = torch.zeros(BATCH, dtype=torch.long, device=dev)
  layer = lambda h, i: torch.baddbmm(params[2 * i + 1], h, params[2 * i])

  def step():
    x = (images[index].float() / 255.0).expand(members, BATCH, 784)  # One batch for all: the cost is the same.
    mean, logvar = layer(F.relu(layer(F.relu(layer(x, 0)), 1)), 2).chunk(2, -1)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(members, BATCH, LATENT, device=dev)
    out = layer(F.relu(layer(F.relu(layer(z, 3)), 4)), 5)
    recon = F.binary_cross_entropy_with_logits(out, x, reduction='none').sum(-1)
    kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).sum(-1)
    opt.zero_grad(set_to_none=False)
    (recon + kl).mean(-1).sum().backward()  # Summed over members: each member's gradient is its own.
    opt.step()
  return _graphed(torch, images, step, index, member_images // BATCH, members * BATCH, epochs)


def worker_versions(args):
  del args
  import importlib.metadata  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  out = {'backend': jax.default_backend(), 'device': jax.devices()[0].device_kind, 'device_count': jax.device_count(),
         'cpu': workers.cpu(), 'cores': os.cpu_count()}
  for package in ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'numpy', 'torch'):
    try:
      out[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      out[package] = None
  try:
    out['nvidia_smi'] = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'],
                                       capture_output=True, text=True, timeout=30).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    out['nvidia_smi'] = None
  return out


WORKERS = {'grid': worker_grid, 'e2e': worker_e2e, 'torch': worker_torch, 'versions': worker_versions}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--worker', choices=sorted(WORKERS), required=True)
  parser.add_argument('--config', default='fashion_dense')
  parser.add_argument('--precision', default='float32')
  parser.add_argument('--unroll', default='1')
  parser.add_argument('--conv_impl', default='auto')
  parser.add_argument('--batch_size', default='', help='comma-separated; empty: the config\'s')
  parser.add_argument('--members', type=int, default=0)
  parser.add_argument('--members_images', type=int, default=6000)
  parser.add_argument('--epochs', type=int, default=3)
  parser.add_argument('--cache', default='', help='e2e: run.py --compilation_cache (empty: off)')
  parser.add_argument('--quick', action='store_true')
  parser.add_argument('overrides', nargs='*', help='e2e: run.py flags, after --')
  args = parser.parse_args()
  print(json.dumps(WORKERS[args.worker](args)))


if __name__ == '__main__':
  main()
