"""The mesh layout: how members and batches go onto devices, and that every layout trains the same members.

The layout tests fake CPU devices (`jax_num_cpu_devices`) in subprocesses, one per device count: they assume the
CPU backend, whatever accelerator the machine has.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import read_json, shared
from vae import layout
from vae.errors import VaeError


@pytest.mark.parametrize('num_members,num_devices,want', [
    (1, 1, (1, 1, 1)), (1, 4, (1, 4, 1)), (3, 2, (2, 1, 4)), (3, 4, (2, 2, 4)), (4, 4, (4, 1, 4)),
    (8, 4, (4, 1, 8)), (64, 8, (8, 1, 64)), (5, 6, (3, 2, 6)),
])
def test_automatic_layout(num_members, num_devices, want):
  chosen = layout.choose(num_members, num_devices)
  assert (chosen.members, chosen.data, chosen.lanes) == want
  # Members first: no divisor of the device count between it and the member count was passed over.
  assert not any(num_devices % d == 0 and chosen.members < d <= num_members for d in range(1, num_devices + 1))


def test_layout_as_asked():
  assert layout.choose(8, 4, 'members:2,data:2') == layout.Layout(2, 2, 8)
  assert layout.choose(3, 4, 'data:4') == layout.Layout(1, 4, 3)
  assert layout.choose(3, 4, 'members:4').lanes == 4


@pytest.mark.parametrize('spec,message', [
    ('members:3,data:2', 'members x data must be the device count (4), got 3 x 2'),
    ('members:2,model:2', 'expected members:M,data:D'),
    ('members:0', 'expected members:M,data:D'),
    ('members=2', 'expected members:M,data:D'),
])
def test_bad_mesh(spec, message):
  with pytest.raises(VaeError, match=message.replace('(', r'\(').replace(')', r'\)')):
    layout.choose(4, 4, spec)


# Every layout against one reference: the 4 members trained on one device.
# On 4: members only, members and data with padding lanes (3 members in 2 groups of 2 lanes), data only. (A mesh asked
# for by name: test_layout_as_asked; a sweep member against the same config run alone, on one device:
# tests/test_sweeps.py.)
CASES = {1: [(4, None)], 4: [(4, None), (3, None), (1, None)]}


def _train(num_devices):
  """In a subprocess with `num_devices` fake CPU devices: per case, each member's metrics after one epoch."""
  code = (f'import jax; jax.config.update("jax_platforms", "cpu"); '  # Before vae's import.
          f'jax.config.update("jax_num_cpu_devices", {num_devices}); import sys; '
          f'sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); import test_layout; '
          f'test_layout.worker({num_devices})')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=600,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def worker(num_devices):
  import jax  # pylint: disable=g-import-not-at-top
  assert jax.device_count() == num_devices
  import numpy as np  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from test_sweeps import _config  # pylint: disable=g-import-not-at-top
  from vae import runs  # pylint: disable=g-import-not-at-top
  config = _config()
  config.data.max_train_images, config.data.max_test_images = 160, 100
  config.model.encoder_widths, config.model.decoder_widths, config.model.latent_dim = (32,), (32,), 4
  config.train.batch_size, config.eval.batch_size = 20, 20
  out = {}
  for num_members, mesh in CASES[num_devices]:
    members = []
    for seed in range(num_members):
      member = config.copy_and_resolve_references()
      member.seed, member.train.learning_rate = seed, 1e-3 * (1 + seed)
      members.append(member)
    run = runs.Run(members, mesh)
    state, train, _ = run.train_epoch(run.place(run.initial_states), run.train_images, jnp.int32(1), run.keys,
                                      run.hparams)
    test = run.test_metrics(state)
    params = [float(np.sum(np.abs(np.concatenate([np.ravel(x) for x in jax.tree.leaves(s['params'])]))))
              for s in run.member_states(state)]
    out[f'{num_members} {mesh}'] = {'layout': [run.layout.members, run.layout.data],
                                    'train': [float(v) for v in jax.device_get(train['neg_elbo'])][:num_members],
                                    'test': test['test/neg_elbo'], 'params': params}
  print(json.dumps(out))


@pytest.fixture(scope='module')
def one_device(tmp_path_factory):
  """_train(1), once for the session (conftest.shared)."""
  def make(folder):
    folder.mkdir()
    (folder / 'results.json').write_text(json.dumps(_train(1)))

  return read_json(shared(tmp_path_factory, 'layout_one_device', make) / 'results.json')


@pytest.mark.parametrize('num_devices', [1, 4])
def test_every_layout_trains_the_same_members(num_devices, one_device):
  reference = one_device['4 None']
  results = one_device if num_devices == 1 else _train(num_devices)
  assert set(results) == {f'{m} {mesh}' for m, mesh in CASES[num_devices]}
  for case, got in results.items():
    num_members = int(case.split()[0])
    assert got['layout'][0] * got['layout'][1] == num_devices
    for name in ('train', 'test', 'params'):
      assert len(got[name]) == num_members, (case, name)  # Padding lanes are never reported.
      assert got[name] == pytest.approx(reference[name][:num_members], rel=1e-5), (case, name)
  if num_devices == 4:
    assert results['3 None']['layout'] == [2, 2] and results['4 None']['layout'] == [4, 1]
    assert results['1 None']['layout'] == [1, 4]
