"""Sweeps: the --sweep syntax and its errors, and members that match the same configs run alone."""
import glob
import os

import numpy as np
import pytest

from conftest import DENSE, read_json, read_jsonl, run_cli, shared_run
from vae import records, sweeps
from vae.errors import VaeError


def _config():
  import importlib.util  # pylint: disable=g-import-not-at-top
  from conftest import ROOT  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location('fd', os.path.join(ROOT, 'configs', 'fashion_dense.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def test_grid_last_axis_fastest():
  members = sweeps.member_configs(_config(), ['seed=0,1,2', 'train.beta=0.5,4'])
  assert [(m.seed, m.train.beta) for m in members] == [(0, 0.5), (0, 4.0), (1, 0.5), (1, 4.0), (2, 0.5), (2, 4.0)]
  assert sweeps.overrides(members)[3] == {'seed': 1, 'train.beta': 4.0}
  assert all(m.train.learning_rate == 1e-3 and m.model.latent_dim == 128 for m in members)


@pytest.mark.parametrize('spec,message', [
    ('model.latent_dim=2,3', 'model.latent_dim cannot be swept (sweepable: seed, train.beta, train.learning_rate'),
    ('train.num_epoch=1,2', 'train.num_epoch cannot be swept'),
    ('seed=0,x', 'values must be ints'),
    ('train.beta=1,two', 'values must be floats'),
    ('seed', 'expected KEY=V1,V2,...'),
    ('seed=', 'expected KEY=V1,V2,...'),
])
def test_bad_spec(spec, message):
  with pytest.raises(VaeError, match=message.replace('(', r'\(').replace('.', r'\.')):
    sweeps.member_configs(_config(), [spec])


def test_key_swept_twice():
  with pytest.raises(VaeError, match='swept twice'):
    sweeps.parse(['seed=0,1', 'seed=2'])


def test_bad_spec_through_the_cli(tmp_path):
  result = run_cli(*DENSE, f'--workdir={tmp_path}/run', '--sweep=model.name=conv', check=False)
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith('error: --sweep=model.name=conv: model.name cannot be')
  assert not (tmp_path / 'run').exists()


SWEEP = ('--sweep=seed=0,1', '--sweep=train.beta=2', '--sweep=train.learning_rate=0.002')
ALONE = ('--config.seed=1', '--config.train.beta=2', '--config.train.learning_rate=0.002')
CLOSE = dict(rel=1e-5, abs=1e-5)


@pytest.fixture(scope='module')
def sweep_dir(tmp_path_factory):
  return shared_run(tmp_path_factory, 'sweep', *DENSE, '--config.train.num_epochs=2', *SWEEP)


def test_member_matches_the_same_config_alone(sweep_dir, tmp_path):
  run_cli(*DENSE, '--config.train.num_epochs=2', f'--workdir={tmp_path}', *ALONE)
  alone, member = (read_json(os.path.join(d, 'results.json')) for d in (str(tmp_path), f'{sweep_dir}/members/1'))
  assert alone.keys() == member.keys()
  for key in ('test/neg_elbo', 'test/recon', 'test/kl', 'test/nll_iw', 'test/loss'):
    assert member[key] == pytest.approx(alone[key], **CLOSE), key
  np.testing.assert_allclose(member['test/kl_per_dim'], alone['test/kl_per_dim'], rtol=1e-4, atol=1e-5)
  for a, m in zip(read_jsonl(os.path.join(tmp_path, 'metrics.jsonl')),
                  read_jsonl(f'{sweep_dir}/members/1/metrics.jsonl'), strict=True):
    for key in ('train/neg_elbo', 'train/loss', 'test/neg_elbo'):
      assert m[key] == pytest.approx(a[key], **CLOSE), key
  assert read_json(f'{sweep_dir}/members/1/config.json')['seed'] == 1


def test_members_are_kept_apart(sweep_dir):
  for i in (0, 1):
    folder = os.path.join(sweep_dir, 'members', str(i))
    assert sorted(os.listdir(os.path.join(folder, 'checkpoints'))) == ['1', '2']
    assert os.path.getsize(os.path.join(folder, 'figures', 'samples.png')) > 0
    assert [r['epoch'] for r in read_jsonl(os.path.join(folder, 'metrics.jsonl'))] == [1, 2]
  assert read_json(f'{sweep_dir}/members/0/results.json') != read_json(f'{sweep_dir}/members/1/results.json')


def test_summary_mean_and_std_over_seeds(sweep_dir):
  summary = read_json(os.path.join(sweep_dir, 'sweep.json'))
  (row,) = summary['summary']  # One setting (beta 2, lr 0.002), two seeds.
  assert row['setting'] == {} and row['num_seeds'] == 2
  values = [read_json(f'{sweep_dir}/members/{i}/results.json')['test/nll_iw'] for i in (0, 1)]
  assert row['test/nll_iw']['mean'] == pytest.approx((values[0] + values[1]) / 2)
  assert row['test/nll_iw']['std'] == pytest.approx(abs(values[0] - values[1]) / np.sqrt(2))
  assert [m['overrides'] for m in summary['members']] == [{'seed': 0}, {'seed': 1}]
  assert 'mean +- std' in open(os.path.join(sweep_dir, 'sweep.md')).read().lower()


def test_rerun_with_other_values_is_refused(sweep_dir, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = shutil.copytree(sweep_dir, tmp_path / 'sweep')  # A refused run still takes the workdir's lock.
  result = run_cli(*DENSE, '--config.train.num_epochs=2', f'--workdir={workdir}', '--sweep=seed=0,2',
                   '--sweep=train.beta=2', '--sweep=train.learning_rate=0.002', check=False)
  assert result.returncode == 2
  assert 'members/1/config.json: this sweep member was trained with other values (seed=1 there, 2 now)' in (
      result.stderr.strip().splitlines()[-1])


def test_member_ahead_of_the_others_resumes(sweep_dir, tmp_path):
  """A kill between two members' saves leaves member 0 an epoch ahead: the rerun redoes it with member 1."""
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'sweep')
  shutil.copytree(sweep_dir, workdir)
  shutil.rmtree(os.path.join(workdir, 'members', '1', 'checkpoints', '2'))
  for i in (0, 1):
    os.remove(os.path.join(workdir, 'members', str(i), 'results.json'))
  run_cli(*DENSE, '--config.train.num_epochs=2', f'--workdir={workdir}', *SWEEP)
  for i in (0, 1):
    assert read_json(f'{workdir}/members/{i}/results.json') == read_json(f'{sweep_dir}/members/{i}/results.json')


def test_cut_off_evaluation_resumes_with_the_next_member(sweep_dir, tmp_path):
  """Killed while evaluating member 1: the same command keeps member 0's finished evaluation and does member 1's."""
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'sweep')
  shutil.copytree(sweep_dir, workdir)
  for name in ('sweep.json', 'sweep.md'):
    os.remove(os.path.join(workdir, name))
  # Member 1 holds the results of an earlier epoch (as when a run extended by more epochs is killed mid-evaluation).
  stale = read_json(f'{workdir}/members/1/results.json')
  records.write_json(f'{workdir}/members/1/results.json', dict(stale, epoch=1))
  done = os.path.join(workdir, 'members', '0', 'results.json')
  mtime = os.stat(done).st_mtime_ns
  result = run_cli(*DENSE, '--config.train.num_epochs=2', f'--workdir={workdir}', *SWEEP)
  assert os.stat(done).st_mtime_ns == mtime and 'members/0/results.json already holds the evaluation of epoch 2' in (
      result.stderr)
  for i in (0, 1):
    assert read_json(f'{workdir}/members/{i}/results.json') == read_json(f'{sweep_dir}/members/{i}/results.json')
  assert read_json(f'{workdir}/sweep.json')['summary'] == read_json(f'{sweep_dir}/sweep.json')['summary']
  # Results computed under other settings are not the command's: a change of setting evaluates both again.
  run_cli(*DENSE, '--config.train.num_epochs=2', f'--workdir={workdir}', *SWEEP, '--config.eval.iw_samples=7')
  assert [read_json(f'{workdir}/members/{i}/results.json')['eval/iw_samples'] for i in (0, 1)] == [7, 7]


# --- A member that diverges ------------------------------------------------------------------------------------

DIVERGING = ('--config.train.num_epochs=2', '--sweep=train.learning_rate=0.001,1e30')


@pytest.fixture(scope='module')
def diverged_sweep(tmp_path_factory):
  """Member 1's learning rate of 1e30 sends the first update's parameters to ~1e30: its second loss overflows. Run once
  for the session (conftest.shared_run): (workdir, the run's CompletedProcess); tests must not modify it."""
  return shared_run(tmp_path_factory, 'diverged', *DENSE, *DIVERGING, check=False)


def _last_line(result):
  assert result.returncode == 2 and 'Traceback' not in result.stderr, result.stderr[-2000:]
  return result.stderr.strip().splitlines()[-1]


def test_diverged_member_is_set_aside_and_the_others_finish(diverged_sweep, trained):
  workdir, result = diverged_sweep
  last = _last_line(result)
  assert last.startswith('error: 1 of 2 sweep members diverged (member 1: epoch 1, step 2: '), last
  assert 'no checkpoint was written' in last and last.endswith(f"the others' results: {workdir}/sweep.md"), last
  # Member 0 is `trained` (seed 0, learning rate 1e-3, 2 epochs), run alone: the diverged lane did not touch it.
  alone, member = read_json(f'{trained}/results.json'), read_json(f'{workdir}/members/0/results.json')
  for key in ('test/neg_elbo', 'test/recon', 'test/kl', 'test/nll_iw'):
    assert member[key] == pytest.approx(alone[key], **CLOSE), key
  assert [r['epoch'] for r in read_jsonl(f'{workdir}/members/0/metrics.jsonl')] == [1, 2]
  diverged = read_json(f'{workdir}/members/1/diverged.json')
  assert (diverged['epoch'], diverged['step']) == (1, 2)
  assert 'loss is nan' in diverged['message'] or 'loss is inf' in diverged['message']
  assert not os.path.exists(f'{workdir}/members/1/results.json')
  assert read_jsonl(f'{workdir}/members/1/metrics.jsonl') == []
  assert not os.listdir(f'{workdir}/members/1/checkpoints')


def test_diverged_member_is_listed_apart_in_the_summary(diverged_sweep):
  workdir, _ = diverged_sweep
  summary = read_json(os.path.join(workdir, 'sweep.json'))
  kept, gone = summary['summary']
  assert kept['setting'] == {'train.learning_rate': 0.001} and kept['num_seeds'] == 1
  assert kept['test/neg_elbo'] == {'mean': read_json(f'{workdir}/members/0/results.json')['test/neg_elbo'],
                                   'std': 0.0}
  assert gone == {'setting': {'train.learning_rate': 1e30}, 'members': [], 'num_seeds': 0}
  assert summary['members'][1]['diverged'].startswith('epoch 1, step 2: ')
  assert '| 1 | train.learning_rate=1e+30 | diverged: epoch 1, step 2' in open(f'{workdir}/sweep.md').read()


def test_rerun_of_a_sweep_with_a_diverged_member_loses_nothing(diverged_sweep, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'sweep')
  shutil.copytree(diverged_sweep[0], workdir)
  def checkpoints():
    return {p: open(p, 'rb').read() for p in glob.glob(f'{workdir}/members/*/checkpoints/**', recursive=True)
            if os.path.isfile(p)}
  kept, before = checkpoints(), read_json(f'{workdir}/members/0/results.json')
  last = _last_line(run_cli(*DENSE, *DIVERGING, f'--workdir={workdir}', check=False))
  assert last.startswith('error: 1 of 2 sweep members diverged (member 1: epoch 1, step 2: '), last
  assert checkpoints() == kept and kept
  assert read_json(f'{workdir}/members/0/results.json') == before


def test_sweep_whose_members_all_diverge_stops(tmp_path):
  workdir = str(tmp_path / 'sweep')
  result = run_cli(*DENSE, '--config.train.num_epochs=2', f'--workdir={workdir}',
                   '--sweep=train.learning_rate=1e30,2e30', check=False)
  last = _last_line(result)
  assert last.startswith(f'error: {workdir}/members/0: epoch 1, step 2: '), last
  assert last.endswith('(and 1 more: no sweep member is left training)'), last
  assert not glob.glob(f'{workdir}/members/*/diverged.json')


def test_diverged_member_rerun_with_other_values_is_refused(diverged_sweep, tmp_path):
  """Its folder has no checkpoint, yet the values it diverged with are checked: it is not silently skipped."""
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = str(shutil.copytree(diverged_sweep[0], tmp_path / 'sweep'))  # A refused run still takes the lock.
  result = run_cli(*DENSE, '--config.train.num_epochs=2', f'--workdir={workdir}',
                   '--sweep=train.learning_rate=0.001,0.01', check=False)
  assert ('members/1/config.json: this sweep member was trained with other values (train.learning_rate=1e+30 there, '
          '0.01 now)') in _last_line(result)


def test_iw_bias_of_a_sweep(sweep_dir, tmp_path):
  """experiments/fashion_baseline/iw_bias.py: k = 1 is the single-sample ELBO, whose mean is the test -ELBO of
  results.json (computed with the closed-form KL on the same 200 images); k = 50 lies below it (Burda et al.)."""
  import shutil  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from conftest import ROOT  # pylint: disable=g-import-not-at-top
  workdir = shutil.copytree(sweep_dir, tmp_path / 'sweep')
  subprocess.run([sys.executable, os.path.join(ROOT, 'experiments', 'fashion_baseline', 'iw_bias.py'), str(workdir),
                  '--images=200', '--samples=1,50'], check=True, capture_output=True, timeout=300)
  bias = read_json(workdir / 'iw_bias.json')
  assert [m['member'] for m in bias['members']] == [0, 1]
  for m in bias['members']:
    neg_elbo = read_json(workdir / 'members' / str(m['member']) / 'results.json')['test/neg_elbo']
    assert m['nll']['1'] == pytest.approx(neg_elbo, abs=1.5)  # Seen: 0.3 and 0.6 apart; members 0.9 apart.
    assert m['nll']['1'] > m['nll']['50']
    assert m['excess_over_largest_k']['1'] == pytest.approx(m['nll']['1'] - m['nll']['50'])
  assert bias['mean_excess_over_largest_k']['50'] == 0.0
