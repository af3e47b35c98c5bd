"""Early stopping (vae/stopping.py) against the VampPrior code's loop, and through the real loop: sweep members stop
on their own, the best validation epoch is what is reported and loaded, and a resumed run stops where an
uninterrupted one does. Also the KL warm-up and the per-tensor gradient normalisation (vae/steps.py)."""
import os
import shutil

import jax
import numpy as np
import pytest

from conftest import ROOT, read_json, read_jsonl, shared
from vae import stopping


def _their_loop(values, patience, warmup):
  """The VampPrior code's early stopping (Tomczak & Welling, experiment loop), transcribed: (best epoch, last)."""
  best_loss, best_epoch, e = float('inf'), 0, 0
  for epoch, val_loss in enumerate(values, start=1):
    if val_loss < best_loss:
      e, best_loss, best_epoch = 0, val_loss, epoch
    else:
      e += 1
      if epoch < warmup:
        e = 0
    if e > patience:
      return best_epoch, epoch
  return best_epoch, len(values)


@pytest.mark.parametrize('seed', range(20))
def test_tracker_is_the_published_rule(seed):
  rng = np.random.default_rng(seed)
  values = list(np.cumsum(rng.normal(-0.2, 1.0, 60)))  # A noisy descent that flattens into noise.
  patience, warmup = int(rng.integers(1, 6)), int(rng.integers(0, 10))
  tracker, last = stopping.Tracker(patience, warmup), None
  for epoch, value in enumerate(values, start=1):
    tracker.update(epoch, value)
    last = epoch
    if tracker.stopped:
      break
  assert (tracker.best_epoch, last) == _their_loop(values, patience, warmup)
  # Rebuilt from records (a resumed run) it is the same state.
  records = [{'epoch': e, stopping.METRIC: v} for e, v in enumerate(values[:last], start=1)]
  assert stopping.from_records(records, patience, warmup) == tracker


def test_beta_warm_up_and_gradient_normalisation():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from vae import steps  # pylint: disable=g-import-not-at-top
  train = ml_collections.ConfigDict({'beta_schedule': 'linear', 'warmup_epochs': 100, 'optimizer': 'sgd',
                                     'grad_norm': 'per_tensor'})
  assert [steps.beta_factor(train, e) for e in (1, 50, 100, 250)] == [0.01, 0.5, 1.0, 1.0]
  grads = {'w': jnp.array([[3.0, 4.0]]), 'b': jnp.array([0.0, 0.0]), 'v': jnp.arange(5.0)}
  direction, _ = steps.make_optimizer(train).update(grads, steps.make_optimizer(train).init(grads), grads)
  for name, g in grads.items():
    np.testing.assert_allclose(direction[name], np.asarray(g) / (np.linalg.norm(np.asarray(g)) + 1e-7), rtol=1e-6)
  assert jax.tree.structure(direction) == jax.tree.structure(grads)


# 40 training images in one step an epoch: the model overfits them, and the validation -ELBO turns up.
TINY = {'data.max_train_images': 40, 'data.max_test_images': 100, 'data.validation_size': 100,
        'train.batch_size': 40, 'eval.batch_size': 50, 'eval.iw_samples': 5, 'eval.manifold_size': 5,
        'model.encoder_widths': (256,), 'model.decoder_widths': (256,), 'model.latent_dim': 8,
        'train.early_stopping_patience': 1, 'train.num_epochs': 60, 'train.checkpoint_every_epochs': 10}
SWEEP = ['train.learning_rate=0.003,0.01']


def _train(workdir, **overrides):
  import vae  # pylint: disable=g-import-not-at-top
  return vae.train(os.path.join(ROOT, 'configs', 'fashion_dense.py'), workdir, {**TINY, **overrides}, sweep=SWEEP)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  """(workdir, [(epoch, parameter leaves) of each model vae.train returned]), trained once for the session
  (conftest.shared): what the training returned is kept beside the workdir with numpy; tests must not modify it."""
  def make(workdir):
    models = _train(str(workdir))
    np.savez(workdir.parent / 'stopping-returned.npz', epochs=[m.epoch for m in models],
             **{f'{i}/{j}': leaf for i, m in enumerate(models) for j, leaf in enumerate(jax.tree.leaves(m.params))})

  workdir = shared(tmp_path_factory, 'stopping', make)
  with np.load(workdir.parent / 'stopping-returned.npz') as returned:
    returned = dict(returned)
  leaves = lambda i: [returned[f'{i}/{j}'] for j in range(sum(k.startswith(f'{i}/') for k in returned))]
  return str(workdir), [(int(epoch), leaves(i)) for i, epoch in enumerate(returned['epochs'])]


