"""Trains and evaluates a VAE: `python run.py --config=configs/fashion_dense.py --workdir=runs/fashion_dense`.

The flags and what they do: vae/cli.py (`vae-train` after `pip install -e .` is the same command).
"""
from vae import cli

if __name__ == '__main__':
  cli.run()
