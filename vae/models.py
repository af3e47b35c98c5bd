"""Encoders, decoders and the VAE as Flax NNX modules, and the functional boundary the training code uses.

`init` splits a module once into a static graph definition and a pure dict of parameters; `apply` merges them
inside pure, jit-able functions. Images enter flat, (N, 784); decoders return flat logits, (N, 784).
"""
import importlib
import importlib.util
import math
import os

import jax
import jax.numpy as jnp
from flax import nnx

# How the conv model's layers compute (the same parameters and functions): 'patch' by patch_conv, 'xla' by XLA's
# native convolutions (cuDNN's, the TPU's), 'auto' patch on the CPU backend and xla elsewhere.
CONV_IMPLS = ('auto', 'xla', 'patch')
ACTIVATIONS = {
    'relu': jax.nn.relu, 'tanh': jnp.tanh, 'softplus': jax.nn.softplus, 'elu': jax.nn.elu, 'gelu': jax.nn.gelu,
    'leaky_relu': jax.nn.leaky_relu, 'sigmoid': jax.nn.sigmoid,
}
IMAGE_SIZE = 28 * 28


class DenseEncoder(nnx.Module):
  """x -> hidden layers -> (mean, logvar) of q(z|x)."""

  def __init__(self, widths, latent_dim, activation, *, rngs):
    sizes = (IMAGE_SIZE,) + tuple(widths)
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.mean = nnx.Linear(sizes[-1], latent_dim, rngs=rngs)
    self.logvar = nnx.Linear(sizes[-1], latent_dim, rngs=rngs)
    self.activation = activation

  def __call__(self, x):
    for layer in self.layers:
      x = self.activation(layer(x))
    return self.mean(x), self.logvar(x)


class DenseDecoder(nnx.Module):
  """z -> hidden layers -> 784 logits."""

  def __init__(self, widths, latent_dim, activation, *, rngs):
    sizes = (latent_dim,) + tuple(widths) + (IMAGE_SIZE,)
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.activation = activation

  def __call__(self, z):
    for layer in self.layers[:-1]:
      z = self.activation(layer(z))
    return self.layers[-1](z)


def patch_conv(x, kernel, strides=(1, 1), padding='SAME'):
  """The cross-correlation of lax.conv_general_dilated (NHWC, HWIO) as one matmul and shifted slices.

  x (..., H, W, Cin), kernel (kh, kw, Cin, Cout); `padding` 'SAME' or ((top, bottom), (left, right)). Forward and
  backward passes are slices, pads and one matmul: inside the epoch's `lax.scan`, XLA's CPU backend runs this
  about 10x faster than its convolution. The matmul goes on whichever side of the kernel's taps keeps the
  intermediate smaller: over input patches (kh * kw * Cin per output pixel), or, for an unstrided conv with
  fewer outputs than inputs (a decoder's last layer), over the pixels into kh * kw * Cout per-tap outputs that
  shifted slices then sum: 32x less memory traffic for 3x3, 32 -> 1.
  """
  kh, kw, cin, cout = kernel.shape
  batch, (h, w) = x.shape[:-3], x.shape[-3:-1]
  if padding == 'SAME':
    padding = [_same_padding(size, k, s) for size, k, s in zip((h, w), (kh, kw), strides)]
  x = jnp.pad(x.reshape((-1, h, w, cin)), ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
  ho, wo = (x.shape[1] - kh) // strides[0] + 1, (x.shape[2] - kw) // strides[1] + 1
  if tuple(strides) == (1, 1) and cout < cin:
    taps = x @ kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout)  # (N, Hp, Wp, kh * kw * cout)
    taps = taps.reshape(taps.shape[:3] + (kh * kw, cout))
    y = sum(taps[:, i:i + ho, j:j + wo, i * kw + j] for i in range(kh) for j in range(kw))
    return y.reshape(batch + (ho, wo, cout))
  patches = jnp.concatenate([
      x[:, i:i + strides[0] * (ho - 1) + 1:strides[0], j:j + strides[1] * (wo - 1) + 1:strides[1], :]
      for i in range(kh) for j in range(kw)], axis=-1)  # (N, ho, wo, kh * kw * cin), ordered as the kernel.
  return (patches @ kernel.reshape(kh * kw * cin, cout)).reshape(batch + (ho, wo, cout))


