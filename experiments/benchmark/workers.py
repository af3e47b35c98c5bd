"""The benchmark's workers: each measures one thing in its own process and prints one JSON object (benchmark.py and
accelerator.sh run them as `benchmark.py --worker=NAME`; accelerator.py and layouts.py share their helpers)."""
import contextlib
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
CONFIGS = {'fashion_dense': None, 'mnist18_conv': 3200, 'latent2d': None, 'latent2d:fashion': None,
           'cifar10': 1280}
SWEEP_IMAGES = 6000  # Per member.
# Configs whose data are not on this machine (CIFAR-10 comes from TFDS): random uint8 images of their shape, in
# memory, and their train set's size (for the seconds of a full epoch). The speed of a step does not depend on the
# pixels' values.
SYNTHETIC = {'cifar10': ((32, 32, 3), 50_000)}


def load_config(spec):
  import importlib.util  # pylint: disable=g-import-not-at-top
  name, _, variant = spec.partition(':')
  module_spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(variant) if variant else module.get_config()


@contextlib.contextmanager
def data_of(spec, config, num_images):
  """Points `config.data` at SYNTHETIC random images for a config whose data are not here (an .npz file, data.source
  npz, for the time of the block); any other config's data as they are."""
  if spec not in SYNTHETIC:
    yield
    return
  import numpy as np  # pylint: disable=g-import-not-at-top
  shape, _ = SYNTHETIC[spec]
  rng = np.random.default_rng(0)
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, f'{spec}.npz')
    np.savez(path, x_train=rng.integers(0, 256, (num_images,) + shape, np.uint8),
             x_test=rng.integers(0, 256, (config.train.batch_size,) + shape, np.uint8))
    with config.unlocked():
      config.data.source, config.data.dir = 'npz', path
    yield


def train_images(spec, config, num_images=None):
  """The first `num_images` (None: all) uint8 (N, H, W, C) training images of config `spec` (SYNTHETIC ones random)
  and the size of its whole train set."""
  if spec in SYNTHETIC:
    import numpy as np  # pylint: disable=g-import-not-at-top
    shape, size = SYNTHETIC[spec]
    return np.random.default_rng(0).integers(0, 256, (num_images or size,) + shape, np.uint8), size
  from vae import data  # pylint: disable=g-import-not-at-top
  images = data.load(config.data.name, None, config.data.classes).train_images
  return images[:num_images], len(images)


