"""Parsers fed output recorded from real Slurm (tests/recorded/record.sh refreshes it)."""
from pathlib import Path

import pytest

from gateway.errors import SlurmError
from gateway.poller import read_records
from gateway.slurm.cli import (
    parse_exit_code,
    parse_job_id,
    parse_sacct,
    parse_squeue,
)
from gateway.slurm.states import COMPLETED, FAILED, PENDING, classify
from gateway.slurm.tres import parse_tres, tres_gpus

RECORDED = sorted((Path(__file__).resolve().parent.parent / "recorded").glob("slurm-*"))


@pytest.fixture(params=RECORDED, ids=[p.name for p in RECORDED])
def recorded(request):
    return request.param


def by_name(jobs):
    return {j.name: j for j in jobs.values()}


def test_sacct_records(recorded):
    jobs = by_name(parse_sacct((recorded / "sacct.txt").read_text()))
    assert jobs["ok|pipe name"].state == "COMPLETED"  # a '|' in a name does not break parsing
    gpu = jobs["gpu"]
    assert gpu.alloc_gpus == 2 and gpu.alloc_cpus == 2
    assert gpu.cpu_time_raw == gpu.elapsed_seconds * gpu.alloc_cpus
    failing = jobs["failing"]
    assert failing.exit_code == 3 and classify(failing.state, failing.exit_code, failing.signal,
                                               ended=True).status == FAILED
    oom = jobs["oom"]
    assert classify(oom.state, oom.exit_code, oom.signal, ended=True).reason.startswith("out of memory")
    assert classify(jobs["cancelled"].state).reason.startswith("cancelled")
    held = jobs["held"]
    assert held.start_time is None and held.end_time is None and held.alloc_cpus == 0
    assert classify(jobs["wrap"].state, 0, 0, 0, True).status == COMPLETED


class RecordedSlurm:
    """Answers accounting() and queue() from one recorded directory, counting calls."""

    def __init__(self, recorded):
        self.sacct = parse_sacct((recorded / "sacct.txt").read_text())
        self.squeue = parse_squeue((recorded / "squeue.txt").read_text())
        self.queue_calls = []

    def accounting(self, ids):
        return {i: self.sacct[i] for i in ids if i in self.sacct}

    def queue(self, ids):
        self.queue_calls.append(list(ids))
        return {i: self.squeue[i] for i in ids if i in self.squeue}


def test_a_held_job_says_why_on_every_version(recorded):
    """22.05's sacct gives the held job's reason, 24.11's says "None": the poller's
    read then takes it from squeue, in one call with the jobs accounting lacks."""
    slurm = RecordedSlurm(recorded)
    held = next(j.job_id for j in slurm.sacct.values() if j.name == "held")
    done = next(j.job_id for j in slurm.sacct.values() if j.name == "failing")
    records = read_records(slurm, [held, done, "999999999"])
    out = classify(records[held].state, pending_reason=records[held].reason)
    assert out.status == PENDING and "JobHeldUser" in out.reason
    assert records[held].source == "sacct"  # charges still come from accounting
    assert "999999999" not in records and len(slurm.queue_calls) == 1
    assert set(slurm.queue_calls[0]) <= {held, "999999999"}
    if slurm.sacct[held].reason in ("", "None"):
        assert held in slurm.queue_calls[0]


def test_squeue_records(recorded):
    jobs = by_name(parse_squeue((recorded / "squeue.txt").read_text()))
    assert jobs["held"].state == "PENDING" and jobs["held"].reason == "JobHeldUser"
    assert all(j.source == "squeue" for j in jobs.values())


def test_sbatch_parsable(recorded):
    assert parse_job_id((recorded / "sbatch-parsable.txt").read_text()).isdigit()
    assert parse_job_id("1234;cluster\n") == "1234"
    with pytest.raises(SlurmError):
        parse_job_id("sbatch: error: something\n")


def test_small_parsers():
    assert parse_exit_code("2:0") == (2, 0) and parse_exit_code("0:9") == (0, 9)
    assert parse_exit_code("") == (None, None)
    tres = parse_tres("billing=4,cpu=4,gres/gpu:a100=1,gres/gpu:v100=2,mem=8G,node=1")
    assert tres_gpus(tres) == 3


def test_an_expected_start_is_not_a_start():
    from datetime import datetime

    from gateway.poller import started_at
    from gateway.slurm.client import SlurmJob

    expected = datetime(2026, 11, 26, 12, 0)
    pending = SlurmJob(job_id="5", name="x", state="PENDING", start_time=expected, source="squeue")
    running = SlurmJob(job_id="5", name="x", state="RUNNING", start_time=expected, source="squeue")
    assert started_at(pending) is None and started_at(running) == expected


def test_a_known_pending_reason_is_not_asked_again(recorded):
    """Between refreshes the poller passes the jobs whose reason it already has: no
    squeue call at all when nothing else is missing (24.11's held jobs cost one)."""
    slurm = RecordedSlurm(recorded)
    held = next(j.job_id for j in slurm.sacct.values() if j.name == "held")
    records = read_records(slurm, [held], known={held})
    assert slurm.queue_calls == [] and records[held].source == "sacct"