def xla_conv(x, kernel, strides=(1, 1)):
  """patch_conv's function ('SAME' padding) by lax.conv_general_dilated; x (..., H, W, Cin)."""
  batch, (h, w, cin) = x.shape[:-3], x.shape[-3:]
  y = jax.lax.conv_general_dilated(x.reshape((-1, h, w, cin)), kernel, strides, 'SAME',
                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return y.reshape(batch + y.shape[1:])


def _same_padding(size, kernel, stride):
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


class Conv(nnx.Module):
  """nnx.Conv's parameters and outputs ('SAME' padding, lecun-normal kernel, zero bias), computed by patch_conv
  (impl 'patch') or XLA's convolution ('xla')."""

  def __init__(self, in_features, out_features, kernel_size=(3, 3), strides=(1, 1), *, impl='patch', rngs):
    self.kernel = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (*kernel_size, in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))
    self.strides = strides
    self.impl = impl

  def __call__(self, x):
    conv = patch_conv if self.impl == 'patch' else xla_conv
    return conv(x, self.kernel[...], self.strides) + self.bias[...]


class ConvEncoder(nnx.Module):
  """Conv 32 -> Conv 64 stride 2 -> Conv 64 -> Conv 64 -> Dense 32 -> (mean, logvar); 3x3 kernels, 'SAME'."""

  def __init__(self, latent_dim, activation, *, impl='patch', rngs):
    self.convs = nnx.List([
        Conv(1, 32, impl=impl, rngs=rngs),
        Conv(32, 64, strides=(2, 2), impl=impl, rngs=rngs),
        Conv(64, 64, impl=impl, rngs=rngs),
        Conv(64, 64, impl=impl, rngs=rngs),
    ])
    self.dense = nnx.Linear(14 * 14 * 64, 32, rngs=rngs)
    self.mean = nnx.Linear(32, latent_dim, rngs=rngs)
    self.logvar = nnx.Linear(32, latent_dim, rngs=rngs)
    self.activation = activation

  def __call__(self, x):
    h = x.reshape(x.shape[:-1] + (28, 28, 1))
    for conv in self.convs:
      h = self.activation(conv(h))
    h = self.activation(self.dense(h.reshape(h.shape[:-3] + (-1,))))
    return self.mean(h), self.logvar(h)


class UpConv(nnx.Module):
  """The 3x3, stride-2, 'SAME' transposed convolution of nnx.ConvTranspose: impl 'xla' by lax.conv_transpose, as
  nnx.ConvTranspose computes it, and 'patch' as one 2x2 convolution into the four output phases and a
  depth-to-space.

  Same parameters, same outputs; 'patch' skips the zeros of the dilated input, and its kernel gradient avoids the
  dilated convolution that XLA's CPU backend runs about 50 times slower than this.
  """
  # Per output phase (even, odd), the kernel tap applied to input offsets (-1, 0); 3 is an all-zero tap.
  _TAPS = jnp.array([[0, 2], [3, 1]])

  def __init__(self, in_features, out_features, *, impl='patch', rngs):
    self.kernel = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (3, 3, in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))
    self.impl = impl

  def __call__(self, x):
    if self.impl == 'xla':
      batch, (h, w, cin) = x.shape[:-3], x.shape[-3:]
      y = jax.lax.conv_transpose(x.reshape((-1, h, w, cin)), self.kernel[...], (2, 2), 'SAME',
                                 dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
      return y.reshape(batch + y.shape[1:]) + self.bias[...]
    kernel = jnp.pad(self.kernel[...], ((0, 1), (0, 1), (0, 0), (0, 0)))
    cin, cout = kernel.shape[2:]
    # phases[a, b] is the (2, 2, in, out) kernel of output rows of parity a and columns of parity b.
    phases = kernel[self._TAPS[:, None, :, None], self._TAPS[None, :, None, :]]
    phases = phases.transpose(2, 3, 4, 0, 1, 5).reshape(2, 2, cin, 4 * cout)
    batch, (h, w) = x.shape[:-3], x.shape[-3:-1]
    y = patch_conv(x.reshape((-1, h, w, cin)), phases, padding=((1, 0), (1, 0)))
    y = y.reshape(-1, h, w, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5).reshape(batch + (2 * h, 2 * w, cout))
    return y + self.bias[...]


class ConvDecoder(nnx.Module):
  """Dense 14x14x64 -> ConvTranspose 32 stride 2 -> Conv 1 -> 784 logits."""

  def __init__(self, latent_dim, activation, *, impl='patch', rngs):
    self.dense = nnx.Linear(latent_dim, 14 * 14 * 64, rngs=rngs)
    self.deconv = UpConv(64, 32, impl=impl, rngs=rngs)
    self.out = Conv(32, 1, impl=impl, rngs=rngs)
    self.activation = activation

  def __call__(self, z):
    h = self.activation(self.dense(z)).reshape(z.shape[:-1] + (14, 14, 64))
    h = self.activation(self.deconv(h))
    return self.out(h).reshape(z.shape[:-1] + (IMAGE_SIZE,))


class VAE(nnx.Module):
  """A Gaussian-posterior VAE: encode -> reparameterised sample -> decode."""

  def __init__(self, encoder, decoder):
    self.encoder = encoder
    self.decoder = decoder

  def encode(self, x):
    return self.encoder(x)

  def decode(self, z):
    return self.decoder(z)

  def __call__(self, x, key):
    mean, logvar = self.encode(x)
    z = reparameterize(key, mean, logvar)
    return self.decode(z), mean, logvar


def reparameterize(key, mean, logvar):
  """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I): a sample of q(z|x) differentiable in (mean, logvar)."""
  return mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)


