"""CliSlurm and job arrays on the real dev cluster: every task under its own id
("123_4"), pending ones included, charged from its own accounting record."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from gateway.slurm.cli import CliSlurm
from gateway.slurm.client import SubmitRequest
from gateway.slurm.states import FAILED, classify, normalise

JOB_USER = "gwjob"  # the dev cluster's job user, associated with test_lab
# Four tasks, one at a time: task 2 fails with status 3, task 3 is cancelled while
# it waits, the others finish.
SCRIPT = """#!/bin/bash
#SBATCH --job-name={name}
#SBATCH --account=test_lab
#SBATCH --partition=cpu
#SBATCH --output=/dev/null
#SBATCH --array=0-3%1
sleep 3
[ "$SLURM_ARRAY_TASK_ID" -ne 2 ] || exit 3
"""


@pytest.fixture
def slurm(slurm_up):
    return CliSlurm(timeout=30)


def wait_for(what: str, probe: Callable[[], object], timeout: float = 90):
    end = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def test_an_array_task_by_task(slurm):
    name = f"gw-array-{uuid.uuid4().hex[:8]}"
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=5)
    base = slurm.submit(SubmitRequest(script=SCRIPT.format(name=name), user=JOB_USER, workdir="/tmp"))
    assert base.isdigit()  # sbatch --parsable prints the array's own id
    tasks = [f"{base}_{i}" for i in range(4)]
    try:
        # While it runs: accounting's one pending range line is one record per task.
        def some_waiting():
            acct = slurm.accounting(tasks)
            if set(acct) == set(tasks) and normalise(acct[tasks[3]].state) == "PENDING":
                return acct
            return None

        acct = wait_for("every task in accounting, task 3 still pending", some_waiting)
        for i, t in enumerate(tasks):
            assert acct[t].job_id == t and acct[t].array_job_id == base and acct[t].array_task_id == i
        queue = slurm.queue([tasks[3], tasks[1]])  # one squeue; the whole array comes back
        assert queue[tasks[3]].state == "PENDING" and queue[tasks[3]].array_task_id == 3
        # A task may end between two reads, so accounting is read after the queue: a
        # task it still shows pending cannot have run its 3 s and left in between.
        later = slurm.accounting(tasks)
        waiting = {t for t in tasks if t in later and normalise(later[t].state) == "PENDING"}
        assert tasks[3] in waiting and {t for t in tasks if t in queue} >= waiting

        slurm.cancel(tasks[3], user=JOB_USER)
        wait_for("task 3 to leave the queue", lambda: tasks[3] not in slurm.queue([base]), 30)
        wait_for("tasks 0-2 to leave the queue",
                 lambda: not set(tasks[:3]) & set(slurm.queue(tasks[:3])), 120)

        def all_ended():
            acct = slurm.accounting(tasks)
            return acct if all(t in acct and _finished(acct[t]) for t in tasks[:3]) else None

        final = wait_for("accounting's final records of tasks 0-2", all_ended, 60)
    finally:
        slurm.cancel(base, user=JOB_USER)

    for i, t in enumerate(tasks[:3]):
        rec = final[t]
        assert rec.array_task_id == i and rec.cpu_time_raw > 0 and rec.alloc_cpus == 1
        assert rec.cpu_time_raw == rec.elapsed_seconds * rec.alloc_cpus
        assert rec.exit_code == (3 if i == 2 else 0) and rec.signal == 0
    assert classify(final[tasks[2]].state, final[tasks[2]].exit_code, ended=True).status == FAILED
    # Each task is charged from its own record: three Slurm job ids, the last of which
    # took over the array's own.
    assert len({final[t].native["JobIDRaw"] for t in tasks[:3]}) == 3
    # Cancelled before it started, task 3 leaves no record in accounting (22.05 and
    # 24.11 alike): the gateway must take a successful scancel as its end.
    assert tasks[3] not in final
    assert slurm.find_by_names([name], since) == {name: [base]}


def _finished(rec) -> bool:
    return normalise(rec.state) not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING")
