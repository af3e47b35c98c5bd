#!/usr/bin/env bash
# The accelerator benchmark, one prepared script (a few minutes on one GPU; each measurement capped at 150 s):
#   PYTHON=python3 VAE_DATA_DIR=/path/to/data experiments/benchmark/accelerator.sh [OUT.json]
# writes experiments/benchmark/accelerator.json (or OUT.json): fashion_dense images/s at batch 100 as one model, a
# 64-member sweep's aggregate images/s, the conv model with XLA's and with patch convolutions, and the IW estimate
# of 10,000 test images x 1000 samples. $PYTHON must have jax for the accelerator (jax[cuda12], jax[tpu]) and
# requirements.txt's other packages; $VAE_DATA_DIR is the data cache (README.md, "Data and offline use").
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
OUT_FILE=${1:-experiments/benchmark/accelerator.json}
w() { timeout 150 "$PY" experiments/benchmark/benchmark.py --worker="$@" | tail -n 1 || echo '{"failed": true}'; }
{
  echo '{'
  echo "\"device\": $("$PY" -c 'import jax, json; print(json.dumps({"backend": jax.default_backend(), "kind": jax.devices()[0].device_kind, "count": jax.device_count(), "jax": jax.__version__}))'),"
  echo "\"fashion_dense\": $(w jax --config=fashion_dense),"
  echo "\"sweep_64\": $(w jax --config=fashion_dense --members=64),"
  echo "\"conv_xla\": $(w jax --config=mnist18_conv --conv_impl=xla),"
  echo "\"conv_patch\": $(w jax --config=mnist18_conv --conv_impl=patch),"
  echo "\"iwae\": $(w iwae)"
  echo '}'
} > "$OUT_FILE.tmp"
"$PY" -m json.tool "$OUT_FILE.tmp" > "$OUT_FILE" && rm "$OUT_FILE.tmp"
cat "$OUT_FILE"
