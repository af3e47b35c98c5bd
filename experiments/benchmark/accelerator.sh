#!/usr/bin/env bash
# The accelerator benchmark in one call (about 8 minutes on one H200 before its last five parts, most of it
# compiling: 17-42 s a program there, cold; each measurement capped):
#   PYTHON=python3 VAE_DATA_DIR=/path/to/data experiments/benchmark/accelerator.sh [OUT.json] [--quick]
# writes experiments/benchmark/accelerator.json (or OUT.json), and each part as it finishes into $PARTS (default a
# temporary folder), so that a run cut short keeps what it measured:
#   versions; fashion_dense at each train.matmul_precision and scan unroll; the same with XLA's command buffers over
#   the loop; a 64-member sweep; the conv model with XLA's and patch convolutions at batch 16 and 100; cifar10 (the
#   conv model at 32 x 32 x 3 under the discretized logistic mixture, random images) with either convolution; the IW
#   estimate (10,000 x 1000) and the matmul ceiling; PyTorch eager, graphed and its 64-member sweep, and cifar10 in
#   PyTorch eager; run.py end to end (cold and warm compilation cache, and trained at TF32), with its phases and test
#   NLL.
# $PYTHON needs jax for the accelerator and requirements.txt's packages (torch optional); --quick: a smoke test on
# a CPU (every part, a few steps each), not figures to quote.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
OUT_FILE=experiments/benchmark/accelerator.json
QUICK=
for arg in "$@"; do case "$arg" in --quick) QUICK=--quick;; *) OUT_FILE=$arg;; esac; done
PARTS=${PARTS:-$(mktemp -d)}
LOGS=$(mktemp -d)  # Each part's stdout and stderr; only NAME.json goes to $PARTS (a device tool returns few files).
mkdir -p "$PARTS"
CACHE=$(mktemp -d)  # A fresh compilation cache: the first run.py is cold, the second warm.
B=experiments/benchmark
# part NAME SECONDS [ENV=VALUE ...] -- COMMAND...: one JSON object into $PARTS/NAME.json, or {"failed": ...}.
part() {
  local name=$1 limit=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  local t0=$SECONDS
  [ -n "$QUICK" ] && limit=$((3 * limit))  # Two CPU cores compile several times slower than a GPU host.
  if env "${envs[@]}" timeout "$limit" "$@" > "$LOGS/$name.out" 2> "$LOGS/$name.err"; then
    tail -n 1 "$LOGS/$name.out" > "$PARTS/$name.json"
  else
    "$PY" -c 'import json, sys; print(json.dumps({"failed": sys.argv[1], "stderr": open(sys.argv[2]).read()[-1500:]}))' \
      "exit $? after $((SECONDS - t0)) s (limit $limit s)" "$LOGS/$name.err" > "$PARTS/$name.json"
  fi
  echo "$name: $((SECONDS - t0)) s $(head -c 300 "$PARTS/$name.json")" >&2
}
ACC=("$PY" $B/accelerator.py $QUICK)
CMDBUF="XLA_FLAGS=--xla_gpu_enable_command_buffer=+WHILE --xla_gpu_command_buffer_unroll_loops=true"
FAST=(--config.train.num_epochs=2 --config.data.max_train_images=2000 --config.eval.iw_samples=10)
E2E=(); [ -n "$QUICK" ] && E2E=("${FAST[@]}")

# In order of importance: a run cut short by an outer timeout loses the last.
part versions 60 -- "${ACC[@]}" --worker=versions
part dense 120 -- "${ACC[@]}" --worker=grid --config=fashion_dense --precision=float32,tensorfloat32 --unroll=1,8
part sweep64 90 -- "${ACC[@]}" --worker=grid --config=fashion_dense --members=64 --precision=float32,tensorfloat32
part conv 150 -- "${ACC[@]}" --worker=grid --config=mnist18_conv --conv_impl=xla,patch --batch_size=16,100
part cifar10 180 -- "${ACC[@]}" --worker=grid --config=cifar10 --conv_impl=xla,patch
part iwae 60 -- "$PY" $B/benchmark.py --worker=iwae $QUICK
part ceiling 60 -- "$PY" $B/benchmark.py --worker=ceiling $QUICK
part run_cold 180 -- "${ACC[@]}" --worker=e2e --cache="$CACHE" -- "${E2E[@]}"
part run_warm 120 -- "${ACC[@]}" --worker=e2e --cache="$CACHE" -- "${E2E[@]}"
part run_tf32 120 -- "${ACC[@]}" --worker=e2e --cache="$CACHE" -- --config.train.matmul_precision=tensorfloat32 "${E2E[@]}"
rm -rf "$CACHE"
part torch 150 -- "${ACC[@]}" --worker=torch
part torch_cifar10 90 -- "${ACC[@]}" --worker=torch --config=cifar10
part dense_command_buffer 90 "$CMDBUF" -- "${ACC[@]}" --worker=grid --config=fashion_dense --precision=float32,tensorfloat32 --unroll=1,8
# For planning long runs: an epoch of the published rows' models (Burda's IWAE k = 50, the VampPrior).
part burda_iwae50 60 -- "${ACC[@]}" --worker=grid --config=burda_mnist:iwae50 --epochs=1
part vamp 60 -- "${ACC[@]}" --worker=grid --config=vampprior:mnist_vamp --epochs=1
# The two-level rows and the exemplar prior, one model each and the HVAE as a 3-seed sweep. An epoch of 500 steps
# on a 2-core AMD EPYC Zen 4 (family 25 model 17) beside two nice-19 runs (accelerator.py --quick, 2026-12-05):
# HVAE VampPrior 20 s, convHVAE VampPrior 1,350 s, exemplar 365 s, Burda's two-layer k = 50 (3,000 steps) 55 s.
part hvae_vamp 60 -- "${ACC[@]}" --worker=grid --config=vampprior:mnist_hvae_vamp --epochs=1
part hvae_sweep3 60 -- "${ACC[@]}" --worker=grid --config=vampprior:mnist_hvae --members=3 --members_images=50000 --epochs=1
part conv_hvae_vamp 90 -- "${ACC[@]}" --worker=grid --config=vampprior:conv_mnist_hvae_vamp --epochs=1
part burda_two_layer_iwae50 60 -- "${ACC[@]}" --worker=grid --config=burda_mnist:two_layer_iwae50 --epochs=1
part exemplar 90 -- "${ACC[@]}" --worker=grid --config=vampprior:mnist_exemplar --epochs=1
rm -rf "$LOGS"

"$PY" - "$PARTS" "$OUT_FILE" "$QUICK" <<'EOF'
import datetime, json, os, subprocess, sys
parts, out, quick = sys.argv[1:]
result = {'date': datetime.date.today().isoformat(), 'quick': bool(quick),
          'commit': os.environ.get('COMMIT') or subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                                                               capture_output=True, text=True).stdout.strip()}
for name in sorted(os.listdir(parts)):
  if name.endswith('.json'):
    try:
      result[name[:-5]] = json.load(open(os.path.join(parts, name)))
    except ValueError as e:
      result[name[:-5]] = {'failed': f'unreadable output: {e}'}
with open(out, 'w') as f:
  json.dump(result, f, indent=2)
print(f'written to {out}')
EOF