def test_members_stop_on_their_own_and_report_their_best_epoch(uninterrupted):
  workdir, returned = uninterrupted
  for i, (epoch, _) in enumerate(returned):
    member = os.path.join(workdir, 'members', str(i))
    lines = read_jsonl(os.path.join(member, 'metrics.jsonl'))
    values = [r[stopping.METRIC] for r in lines]
    best = int(np.argmin(values)) + 1
    assert len(lines) < TINY['train.num_epochs']  # It stopped ...
    assert len(lines) == best + TINY['train.early_stopping_patience'] + 1  # ... two epochs without a better one.
    results = read_json(os.path.join(member, 'results.json'))
    assert results['epoch'] == best == epoch  # The best validation epoch is evaluated and loaded.
    assert results['test/neg_elbo'] == pytest.approx(lines[best - 1]['test/neg_elbo'], rel=1e-6)
    assert sorted(os.listdir(os.path.join(member, 'checkpoints-best'))) == [str(best)]


def test_resumed_run_stops_where_an_uninterrupted_one_does(uninterrupted, tmp_path):
  workdir, _ = uninterrupted
  _train(str(tmp_path), **{'train.num_epochs': 10})
  _train(str(tmp_path))
  for i in (0, 1):
    got, want = (os.path.join(d, 'members', str(i)) for d in (str(tmp_path), workdir))
    strip = lambda rs: [{k: v for k, v in r.items() if k not in ('seconds', 'images_per_sec')} for r in rs]
    assert strip(read_jsonl(os.path.join(got, 'metrics.jsonl'))) == strip(read_jsonl(os.path.join(want,
                                                                                                  'metrics.jsonl')))
    assert read_json(os.path.join(got, 'results.json')) == read_json(os.path.join(want, 'results.json'))


def test_eval_mode_evaluates_the_best_epoch(uninterrupted, tmp_path):
  from vae import launch, sweeps, training  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'copy')
  shutil.copytree(uninterrupted[0], workdir)
  config = launch.configure(os.path.join(ROOT, 'configs', 'fashion_dense.py'), TINY)
  results = training.evaluate(config, workdir, sweeps.member_configs(config, SWEEP))
  for i, result in enumerate(results):
    values = [r[stopping.METRIC] for r in read_jsonl(os.path.join(workdir, 'members', str(i), 'metrics.jsonl'))]
    assert result['epoch'] == int(np.argmin(values)) + 1 < len(values)


def test_finished_run_loads_from_its_best_parameters_alone(uninterrupted, tmp_path):
  """A finished early-stopped workdir kept without its resume checkpoints (as experiments/published/ commits them)
  still loads the best epoch, the parameters the training returned."""
  import vae  # pylint: disable=g-import-not-at-top
  member = str(tmp_path / 'member')
  shutil.copytree(os.path.join(uninterrupted[0], 'members', '0'), member)
  shutil.rmtree(os.path.join(member, 'checkpoints'))
  model, results = vae.load(member), read_json(os.path.join(member, 'results.json'))
  assert model.epoch == results['epoch']
  _, want = uninterrupted[1][0]
  for a, b in zip(jax.tree.leaves(model.params), want, strict=True):
    np.testing.assert_array_equal(a, b)


def test_a_run_killed_between_a_best_save_and_its_checkpoint_resumes(uninterrupted, tmp_path):
  """A best validation epoch is saved at once, the resume checkpoints every few epochs: a kill in between leaves a
  best epoch newer than the checkpoint a rerun resumes from. The rerun redoes those epochs (the newer best among
  them) and ends as the uninterrupted run did, keeping the best epoch alone."""
  workdir, _ = uninterrupted
  _train(str(tmp_path), **{'train.num_epochs': 3, 'train.checkpoint_every_epochs': 2})
  newer = []
  for i in (0, 1):
    member = tmp_path / 'members' / str(i)
    shutil.rmtree(member / 'checkpoints' / '3')  # As if killed before epoch 3's checkpoint was written.
    newer += [epoch for epoch in os.listdir(member / 'checkpoints-best') if int(epoch) > 2]
  assert newer  # Else the case is not set up.
  _train(str(tmp_path))
  for i in (0, 1):
    got, want = (os.path.join(d, 'members', str(i)) for d in (str(tmp_path), workdir))
    assert read_json(os.path.join(got, 'results.json')) == read_json(os.path.join(want, 'results.json'))
    assert os.listdir(os.path.join(got, 'checkpoints-best')) == [str(read_json(os.path.join(want,
                                                                                           'results.json'))['epoch'])]