def conv_impl(name):
  """'xla' or 'patch': the conv implementation `name` (one of CONV_IMPLS) means on this JAX backend."""
  if name not in CONV_IMPLS:
    raise ValueError(f'unknown conv_impl {name!r} (allowed: {", ".join(CONV_IMPLS)})')
  if name == 'auto':
    return 'patch' if jax.default_backend() == 'cpu' else 'xla'
  return name


def _dense(model_config, *, rngs):
  activation = ACTIVATIONS[model_config.activation]
  return VAE(DenseEncoder(model_config.encoder_widths, model_config.latent_dim, activation, rngs=rngs),
             DenseDecoder(model_config.decoder_widths, model_config.latent_dim, activation, rngs=rngs))


def _conv(model_config, *, rngs):
  activation, impl = ACTIVATIONS[model_config.activation], conv_impl(model_config.get('conv_impl', 'auto'))
  return VAE(ConvEncoder(model_config.latent_dim, activation, impl=impl, rngs=rngs),
             ConvDecoder(model_config.latent_dim, activation, impl=impl, rngs=rngs))


HE = nnx.initializers.variance_scaling(2.0, 'fan_in', 'normal')  # std sqrt(2 / fan_in), as the VampPrior code.
LOGVAR_BOUNDS = (-6.0, 2.0)  # The VampPrior code's Hardtanh on the encoder's log-variance.
PROBABILITY_BOUNDS = (1e-5, 1 - 1e-5)  # ... and its clamp of the decoder's Bernoulli probabilities.


class GatedDense(nnx.Module):
  """h(x) * sigmoid(g(x)), two linear maps of x (Dauphin et al., 2017), He-normal weights, zero biases."""

  def __init__(self, a, b, *, rngs):
    self.h = nnx.Linear(a, b, kernel_init=HE, rngs=rngs)
    self.g = nnx.Linear(a, b, kernel_init=HE, rngs=rngs)

  def __call__(self, x):
    return self.h(x) * jax.nn.sigmoid(self.g(x))


