"""Tests of vae/models/convolution.py: patch_conv and the conv layers against lax's convolutions and nnx's modules."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vae.models import convolution as conv


# patch_conv's two paths (a matmul over input patches; for an unstrided conv with fewer outputs than inputs, over the
# pixels into per-tap outputs) at the conv model's shapes, and at odd sizes, an even kernel and a stride of 2 (uneven
# 'SAME' padding).
@pytest.mark.parametrize('size,k,stride,cin,cout', [(28, 3, 1, 1, 32), (28, 3, 2, 32, 64), (28, 3, 1, 32, 1),
                                                    (9, 2, 1, 5, 3), (7, 2, 1, 3, 5), (9, 3, 2, 2, 4)])
def test_patch_conv_is_lax_conv(size, k, stride, cin, cout):
  key_x, key_k = jax.random.split(jax.random.key(size * k + stride))
  x = jax.random.normal(key_x, (2, 3, size, size, cin))  # Two leading batch dims.
  kernel = jax.random.normal(key_k, (k, k, cin, cout))
  got = conv.patch_conv(x, kernel, (stride, stride))
  want = jax.lax.conv_general_dilated(x.reshape((6, size, size, cin)), kernel, (stride, stride), 'SAME',
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('k,stride,cin,cout', [(3, 1, 32, 1), (3, 1, 1, 32), (3, 2, 4, 6)])
def test_patch_conv_gradients_are_lax_conv_gradients(k, stride, cin, cout):
  key_x, key_k, key_c = jax.random.split(jax.random.key(cin + cout), 3)
  x = jax.random.normal(key_x, (3, 10, 10, cin))
  kernel = jax.random.normal(key_k, (k, k, cin, cout))
  cotangent = jax.random.normal(key_c, (3, 10 // stride, 10 // stride, cout))

  def lax_conv(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))

  def grads(conv):
    return jax.grad(lambda x, kernel: jnp.sum(conv(x, kernel) * cotangent), argnums=(0, 1))(x, kernel)

  for got, want in zip(grads(lambda x, kernel: conv.patch_conv(x, kernel, (stride, stride))), grads(lax_conv)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize('impl', ['patch', 'xla'])
def test_conv_module_matches_nnx_conv(impl):
  ours = conv.Conv(32, 64, strides=(2, 2), impl=impl, rngs=nnx.Rngs(params=jax.random.key(3)))
  reference = nnx.Conv(32, 64, (3, 3), strides=(2, 2), rngs=nnx.Rngs(params=jax.random.key(3)))
  np.testing.assert_array_equal(ours.kernel[...], reference.kernel[...])  # Same initialisation, same draws.
  reference.bias[...] = jnp.linspace(-1, 1, 64)
  ours.bias[...] = reference.bias[...]
  x = jax.random.normal(jax.random.key(4), (5, 28, 28, 32))
  np.testing.assert_allclose(ours(x), reference(x), rtol=1e-4, atol=1e-4)
