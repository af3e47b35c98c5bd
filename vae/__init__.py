"""Variational autoencoders on MNIST and Fashion-MNIST in JAX/Flax: data, models, losses, training, checkpoints.

`vae.load(workdir)` returns the trained model of a run (see vae/api.py); `vae.train(config, workdir)` trains one
from Python, as run.py does, and returns it (vae/launch.py).
"""
from vae.api import Model, load
from vae.launch import train
