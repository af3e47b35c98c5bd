"""Variational autoencoders on MNIST and Fashion-MNIST in JAX/Flax: data, models, losses, training, checkpoints.

`vae.load(workdir)` returns the trained model of a run (see vae/api.py).
"""
from vae.api import Model, load
