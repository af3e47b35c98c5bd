"""How a run's members and batches are laid out over the devices: a 2-D mesh ('members', 'data').

Members (a plain run is one) are sharded over 'members' and need no communication: each device group trains its
own members alone. Each member's batch is sharded over 'data', whose devices all-reduce that member's gradients.
The automatic layout puts as many devices as it can on 'members' (the largest divisor of the device count that is
at most the member count) and the rest on 'data'; when the member count is not a multiple of the 'members' size,
the last member is repeated in padding lanes, which compute but are never written.
"""
import dataclasses
import re

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from vae.errors import VaeError

AXES = ('members', 'data')


@dataclasses.dataclass(frozen=True)
class Layout:
  members: int  # Size of the 'members' mesh axis.
  data: int  # Size of the 'data' mesh axis.
  num_members: int  # The run's real members.

  @property
  def lanes(self):
    """Members plus padding: the length of every array's member axis, a multiple of the 'members' size."""
    return -(-self.num_members // self.members) * self.members

  def describe(self):
    pad = self.lanes - self.num_members
    return (f'mesh members:{self.members},data:{self.data} over {self.members * self.data} {jax.default_backend()} '
            f'device(s) in {jax.process_count()} process(es): {self.num_members} member(s)'
            f'{f" + {pad} padding lane(s)" if pad else ""}, {self.lanes // self.members} per device group, '
            f'each batch split {self.data} way(s)')


def parse(spec):
  """{'members': m, 'data': d} from 'members:4,data:2' (either part may be left out); VaeError if malformed."""
  sizes = {}
  for part in spec.split(','):
    match = re.fullmatch(r'\s*(\w+)\s*:\s*(\d+)\s*', part)
    if not match or match.group(1) not in AXES or int(match.group(2)) < 1 or match.group(1) in sizes:
      raise VaeError(f'--mesh={spec}: expected members:M,data:D with positive sizes (e.g. --mesh=members:4,data:2)')
    sizes[match.group(1)] = int(match.group(2))
  return sizes


def choose(num_members, num_devices, spec=None):
  """The Layout of `num_members` members on `num_devices` devices: automatic, or as `spec` ('members:4,data:2')."""
  if spec:
    sizes = parse(spec)
    members = sizes.get('members', num_devices // sizes.get('data', num_devices))
    data = sizes.get('data', num_devices // max(members, 1))
    if members * data != num_devices:
      raise VaeError(f'--mesh={spec}: members x data must be the device count ({num_devices}), got '
                     f'{members} x {data}')
    return Layout(members, data, num_members)
  members = max(d for d in range(1, num_devices + 1) if num_devices % d == 0 and d <= num_members)
  return Layout(members, num_devices // members, num_members)


def is_lead():
  """Whether this process writes what a person reads: process 0 (every process of a single-process run)."""
  return jax.process_index() == 0


def make_mesh(layout):
  devices = np.asarray(jax.devices()).reshape(layout.members, layout.data)
  return jax.sharding.Mesh(devices, AXES, axis_types=(jax.sharding.AxisType.Auto,) * 2)


def by_member(mesh):
  """Arrays with a leading member axis: that axis over 'members', the rest replicated within a device group."""
  return NamedSharding(mesh, P('members'))


def replicated(mesh):
  return NamedSharding(mesh, P())


def put(tree, sharding):
  """Host (numpy) arrays as global arrays of `sharding`; every process passes the same values (one path for one
  process or many: each process fills only its own devices' shards)."""
  return jax.tree.map(lambda x: jax.make_array_from_callback(np.shape(x), sharding, lambda index: np.asarray(x)[index]),
                      tree)


def fetch(tree):
  """Global arrays as numpy on every process (replicated outputs are already whole on each)."""
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
