"""vae.train from Python (vae/launch.py): what a notebook sees, a sweep with a diverged member, and docs/example.py
run as a user would."""
import os
import subprocess
import sys

from conftest import ROOT

TINY = {'data.max_train_images': 200, 'data.max_test_images': 100, 'train.batch_size': 40, 'eval.batch_size': 50,
        'eval.iw_samples': 2, 'eval.manifold_size': 2, 'model.encoder_widths': (32,), 'model.decoder_widths': (32,),
        'model.latent_dim': 4, 'train.num_epochs': 1}


def test_a_diverged_member_leaves_the_others_models(tmp_path, capfd):
  """learning_rate 1e30 diverges: its place is None, the healthy member's model comes back, and what was shown is
  the epoch lines, the results and the warning, none of Orbax's lines."""
  import vae  # pylint: disable=g-import-not-at-top
  models = vae.train(os.path.join(ROOT, 'configs/fashion_dense.py'), str(tmp_path), TINY,
                     sweep=['train.learning_rate=1e-3,1e30'])
  assert models[1] is None and models[0].epoch == 1
  shown = capfd.readouterr().err
  assert 'epoch 1/1' in shown and 'test/nll_iw' in shown and 'orbax' not in shown.lower()
  assert f'{tmp_path}/members/1 diverged (epoch 1, step 2: ' in shown and 'Logging before flag parsing' not in shown


def test_the_example_trains_loads_and_plots(tmp_path):
  workdir = tmp_path / 'example'
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}  # The installed package, from another folder.
  result = subprocess.run([sys.executable, os.path.join(ROOT, 'docs', 'example.py'), str(workdir), '1', '400'],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  assert 'epoch 1/1' in result.stderr and result.stdout.startswith('test NLL ')
  assert (workdir / 'example.png').stat().st_size > 10_000 and (workdir / 'results.json').exists()