def peak_rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def step_flops(run, config):
  """XLA's FLOP count of one train step on one batch."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from vae import models, steps  # pylint: disable=g-import-not-at-top
  x = jnp.zeros((config.train.batch_size, models.input_size(config.model)), jnp.float32)
  step = jax.jit(lambda s, x, k, h: steps.train_step(s, x, k, h, graphdef=run.graphdef, optimizer=run.optimizer,
                                                      model_config=config.model, objective=config.train.objective,
                                                      num_samples=config.train.num_samples))
  cost = step.lower(run.initial_states[0], x, jax.random.key(0), steps.hparams(config)).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost['flops'])


def time_epochs(run_epoch, epochs):
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
  seconds = time_epochs(lambda: jax.block_until_ready(epoch(weights, xs)), 1 if args.quick else 3)
  cost = jax.jit(step).lower(weights, xs[0]).compile().cost_analysis()
  flops = float((cost[0] if isinstance(cost, (list, tuple)) else cost)['flops']) / batch
  return {'images_per_sec': steps * batch / seconds, 'flops_per_image': flops,
          'gflops': flops * steps * batch / seconds / 1e9}


def worker_jax(args):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  if args.num_cpu_devices:  # Before vae's import, whose modules create arrays.
    jax.config.update('jax_num_cpu_devices', args.num_cpu_devices)
  from vae import runs, sweeps  # pylint: disable=g-import-not-at-top
  config = load_config(args.config)
  images = SWEEP_IMAGES if args.members else CONFIGS[args.config]
  if args.quick:
    images = min(images or 10 ** 9, 20 * config.train.batch_size)
  with config.unlocked():
    config.data.max_train_images = images
    config.model.conv_impl = args.conv_impl
  with data_of(args.config, config, images):
    configs = sweeps.member_configs(config, [f'seed={",".join(map(str, range(args.members)))}']) if args.members else [
        config]
    run = runs.Run(configs, args.mesh)
    flops_run = runs.Run([config])
  initial = run.place(run.initial_states)
  t0 = time.perf_counter()
  compiled = run.compile_epoch(initial)
  compile_seconds = time.perf_counter() - t0
  state = {'s': initial}

  def run_epoch():
    state['s'], metrics, _ = compiled(state['s'], run.train_images, jnp.int32(1), run.keys, run.hparams)
    jax.block_until_ready(metrics)

  seconds = time_epochs(run_epoch, 1 if args.quick or args.members else 3)
  num_images = run.steps_per_epoch * config.train.batch_size * max(1, args.members)
  full_steps = train_images(args.config, config, 1)[1] // config.train.batch_size
  flops = step_flops(flops_run, config) / config.train.batch_size
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
  images = CONFIGS[args.config]
  if args.quick:
    images = min(images or 10 ** 9, 20 * config.train.batch_size)
  images, full_set = train_images(args.config, config, images)
  with config.unlocked():
    config.model.image_shape = images.shape[1:]  # As the JAX run takes it from the data.
  images = torch.from_numpy(data.flat(images).copy())
  model = torch_vae.make(config)
  opt = torch_vae.optimizer(model, config.train)
  generator = torch.Generator().manual_seed(0)
  seconds = time_epochs(lambda: torch_vae.train_epoch(model, opt, images, config, generator),
                         1 if args.quick else 3)
  num_images = len(images) // config.train.batch_size * config.train.batch_size
  full_steps = full_set // config.train.batch_size
  return {'images_per_sec': num_images / seconds, 'seconds_per_epoch': seconds,
          'full_epoch_seconds': seconds * full_steps * config.train.batch_size / num_images,
          'peak_rss_mb': peak_rss_mb(),
          'threads': torch.get_num_threads()}


def worker_agreement(args):
  """The reconstruction term of the two implementations on the same inputs: log p(x | out) per image under the
  config's likelihood, vae/likelihoods.py's against torch_vae.py's, float32, on random decoder outputs (N(0, 2^2):
  log-scales from about -6 to 6) and images; the largest relative difference."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  import torch_vae  # pylint: disable=g-import-not-at-top  # Beside this file.
  from vae import data, models  # pylint: disable=g-import-not-at-top
  config = load_config(args.config)
  images, _ = train_images(args.config, config, 16)
  with config.unlocked():
    config.model.image_shape = images.shape[1:]
  (n, h, w, _), lik = images.shape, models.likelihood_of(config.model)
  out = np.random.default_rng(1).normal(0, 2, (n, h * w * lik.outputs_per_pixel())).astype(np.float32)
  x = data.flat(images).astype(np.float32) / 255
  got = np.asarray(lik.log_prob(jnp.asarray(out), jnp.asarray(x)), np.float64)
  torch_out = torch.from_numpy(out)
  if config.model.name == 'conv':  # Its decoder's (N, P, H, W).
    torch_out = torch_out.view(n, h, w, -1).permute(0, 3, 1, 2)
  expected = torch_vae.log_prob(torch_out, torch.from_numpy(x), config.model.likelihood,
                                config.model.get('sigma', 1.0)).numpy().astype(np.float64)
  return {'likelihood': config.model.likelihood, 'images': n, 'mean_log_prob': float(expected.mean()),
          'max_relative_difference': float(np.max(np.abs(got - expected) / np.abs(expected)))}


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


def cpu():
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


WORKERS = {'peak': worker_peak, 'jax': worker_jax, 'torch': worker_torch, 'agreement': worker_agreement,
           'iwae': worker_iwae, 'startup': worker_startup, 'ceiling': worker_ceiling}
