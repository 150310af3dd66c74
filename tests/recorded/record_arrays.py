"""Records what CliSlurm's own sacct/squeue/scancel calls print for job arrays, into
tests/recorded/slurm-<version>/array-*.txt, for the parser tests.

Run as root with the dev cluster up (it submits as the job user, account test_lab):
    flock /tmp/gateway-services.lock .venv/bin/python tests/recorded/record_arrays.py
and for Slurm 24.11 (Debian 13; Debian 12 ships 22.05), from the host:
    scripts/test-debian13 --run sh -c 'scripts/dev-cluster start >/dev/null &&
        .venv/bin/python tests/recorded/record_arrays.py'
then copy slurm-24.11/array-* out of the Debian 13 root's /srv/slurm-gateway.

Every file is the exact stdout of one CliSlurm call (sacct -X -n -P with the unit
separator and SACCT_FIELDS, squeue -h -r with SQUEUE_FORMAT), taken at the moment
its name says; arrays.md in the same folder lists the ids and what each holds.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.errors import SlurmError  # noqa: E402
from gateway.slurm.cli import CliSlurm  # noqa: E402
from gateway.slurm.client import SubmitRequest  # noqa: E402
from gateway.slurm.states import normalise  # noqa: E402

JOB_USER = "gwjob"
HERE = Path(__file__).resolve().parent
# Throttle 2. Task 0 runs long enough to be seen running, task 1 until it is
# cancelled, task 3 fails with status 4, task 4 is cancelled while it waits, the
# others finish.
SCRIPT_A = """#!/bin/bash
#SBATCH -J rec-array
#SBATCH -A test_lab
#SBATCH -p cpu
#SBATCH -o /dev/null
#SBATCH --array=0-5%2
case $SLURM_ARRAY_TASK_ID in
  0) sleep 15 ;;
  1) sleep 120 ;;
  3) sleep 2; exit 4 ;;
  *) sleep 4 ;;
