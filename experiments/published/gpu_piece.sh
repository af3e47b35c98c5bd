#!/usr/bin/env bash
# One piece of a long run on a borrowed GPU machine (../shared/gpu/README.md), and its unpacking here:
#   experiments/published/gpu_piece.sh SECONDS WORKDIR [run.py flags ...]   # there, with $OUT set
#   experiments/published/gpu_piece.sh --unpack FOLDER                      # here, FOLDER what came back
# There: run.py trains WORKDIR (resuming it if it holds a run) and is killed after SECONDS; the latest checkpoint
# stands (a save cut short is never read), and the next piece resumes from it. The workdir, without TensorBoard
# events, is packed into $OUT as parts of 15 MiB, with run.py's log: the device tool returns at most 8 files of
# 16 MiB. Here: the workdir is replaced by the one that came back, whole.
# What fits (a checkpoint holds the parameters and Adam's two moments; the best epoch's, parameters only): an HVAE
# or convHVAE seed about 45 MB, an exemplar-prior VAE seed 18 MB, a Burda model seed 6-8 MB. The upload of the
# next piece shares 64 MiB with the stripped tree and the data (prepare.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ "${1:-}" = --unpack ]; then
  folder=${2:?usage: $0 --unpack FOLDER}
  workdir=$(cat "$folder"/piece.tar.* | tar -t | head -n 1)
  workdir=${workdir%%/}
  [ -n "$workdir" ] || { echo "error: $folder/piece.tar.*: no workdir in it" >&2; exit 2; }
  rm -rf "$workdir.unpacking" && mkdir -p "$workdir.unpacking"
  cat "$folder"/piece.tar.* | tar -x -C "$workdir.unpacking" --strip-components="$(tr -cd / <<< "$workdir/" | wc -c)" \
    || { echo "error: $folder/piece.tar.*: cannot unpack (a part missing?); $workdir untouched" >&2; exit 2; }
  rm -rf "$workdir" && mv "$workdir.unpacking" "$workdir"
  echo "$workdir: replaced by the piece in $folder ($(tail -n 1 "$folder/log.txt" 2>/dev/null))"
  exit 0
fi
seconds=${1:?usage: $0 SECONDS WORKDIR [run.py flags ...]} workdir=${2:?usage: $0 SECONDS WORKDIR [run.py flags]}
shift 2
: "${OUT:?OUT: the folder whose files come back}"
case "$workdir" in /*) echo "error: WORKDIR=$workdir: give it relative to the project's root" >&2; exit 2;; esac
timeout -s KILL "$seconds" "${PYTHON:-python3}" run.py --workdir="$workdir" "$@" > "$OUT/log.txt" 2>&1
echo "run.py exit $? after at most $seconds s" >> "$OUT/log.txt"
workdir=${workdir%%/}
tar -c --exclude='events.out.tfevents*' --exclude='*.orbax-checkpoint-tmp*' --exclude=.lock -f - "$workdir" \
  | split -b 15M -d -a 1 - "$OUT/piece.tar."
parts=$(ls "$OUT"/piece.tar.* | wc -l)
if [ "$parts" -gt 7 ]; then
  echo "error: $workdir packs into $parts parts of 15 MiB; at most 7 come back beside the log" >&2
  exit 2
fi
echo "$workdir: $parts part(s) in $OUT; $(tail -n 1 "$OUT/log.txt")"
