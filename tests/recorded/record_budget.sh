#!/usr/bin/env bash
# Records `scontrol -o show assoc_mgr flags=assoc` for an account with a budget (the
# parser of gateway/budgets.py's usage), into tests/recorded/slurm-<version>/. Run as
# root with the dev cluster up (multifactor priority, safe limits):
#   tests/recorded/record_budget.sh
# It sets test_budget's GrpTRESMins, runs one job on it (its minutes show as running)
# and holds another that could pass the limit, then puts the limit back.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(sbatch --version | awk '{print $2}')"
out="$here/slurm-${version%.*}"
mkdir -p "$out"
sub() { runuser -u gwjob -- sbatch --parsable -A test_budget -p cpu --mem=10M -o /dev/null --chdir=/tmp "$@"; }
sacctmgr -i modify account where name=test_budget set GrpTRESMins=cpu=60,gres/gpu=30 >/dev/null
sacctmgr -i modify account where name=test_budget set RawUsage=0 >/dev/null
running="$(sub -n 1 -t 10 --wrap 'sleep 30')"
held="$(sub -n 2 -t 60 --wrap true)"
sleep 5
scontrol -o show assoc_mgr flags=assoc accounts=test_budget > "$out/assoc-mgr-budget.txt"
squeue -h -j "$held" -o '%T|%r' > "$out/squeue-budget-held.txt"
scancel "$running" "$held"
sacctmgr -i modify account where name=test_budget set GrpTRESMins=cpu=-1,gres/gpu=-1 >/dev/null
echo "recorded into $out:"; wc -l "$out"/assoc-mgr-budget.txt "$out"/squeue-budget-held.txt