esac
"""


class Recorder(CliSlurm):
    """CliSlurm that keeps the stdout (or Slurm's refusal) of its last call."""

    last = ""

    def _run(self, args, stdin=None, what="", user=None, **kw):
        try:
            self.last = super()._run(args, stdin=stdin, what=what, user=user, **kw)
        except SlurmError as e:
            self.last = f"SlurmError: {e.message}\n"
            raise
        return self.last


def version() -> str:
    out = subprocess.run(["sbatch", "--version"], capture_output=True, text=True, check=True).stdout
    return ".".join(out.split()[1].split(".")[:2])


def submit(slurm: Recorder, script: str) -> str:
    return slurm.submit(SubmitRequest(script=script, user=JOB_USER, workdir="/tmp"))


def wait(what: str, cond, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


def main() -> None:
    slurm = Recorder()
    out = HERE / f"slurm-{version()}"
    out.mkdir(exist_ok=True)
    notes = [f"# Job arrays on Slurm {version()}", "",
             "Recorded by tests/recorded/record_arrays.py (Debian 12 ships Slurm 22.05, "
             "Debian 13 ships 24.11). Each array-*.txt is the stdout of one CliSlurm call.", ""]

    def save(name: str, text: str, note: str) -> None:
        (out / name).write_text(text)
        notes.append(f"- `{name}`: {note}")

    def state(rec: dict, tid: str) -> str:
        return normalise(rec[tid].state) if tid in rec else ""

    # --- A: a throttled array of 6 --------------------------------------------
    a = submit(slurm, SCRIPT_A)
    save("array-sbatch-parsable.txt", slurm.last, f"sbatch --parsable of array {a} (--array=0-5%2)")
    tasks = [f"{a}_{i}" for i in range(6)]
    wait("tasks 0 and 1 running",
         lambda: all(state(slurm.queue(tasks), t) == "RUNNING" for t in tasks[:2]))
    wait("the array in accounting, tasks 0 and 1 running there",
         lambda: all(state(slurm.accounting(tasks), t) == "RUNNING" for t in tasks[:2]))
    save("array-sacct-running.txt", slurm.last,
         f"{a}: tasks 0, 1 running, 2-5 pending (one range line)")
    slurm.queue(tasks)
    save("array-squeue-running.txt", slurm.last, f"squeue -r of {a} at the same moment")
    slurm.cancel(f"{a}_4")
    time.sleep(1)
    slurm.accounting(tasks)
    save("array-sacct-cancelled-pending.txt", slurm.last,
         f"{a} after `scancel {a}_4` (task 4 was pending): accounting's range still lists it")
    slurm.queue(tasks)
    save("array-squeue-cancelled-pending.txt", slurm.last, f"squeue -r of {a} then: task 4 is gone")
    slurm.cancel(f"{a}_1")
    wait("every task of A to leave the queue", lambda: not slurm.queue(tasks), 120)
    wait("accounting to have A's final records", lambda: all(
        normalise(r.state) not in ("PENDING", "RUNNING", "COMPLETING")
        for r in slurm.accounting(tasks).values()), 60)
    save("array-sacct-done.txt", slurm.last,
         f"{a} finished: 0, 2, 5 completed, 1 cancelled while running, 3 failed with 4; "
         f"task 4 (cancelled while pending) has no record at all")
    try:
        slurm.cancel(f"{a}_0")
        answer = "scancel said nothing (exit 0)\n"
    except SlurmError as e:
        answer = f"SlurmError: {e.message}\n"
    save("array-scancel-finished.txt", answer,
         f"`scancel {a}_0` of a finished task, as CliSlurm.cancel saw it")

    # --- B: a whole array cancelled, with a stale range line --------------------
    b = submit(slurm, SCRIPT_A.replace("rec-array", "rec-cancel").replace("0-5%2", "1,3,5-7%1")
               .replace("sleep 4", "sleep 120"))
    b_tasks = [f"{b}_{i}" for i in (1, 3, 5, 6, 7)]
    wait("B's first task running in accounting",
         lambda: state(slurm.accounting(b_tasks), b_tasks[0]) == "RUNNING")
    save("array-sacct-stale-range.txt", slurm.last,
         f"{b} (--array=1,3,5-7%1): task 1 running; the range line may still list 1")
    slurm.cancel(b)
    wait("B to leave the queue", lambda: not slurm.queue(b_tasks), 60)
    wait("accounting to have B cancelled", lambda: all(
        normalise(r.state) == "CANCELLED" for r in slurm.accounting(b_tasks).values()), 60)
    save("array-sacct-cancelled.txt", slurm.last,
         f"{b} after `scancel {b}`: task 1 cancelled while running, 3, 5-7 as one cancelled range")

    # --- C: one held task, and a long list with gaps ----------------------------
    c = submit(slurm, SCRIPT_A.replace("rec-array", "rec-single").replace("0-5%2", "7")
               .replace("#SBATCH -p cpu", "#SBATCH -p cpu\n#SBATCH --hold"))
    indexes = "1,2,4,7,11,16,22,29,37,46,56,67,79,92,106,121,137,154,172,191"
    d = submit(slurm, SCRIPT_A.replace("rec-array", "rec-long").replace("0-5%2", f"{indexes}%3")
               .replace("#SBATCH -p cpu", "#SBATCH -p cpu\n#SBATCH --hold"))
    wait("C and D in accounting", lambda: {f"{c}_7", f"{d}_191"} <= set(slurm.accounting([c, d])))
    save("array-sacct-held.txt", slurm.last,
         f"{c} (--array=7, held) and {d} (--array={indexes}%3, held): ranges never cut short")
    slurm.queue([c, d])
    save("array-squeue-held.txt", slurm.last, f"squeue -r of {c} and {d}")
    names = slurm.find_by_names(["rec-array", "rec-cancel", "rec-long"],
                                since=slurm.accounting([a])[f"{a}_0"].submit_time)
    notes.append(f"- find_by_names of rec-array, rec-cancel, rec-long then: {names}")
    slurm.cancel(c)
    slurm.cancel(d)
    (out / "arrays.md").write_text("\n".join(notes) + "\n")
    print(f"recorded into {out}:")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
