"""Parsers fed output recorded from real Slurm (tests/recorded/record.sh refreshes it)."""
from pathlib import Path

import pytest

from gateway.errors import SlurmError
from gateway.slurm.cli import (
    parse_elapsed,
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
    out = classify(held.state, pending_reason=held.reason)
    assert out.status == PENDING and "JobHeldUser" in out.reason
    assert classify(jobs["wrap"].state, 0, 0, 0, True).status == COMPLETED


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
    assert parse_elapsed("1-02:03:04") == 93784 and parse_elapsed("5:07") == 307
    tres = parse_tres("billing=4,cpu=4,gres/gpu:a100=1,gres/gpu:v100=2,mem=8G,node=1")
    assert tres_gpus(tres) == 3
