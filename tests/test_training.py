"""The real training loop through the CLI on tiny subsets: outputs, resume, devices, eval mode, errors."""
import importlib.util
import json
import math
import os
import shutil

import pytest

from conftest import DENSE, REORDERED, ROOT, read_json, read_jsonl, run_cli

EPOCH_KEYS = ('epoch', 'step', 'train/neg_elbo', 'train/recon', 'train/kl', 'test/neg_elbo', 'test/recon', 'test/kl',
              'images_per_sec')


def test_outputs(trained):
  records = read_jsonl(os.path.join(trained, 'metrics.jsonl'))
  assert [r['epoch'] for r in records] == [1, 2]
  assert [r['step'] for r in records] == [10, 20]  # 400 images / batch 40.
  for record in records:
    assert all(math.isfinite(record[k]) for k in EPOCH_KEYS)
    assert record['test/neg_elbo'] == pytest.approx(record['test/recon'] + record['test/kl'])
  # An untrained Bernoulli decoder (logits ~ 0) costs 784 log 2 = 543 nats; 20 steps must already beat it.
  assert records[-1]['test/neg_elbo'] < 784 * math.log(2)
  results = read_json(os.path.join(trained, 'results.json'))
  assert {k: v for k, v in records[-1].items() if k.startswith('test/')} == {
      k: results[k] for k in records[-1] if k.startswith('test/')}
  assert read_json(os.path.join(trained, 'config.json'))['train']['num_epochs'] == 2
  assert sorted(os.listdir(os.path.join(trained, 'checkpoints'))) == ['1', '2']


def test_eval_mode_trains_nothing(trained, tmp_path):
  workdir = str(tmp_path / 'copy')
  shutil.copytree(trained, workdir)
  os.remove(os.path.join(workdir, 'results.json'))
  run_cli(*DENSE, '--config.train.num_epochs=2', '--mode=eval', f'--workdir={workdir}')
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['1', '2']
  results = read_json(os.path.join(workdir, 'results.json'))
  assert results['step'] == 20
  assert results == read_json(os.path.join(trained, 'results.json'))
  assert len(read_jsonl(os.path.join(workdir, 'metrics.jsonl'))) == 2


def test_a_workdir_is_its_experiment(trained, tmp_path):
  """Without --config, evaluation and resume read the workdir's config.json; a resume may change how long it trains
  (recorded in config.json), not what it trains; a sweep and a plain run never share a folder. The resume redoes
  epoch 2 (its checkpoint unreadable): its TensorBoard points replace the first ones (tests/test_observability.py)."""
  workdir = str(tmp_path / 'copy')
  shutil.copytree(trained, workdir)
  os.remove(os.path.join(workdir, 'results.json'))
  config = read_json(os.path.join(workdir, 'config.json'))  # As a workdir written before these keys existed.
  del config['train']['matmul_precision'], config['train']['scan_unroll']
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    json.dump(config, f)
  run_cli('--mode=eval', '--workdir', workdir)
  assert read_json(os.path.join(workdir, 'results.json')) == read_json(os.path.join(trained, 'results.json'))
  os.remove(os.path.join(workdir, 'checkpoints', '2', '_CHECKPOINT_METADATA'))  # Epoch 2 must be redone.
  run_cli('--config.train.num_epochs=3', f'--workdir={workdir}')
  assert [r['epoch'] for r in read_jsonl(os.path.join(workdir, 'metrics.jsonl'))] == [1, 2, 3]
  assert read_json(os.path.join(workdir, 'config.json'))['train']['num_epochs'] == 3
  from test_observability import read_events  # pylint: disable=g-import-not-at-top
  steps = [e.step for e in read_events(workdir).Scalars('test/neg_elbo')]
  assert steps == [10, 20, 30]  # Epoch 1 kept once, epoch 2 replaced (not doubled), epoch 3 added.
  for args, fragments in (
      (('--config.train.learning_rate=0.1',), ('config.json: this workdir holds another experiment (train.learning_'
                                               'rate=0.001 there, 0.1 now)', 'use another --workdir')),
      ((*DENSE, '--config.train.num_epochs=3', '--sweep=seed=0,1'), ('holds a plain run', 'a sweep goes in another')),
  ):
    result = run_cli(*args, f'--workdir={workdir}', check=False)
    assert result.returncode == 2 and all(f in result.stderr.strip().splitlines()[-1] for f in fragments), (
        result.stderr[-500:])


def test_eval_of_an_untrained_workdir_writes_nothing(tmp_path):
  workdir = tmp_path / 'new'
  result = run_cli(*DENSE, '--mode=eval', f'--workdir={workdir}', check=False)
  assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == (
      f'error: {workdir}: no checkpoint to evaluate (train first with --mode=train)')
  assert not workdir.exists()
  result = run_cli('--mode=eval', f'--workdir={workdir}', check=False)  # No config.json to read either.
  assert result.stderr.strip().splitlines()[-1] == (f'error: --config is required: {workdir}/config.json does not '
                                                    f'exist (no run there to resume or evaluate)')


def _config(name, variant=None):
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config() if variant is None else module.get_config(variant)


