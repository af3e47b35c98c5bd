"""Benchmark of the mesh layouts: a fashion_dense sweep's aggregate images/s, members replicated against sharded.

  .venv/bin/python experiments/benchmark/layouts.py     # table on stdout, JSON in experiments/benchmark/layouts.json

For 4, 16 and 64 members on 1, 2 and 4 fake CPU devices (`jax_num_cpu_devices`, one process each):
- replicated: --mesh=members:1,data:N, what every sweep did before the 'members' axis: each device runs every
  member on 1/N of each batch and all-reduces every member's gradients every step;
- sharded: the automatic layout, --mesh=members:N,data:1: each device trains its members alone.
Fake devices share this machine's cores, so the figures compare layouts' overheads, not the speed of N devices.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchmark  # pylint: disable=g-import-not-at-top  # Beside this file: its workers.
import workers  # pylint: disable=g-import-not-at-top

MEMBERS = (4, 16, 64)
DEVICES = (1, 2, 4)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), 'layouts.json'))
  args = parser.parse_args()
  started = time.time()
  rows = []
  for members in MEMBERS:
    for devices in DEVICES:
      for name, mesh in (('replicated', f'members:1,data:{devices}'), ('sharded', f'members:{devices},data:1')):
        if devices == 1 and name == 'sharded':
          continue  # One device: both layouts are the same program.
        r = benchmark.spawn('jax', args.quick, members=members, mesh=mesh, num_cpu_devices=devices)
        rows.append({'members': members, 'devices': devices, 'layout': name if devices > 1 else 'one device',
                     'mesh': r['mesh'], 'images_per_sec': r['images_per_sec'], 'compile_seconds': r['compile_seconds'],
                     'peak_rss_mb': r['peak_rss_mb']})
        print(f'{members:3d} members  {devices} device(s)  {rows[-1]["layout"]:10s}  {r["mesh"]:18s} '
              f'{r["images_per_sec"]:9.0f} img/s in aggregate', flush=True)
  out = {'machine': {**workers.cpu(), 'cores': os.cpu_count()},
         'command': ' '.join([os.path.relpath(sys.executable, benchmark.ROOT)] + sys.argv), 'quick': args.quick,
         'rows': rows, 'seconds': time.time() - started}
  with open(args.out, 'w') as f:
    json.dump(out, f, indent=2)
  print(f'written to {args.out}')


if __name__ == '__main__':
  main()
