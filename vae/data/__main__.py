"""`python -m vae.data NAME...` finds (or fetches) and verifies each dataset, printing where it lies (`make data`)."""
import sys

from vae.data import DATASETS, find_dir, load
from vae.errors import VaeError


def main(argv):
  for name in argv[1:] or DATASETS:
    data = load(name)
    print(f'{name}: {find_dir(name)}: {len(data.train_images)} train, {len(data.test_images)} test images, '
          f'checksums ok')


if __name__ == '__main__':
  try:
    main(sys.argv)
  except VaeError as e:
    sys.exit(f'error: {e}')