class GatedEncoder(nnx.Module):
  """x -> gated layers -> (mean, logvar), logvar bounded to LOGVAR_BOUNDS."""

  def __init__(self, widths, latent_dim, *, rngs):
    sizes = (IMAGE_SIZE,) + tuple(widths)
    self.layers = nnx.List([GatedDense(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.mean = nnx.Linear(sizes[-1], latent_dim, kernel_init=HE, rngs=rngs)
    self.logvar = nnx.Linear(sizes[-1], latent_dim, kernel_init=HE, rngs=rngs)

  def __call__(self, x):
    for layer in self.layers:
      x = layer(x)
    return self.mean(x), jnp.clip(self.logvar(x), *LOGVAR_BOUNDS)


class GatedDecoder(nnx.Module):
  """z -> gated layers -> 784 logits, clipped so that the probabilities stay in PROBABILITY_BOUNDS."""

  def __init__(self, widths, latent_dim, *, rngs):
    sizes = (latent_dim,) + tuple(widths)
    self.layers = nnx.List([GatedDense(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    self.out = nnx.Linear(sizes[-1], IMAGE_SIZE, kernel_init=HE, rngs=rngs)

  def __call__(self, z):
    for layer in self.layers:
      z = layer(z)
    bound = math.log(PROBABILITY_BOUNDS[1] / PROBABILITY_BOUNDS[0])  # logit(1 - 1e-5) = -logit(1e-5)
    return jnp.clip(self.out(z), -bound, bound)


def _gated(model_config, *, rngs):
  """The VampPrior code's VAE (Tomczak & Welling, 2018): gated dense layers, He init, bounded log-variance."""
  return VAE(GatedEncoder(model_config.encoder_widths, model_config.latent_dim, rngs=rngs),
             GatedDecoder(model_config.decoder_widths, model_config.latent_dim, rngs=rngs))


# The built-in models: `model.name` -> a factory (model_config, *, rngs) -> module with encode, decode, __call__.
FACTORIES = {'dense': _dense, 'conv': _conv, 'gated': _gated}
_LOADED = {}  # Absolute file path -> its module: one class object per file, however often a config names it.


def factory(name):
  """The model factory `name` names: a built-in (FACTORIES), or 'path/to/file.py:Name' (a path from the working
  folder, else from the project's root) or 'package.module:Name'; ValueError saying why it cannot be found.

  `Name(model_config, rngs=rngs)` returns the module: a `VAE(encoder, decoder)` of one's own encoder and decoder, or
  any nnx.Module with the same three methods (encode(x) -> (mean, logvar), decode(z) -> (N, 784), __call__(x, key)).
  """
  if name in FACTORIES:
    return FACTORIES[name]
  where, sep, attribute = name.rpartition(':')
  if not sep or not where or not attribute:
    raise ValueError(f'unknown (built-in: {", ".join(FACTORIES)}; or your own, as path/to/file.py:Name or '
                     f'package.module:Name)')
  if where.endswith('.py'):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = next((p for p in (os.path.abspath(where), os.path.join(root, where)) if os.path.isfile(p)), None)
    if path is None:
      raise ValueError(f'{where}: no such file (from {os.getcwd()} or {root})')
    if path not in _LOADED:
      spec = importlib.util.spec_from_file_location(f'vae_user_model_{len(_LOADED)}', path)
      module = importlib.util.module_from_spec(spec)
      spec.loader.exec_module(module)
      _LOADED[path] = module
    module = _LOADED[path]
  else:
    try:
      module = importlib.import_module(where)
    except ImportError as e:
      raise ValueError(f'cannot import {where} ({e})') from None
  if not callable(getattr(module, attribute, None)):
    raise ValueError(f'{where} defines no {attribute}')
  return getattr(module, attribute)


def make(model_config, key):
  """Builds the VAE a `config.model` describes, parameters initialised from `key`.

  The conv implementation is a static attribute: the parameters are the same whatever it is, so a checkpoint
  trained with one loads into the other. Configs saved before `model.conv_impl` existed mean 'auto'.
  """
  return factory(model_config.name)(model_config, rngs=nnx.Rngs(params=key))


def init(model_config, key):
  """(graphdef, params): the static structure and a pure dict of parameter arrays."""
  graphdef, state = nnx.split(make(model_config, key))
  return graphdef, nnx.to_pure_dict(state)


def apply(graphdef, params, method, *args):
  """Calls `method` ('__call__', 'encode' or 'decode') of the module `graphdef` with `params`; pure."""
  model = nnx.merge(graphdef, params)
  return getattr(model, method)(*args)
