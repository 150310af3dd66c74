#!/usr/bin/env bash
# Records sacct/squeue/sbatch output from the dev cluster for the parser tests, into
# tests/recorded/slurm-<version>/. Run as root with the dev cluster up:
#   tests/recorded/record.sh
# It submits a few short jobs (completed, failed, cancelled, held, GPU, OOM, a job
# name with '|' in it) and waits for them to reach accounting.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(sbatch --version | awk '{print $2}')"
out="$here/slurm-${version%.*}"
mkdir -p "$out"
fields="$(cd "$here/../.." && .venv/bin/python -c 'from gateway.slurm.cli import SACCT_FIELDS; print(",".join(SACCT_FIELDS))')"
squeue_fmt="$(cd "$here/../.." && .venv/bin/python -c 'from gateway.slurm.cli import SQUEUE_FORMAT, SEP; print(SEP.join(SQUEUE_FORMAT.values()))')"
sub() { runuser -u gwjob -- sbatch --parsable -A test_lab -o /dev/null --chdir=/tmp "$@"; }

ids=()
ids+=("$(sub -J 'ok|pipe name' --wrap 'sleep 1')")
ids+=("$(sub -J failing --wrap 'exit 3')")
ids+=("$(sub -J gpu -p gpu --gres=gpu:testgpu:2 -c 2 --wrap 'sleep 2')")
ids+=("$(sub -J oom --mem=100M --wrap 'python3 -c "b=bytearray(900*2**20); import time; time.sleep(3)"')")
cancel_id="$(sub -J cancelled --wrap 'sleep 60')"; ids+=("$cancel_id")
held_id="$(sub -J held --hold --wrap 'true')"; ids+=("$held_id")
sbatch_out="$(runuser -u gwjob -- sbatch --parsable -A test_lab -o /dev/null --chdir=/tmp --wrap true)"
printf '%s\n' "$sbatch_out" > "$out/sbatch-parsable.txt"
ids+=("${sbatch_out%%;*}")
sleep 3
scancel "$cancel_id"
squeue -h -j "$(IFS=,; echo "${ids[*]}")" -o "$squeue_fmt" > "$out/squeue.txt" || true
sleep 8
sacct -X -n -P --delimiter=$'\x1f' -o "$fields" -j "$(IFS=,; echo "${ids[*]}")" > "$out/sacct.txt"
scancel "$held_id"
echo "recorded into $out:"; wc -l "$out"/*
