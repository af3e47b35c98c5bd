"""Convolution layers for the conv model: nnx.Conv's and nnx.ConvTranspose's functions, computed fast on the CPU.

`impl` 'patch' computes them as matmuls over shifted slices (XLA's CPU convolutions are slow inside the epoch's
scan); 'xla' by XLA's native convolutions (cuDNN's, the TPU's). The parameters are the same either way.
"""
import jax
import jax.numpy as jnp
from flax import nnx

# How the conv model's layers compute (the same parameters and functions): 'patch' by patch_conv, 'xla' by XLA's
# native convolutions (cuDNN's, the TPU's), 'auto' the faster on this backend as measured by
# experiments/benchmark/accelerator.sh at the configs' batch sizes (docs/performance.md): patch on the CPU (about
# 10x inside the epoch's scan) and on an NVIDIA H200 (mnist18_conv at batch 16: 60,588 against 26,338 images/s);
# a TPU's convolutions are its native path (not measured here).
CONV_IMPLS = ('auto', 'xla', 'patch')
AUTO = {'cpu': 'patch', 'gpu': 'patch', 'cuda': 'patch', 'rocm': 'patch'}  # Any other backend: 'xla'.


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
  """nnx.Conv's parameters and outputs ('SAME' padding, lecun-normal kernel unless `kernel_init`, zero bias),
  computed by patch_conv (impl 'patch') or XLA's convolution ('xla')."""

  def __init__(self, in_features, out_features, kernel_size=(3, 3), strides=(1, 1), *, impl='patch',
               kernel_init=nnx.initializers.lecun_normal(), rngs):
    self.kernel = nnx.Param(kernel_init(rngs.params(), (*kernel_size, in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))
    self.strides = strides
    self.impl = impl

  def __call__(self, x):
    conv = patch_conv if self.impl == 'patch' else xla_conv
    return conv(x, self.kernel[...], self.strides) + self.bias[...]


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


def conv_impl(name):
  """'xla' or 'patch': the conv implementation `name` (one of CONV_IMPLS) means on this JAX backend."""
  if name not in CONV_IMPLS:
    raise ValueError(f'unknown conv_impl {name!r} (allowed: {", ".join(CONV_IMPLS)})')
  if name == 'auto':
    return AUTO.get(jax.default_backend(), 'xla')
  return name
