"""Variational autoencoders on MNIST and Fashion-MNIST in JAX/Flax: data, models, losses, training, checkpoints."""
