"""The installed package (pyproject.toml, `pip install -e .` in the Makefile): `import vae` and `vae-train` from any
folder, not only the project's root."""
import os
import subprocess
import sys

from conftest import ROOT


def _clean_env():
  return {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}


def test_import_vae_from_another_folder(tmp_path):
  result = subprocess.run([sys.executable, '-c', 'import vae, vae.models; print(vae.__file__)'], cwd=tmp_path,
                          env=_clean_env(), capture_output=True, text=True, timeout=120, check=True)
  assert result.stdout.strip() == os.path.join(ROOT, 'vae', '__init__.py')


def test_console_command_is_run_py(tmp_path):
  """`vae-train` parses run.py's flags: without --workdir, one error line and exit 2, as `python run.py`."""
  command = os.path.join(os.path.dirname(sys.executable), 'vae-train')
  config = os.path.join(ROOT, 'configs', 'fashion_dense.py')
  results = [subprocess.run(args + [f'--config={config}'], cwd=tmp_path, env=_clean_env(), capture_output=True,
                            text=True, timeout=120) for args in ([command], [sys.executable, os.path.join(ROOT, 'run.py')])]
  for result in results:
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ['error: flag --workdir=None: Flag --workdir must have a value other '
                                                  'than None.']
  assert not os.listdir(tmp_path)