# The conv model, and the Gaussian likelihood (fashion_dense's Bernoulli dense path is every other test's).
@pytest.mark.parametrize('name,variant', [('mnist18_conv', None), ('latent2d', 'fashion')])
def test_other_configs_train(name, variant, tmp_path):
  from vae import training  # In-process: one JAX start for both.
  config = _config(name, variant)
  config.data.max_train_images = 2 * config.train.batch_size
  config.data.max_test_images = 100
  config.train.num_epochs = 1
  config.eval.batch_size = 50
  config.eval.iw_samples = 10
  config.eval.manifold_size = 5
  (results,) = training.train_and_evaluate(config, str(tmp_path))  # One per member.
  assert results['epoch'] == 1 and results['step'] == 2
  assert all(math.isfinite(results[f'test/{k}']) for k in ('neg_elbo', 'recon', 'kl'))


TINY = {'data.max_train_images': 200, 'data.max_test_images': 100, 'data.validation_size': 100,
        'train.batch_size': 40, 'eval.batch_size': 50, 'eval.iw_samples': 10, 'eval.manifold_size': 5,
        'model.encoder_widths': (32,), 'model.decoder_widths': (32,), 'model.latent_dim': 4}


def test_model_defined_outside_vae_trains_sweeps_resumes_and_loads(tmp_path):
  """experiments/seed_writeups/models.py:TanhHeadVAE, named in the config, through vae.train (run.py's path)."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import vae  # pylint: disable=g-import-not-at-top
  from vae import data  # pylint: disable=g-import-not-at-top
  spec, workdir = 'configs/fashion_dense.py:writeup', str(tmp_path)
  first = vae.train(os.path.join(ROOT, spec), workdir, TINY, sweep=['seed=0,1'], train__num_epochs=1)
  assert [m.epoch for m in first] == [1, 1]
  models = vae.train(os.path.join(ROOT, spec), workdir, TINY, sweep=['seed=0,1'], train__num_epochs=2)  # Resumes.
  for i, model in enumerate(models):
    member = os.path.join(workdir, 'members', str(i))
    lines = read_jsonl(os.path.join(member, 'metrics.jsonl'))
    assert [r['epoch'] for r in lines] == [1, 2] and all(math.isfinite(r['validation/neg_elbo']) for r in lines)
    assert model.epoch == 2 and read_json(os.path.join(member, 'results.json'))['epoch'] == 2
  # Each member kept the model's file as it was when it began; vae.load builds the model from that copy.
  from vae import registry  # pylint: disable=g-import-not-at-top
  source = os.path.join(ROOT, 'experiments', 'seed_writeups', 'models.py')
  for i in range(2):
    copy = os.path.join(workdir, 'members', str(i), 'model_file', 'models.py')
    with open(copy) as a, open(source) as b:
      assert a.read() == b.read()
    assert registry.kept_model_name(models[i].config.model.name, os.path.dirname(os.path.dirname(copy))) == (
        f'{copy}:TanhHeadVAE')
  # The loaded model is the write-up's: its encoder, computed here in numpy from the checkpoint's parameters.
  params = jax.tree.map(np.asarray, models[1].params)['encoder']
  x = data.flat(data.load('fashion_mnist').test_images[:5]).astype(np.float64) / 255
  h = np.maximum(x @ params['layers'][0]['kernel'] + params['layers'][0]['bias'], 0)
  a = np.tanh(h @ params['head']['kernel'] + params['head']['bias'])
  mean, logvar = models[1].encode(x.astype(np.float32))
  np.testing.assert_allclose(mean, a[:, 4:], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(logvar, 2 * np.log(1e-6 + np.log1p(np.exp(a[:, :4]))), rtol=1e-4, atol=1e-5)
  assert not np.allclose(models[0].params['encoder']['head']['kernel'], models[1].params['encoder']['head']['kernel'])


def test_vampprior_trains_and_loads(tmp_path):
  """configs/vampprior.py:mnist_vamp on a tiny subset: the pseudo-inputs learn, and the loaded model's prior is the
  posteriors of its (clipped) pseudo-inputs."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import vae  # pylint: disable=g-import-not-at-top
  from vae import models, runs  # pylint: disable=g-import-not-at-top
  spec, workdir = os.path.join(ROOT, 'configs/vampprior.py:mnist_vamp'), str(tmp_path)
  overrides = dict(TINY, **{'model.num_pseudo_inputs': 5, 'train.early_stopping_patience': 0,
                            'train.checkpoint_every_epochs': 1})
  model = vae.train(spec, workdir, overrides, train__num_epochs=2)
  lines = read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
  assert [r['epoch'] for r in lines] == [1, 2] and all(math.isfinite(r['validation/neg_elbo']) for r in lines)
  results = read_json(os.path.join(workdir, 'results.json'))
  assert all(math.isfinite(results[k]) for k in ('test/nll_iw', 'test/kl'))
  u = np.asarray(model.params['pseudo_inputs'])
  init = np.asarray(models.init(model.config.model, runs.member_keys(model.config.seed)['init'])[1]['pseudo_inputs'])
  assert u.shape == (5, 784) and np.max(np.abs(u - init)) > 1e-3  # Trained (init: N(0.05, 0.01^2)).
  means, logvars = model.prior()
  want_means, want_logvars = model.encode(np.clip(u, 0, 1).astype(np.float32), preprocess=False)
  np.testing.assert_allclose(means, want_means, **REORDERED)  # 5 pseudo-inputs against a batch padded to 8.
  np.testing.assert_allclose(logvars, want_logvars, **REORDERED)
