"""The convolutional encoder and decoder at any image shape, and the conv VAE (`model.name = 'conv'`)."""
import math

from flax import nnx

from vae.models.convolution import Conv, UpConv, conv_impl
from vae.models.base import ACTIVATIONS, VAE, ShapeError, image_shape, likelihood_of


class ConvEncoder(nnx.Module):
  """Conv 32 -> `downsamples` x Conv 64 stride 2 -> Conv 64 -> Conv 64 -> Dense 32 -> (mean, logvar); 3x3 kernels,
  'SAME'. Images of any (H, W, C) whose H and W divide by 2^downsamples."""

  def __init__(self, latent_dim, activation, *, image_shape, downsamples=1, impl='patch', rngs):
    height, width, channels = check_conv_shape(image_shape, downsamples)
    self.convs = nnx.List(
        [Conv(channels, 32, impl=impl, rngs=rngs), Conv(32, 64, strides=(2, 2), impl=impl, rngs=rngs)]
        + [Conv(64, 64, strides=(2, 2), impl=impl, rngs=rngs) for _ in range(downsamples - 1)]
        + [Conv(64, 64, impl=impl, rngs=rngs), Conv(64, 64, impl=impl, rngs=rngs)])
    self.dense = nnx.Linear((height >> downsamples) * (width >> downsamples) * 64, 32, rngs=rngs)
    self.mean = nnx.Linear(32, latent_dim, rngs=rngs)
    self.logvar = nnx.Linear(32, latent_dim, rngs=rngs)
    self.activation = activation
    self.image_shape = tuple(image_shape)

  def __call__(self, x):
    h = x.reshape(x.shape[:-1] + self.image_shape)
    for conv in self.convs:
      h = self.activation(conv(h))
    h = self.activation(self.dense(h.reshape(h.shape[:-3] + (-1,))))
    return self.mean(h), self.logvar(h)


class ConvDecoder(nnx.Module):
  """Dense (H, W) / 2^downsamples x 64 -> (downsamples - 1) x ConvTranspose 64 stride 2 -> ConvTranspose 32 stride 2
  -> Conv P: the likelihood's `outputs_per_pixel` at each of the H x W pixels, flat."""

  def __init__(self, latent_dim, activation, *, image_shape, downsamples=1, outputs_per_pixel=1,
               impl='patch', rngs):
    height, width, _ = check_conv_shape(image_shape, downsamples)
    self.start = (height >> downsamples, width >> downsamples, 64)
    self.dense = nnx.Linear(latent_dim, math.prod(self.start), rngs=rngs)
    self.ups = nnx.List([UpConv(64, 64, impl=impl, rngs=rngs) for _ in range(downsamples - 1)])
    self.deconv = UpConv(64, 32, impl=impl, rngs=rngs)
    self.out = Conv(32, outputs_per_pixel, impl=impl, rngs=rngs)
    self.activation = activation

  def __call__(self, z):
    h = self.activation(self.dense(z)).reshape(z.shape[:-1] + self.start)
    for up in self.ups:
      h = self.activation(up(h))
    h = self.activation(self.deconv(h))
    return self.out(h).reshape(z.shape[:-1] + (-1,))


def check_conv_shape(image_shape, downsamples):
  """(H, W, C), or a ShapeError unless H and W divide by 2^downsamples (each stride halves them exactly)."""
  height, width, channels = image_shape
  if height % (1 << downsamples) or width % (1 << downsamples) or downsamples < 1:
    halvings = ' -> '.join(f'{height / 2 ** i:g}' for i in range(downsamples + 1))
    raise ShapeError(f'images of {height} x {width} x {channels} do not halve {downsamples} times ({halvings}): '
                     f'set model.conv_downsamples so that 2^downsamples divides {height} and {width}, or '
                     f'data.image_size')
  return height, width, channels


def conv_vae(model_config, *, rngs):
  activation, impl = ACTIVATIONS[model_config.activation], conv_impl(model_config.get('conv_impl', 'auto'))
  shape, downsamples = image_shape(model_config), model_config.get('conv_downsamples', 1)
  return VAE(ConvEncoder(model_config.latent_dim, activation, image_shape=shape, downsamples=downsamples, impl=impl,
                         rngs=rngs),
             ConvDecoder(model_config.latent_dim, activation, image_shape=shape, downsamples=downsamples,
                         outputs_per_pixel=likelihood_of(model_config).outputs_per_pixel(), impl=impl, rngs=rngs))
