"""Slurm outages and poller crashes: honest errors, nothing lost, nothing charged twice."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.charging import license_usage
from gateway.errors import SlurmUnavailable
from gateway.models import Job
from gateway.runs import slurm_job_name

ROOT = Path(__file__).resolve().parents[2]
DEV_CLUSTER = str(ROOT / "scripts" / "dev-cluster")


def cluster(*args):
    proc = subprocess.run([DEV_CLUSTER, *args], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def restore_cluster():
    yield
    cluster("start")


def _setup(gw):
    gw.environment()
    gw.experiment()
    return gw.template(script="sleep 2; OUT_DONE=yes\n", outputs=[{"name": "OUT_DONE"}])


def test_slurmctld_down_at_submit(gw_sqlite, restore_cluster):
    gw = gw_sqlite
    tpl = _setup(gw)
    cluster("stop", "slurmctld")
    r = gw.api("POST", f"/templates/{tpl['id']}/runs",
               json={"project": "proj", "experiment": "exp", "machine_type": "small",
                     "license": "test-lab"})
    assert r.status_code == 503, r.get_data(as_text=True)
    assert "Slurm is unavailable" in r.json["error"] and r.headers["Retry-After"]
    # Not silently lost: the run is recorded as not submitted, with the reason.
    job = gw.ok("GET", f"/jobs/{r.json['job_id']}")
    assert job["status"] == "Failed" and job["reason"].startswith("not submitted")
    assert job["slurm_job_id"] is None
    cluster("start", "slurmctld")
    ok = gw.run(tpl["id"])
    assert gw.wait(ok["id"])["status"] == "Completed"


def test_slurm_refusal_is_recorded(gw):
    tpl = _setup(gw)
    r = gw.api("POST", f"/templates/{tpl['id']}/runs",
               json={"project": "proj", "experiment": "exp", "machine_type": "small",
                     "license": "no-such-account"})
    assert r.status_code == 422 and "sbatch failed" in r.json["error"]
    assert gw.ok("GET", f"/jobs/{r.json['job_id']}")["status"] == "Failed"


def test_slurmdbd_down_during_poll(gw_sqlite, restore_cluster):
    gw = gw_sqlite
    _setup(gw)
    gw.template(name="slow", script="sleep 8; OUT_DONE=yes\n", outputs=[{"name": "OUT_DONE"}])
    job = gw.run("slow")
    gw.wait(job["id"], 60, until=lambda j: j["status"] == "Running")
    cluster("stop", "slurmdbd")
    before = Job.get_by_id(job["id"]).__data__.copy()
    subprocess.run(["sleep", "9"])  # the job ends while accounting is down
    with pytest.raises(SlurmUnavailable):
        gw.tick()
    assert Job.get_by_id(job["id"]).__data__ == before  # nothing changed
    cluster("start", "slurmdbd")
    done = gw.wait(job["id"], 120)
    acct = gw.sacct(done["slurm_job_id"], "CPUTimeRAW")
    assert done["status"] == "Completed" and done["output_variables"] == {"OUT_DONE": "yes"}
    assert done["cpu_seconds"] == int(acct["CPUTimeRAW"])


def _wait_in_accounting(slurm_id: str, state: str, timeout: float = 60) -> None:
    """Wait on sacct itself (no poller tick) until the job reaches ``state``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", slurm_id, "-o", "State"],
                             capture_output=True, text=True).stdout.split()
        if out and out[-1] == state:
            return
        time.sleep(0.5)
    raise AssertionError(f"Slurm job {slurm_id} did not reach {state} in accounting")


CRASHING_TICK = """
import os, signal, sys
from gateway import config
from gateway.context import Context
from gateway.db import bind
from gateway import poller
from gateway.models import Job
ctx = Context.from_config(config.load(sys.argv[1]))
bind(ctx.config.database_url)
real_update = Job.update
def die(*a, **kw):
    # Killed after Slurm was read and outputs were collected, before the write.
    os.kill(os.getpid(), signal.SIGKILL)
Job.update = die
poller.tick(ctx)
"""


def test_poller_killed_between_read_and_write(gw_sqlite):
    gw = gw_sqlite
    _setup(gw)
    gw.template(name="writer", script="echo r > $JOB_OUTPUT_DIR/r.txt; sleep 2\n")
    job = gw.run("writer", machine_type="double")
    _wait_in_accounting(job["slurm_job_id"], "COMPLETED")
    proc = subprocess.run([sys.executable, "-c", CRASHING_TICK, str(gw.config_path)],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert Job.get_by_id(job["id"]).cpu_seconds in (0,)  # the killed tick wrote nothing
    done = gw.wait(job["id"])
    for _ in range(2):
        gw.tick()
    acct = gw.sacct(done["slurm_job_id"], "CPUTimeRAW")
    assert done["cpu_seconds"] == int(acct["CPUTimeRAW"])
    assert license_usage()["test-lab"][0] == int(acct["CPUTimeRAW"])
    # The copy to Processed was redone, not nested or left half-done.
    processed = gw.config.data_root / "projects/proj/exp/Processed"
    assert [p.name for p in processed.iterdir()] == [f"writer-{job['id']}"]


class LaggingAccounting:
    """The real Slurm client, except that accounting has not received ``hidden`` yet
    (as right after a submit): squeue must be asked about exactly those jobs."""

    def __init__(self, real, hidden):
        self.real, self.hidden, self.queue_asked = real, set(hidden), []

    def accounting(self, ids):
        return {k: v for k, v in self.real.accounting(ids).items() if k not in self.hidden}

    def queue(self, ids):
        self.queue_asked.append(list(ids))
        return self.real.queue(ids)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_job_not_yet_in_accounting(gw_sqlite):
    gw = gw_sqlite  # once, on SQLite: what this tests is Slurm's part, not the database's
    _setup(gw)
    gw.template(name="slow", script="sleep 5\n")
    job = gw.run("slow")
    lag = LaggingAccounting(gw.ctx.slurm, {job["slurm_job_id"]})
    gw.ctx.slurm = lag
    gw.wait(job["id"], 60, until=lambda j: j["status"] == "Running")
    assert lag.queue_asked and all(ids == [job["slurm_job_id"]] for ids in lag.queue_asked)
    _wait_in_accounting(job["slurm_job_id"], "COMPLETED")
    gw.tick()
    row = Job.get_by_id(job["id"])
    # Finished per squeue's view, but charges and final state wait for accounting.
    assert not row.finalized and row.cpu_seconds == 0
    lag.hidden.clear()
    done = gw.wait(job["id"])
    assert done["status"] == "Completed" and done["cpu_seconds"] > 0


def test_unknown_slurm_job_is_kept_not_dropped(gw):
    tpl = _setup(gw)
    job = gw.run(tpl["id"])
    Job.update(slurm_job_id="999999").where(Job.id == job["id"]).execute()
    result = gw.tick()
    assert job["id"] in result.not_found
    row = Job.get_by_id(job["id"])
    assert row.status == "Pending" and not row.finalized


def test_sbatch_without_answer_is_adopted_never_lost(gw_sqlite, monkeypatch):
    """slurmctld frozen (SIGSTOP) mid-submit: the gateway's sbatch call times out with
    the request already in the controller's socket. The job stays 'unconfirmed'; once
    Slurm answers again it has queued the job, and the poller finds it by name, adopts
    it, follows it and charges it once. (Slurm never getting it, and a duplicate from
    sbatch's own retry, are the fast tier's: tests/fast/test_poller_paths.py.)"""
    import gateway.poller as poller

    gw = gw_sqlite
    tpl = _setup(gw)
    gw.ctx.slurm.timeout = 3
    monkeypatch.setattr(poller, "UNCONFIRMED_GRACE_S", 0)
    pid = int(Path("/run/slurmctld.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        r = gw.api("POST", f"/templates/{tpl['id']}/runs",
                   json={"project": "proj", "experiment": "exp", "machine_type": "small",
                         "license": "test-lab"})
    finally:
        os.kill(pid, signal.SIGCONT)
    assert r.status_code == 503 and "will check whether Slurm accepted it" in r.json["error"]
    job_id = r.json["job_id"]
    job = gw.ok("GET", f"/jobs/{job_id}")
    assert job["status"] == "Pending" and job["reason"].startswith("submission unconfirmed")
    gw.ctx.slurm.timeout = 20
    job = gw.wait(job_id, 90)
    name = slurm_job_name(Job.get_by_id(job_id))
    names = subprocess.run(["sacct", "-X", "-n", "-P", "-a", "-S", "now-1hour", "--name", name,
                            "-o", "JobIDRaw"], capture_output=True, text=True, check=True).stdout.split()
    assert names == [job["slurm_job_id"]] and job["status"] == "Completed", (names, job)
    assert job["cpu_seconds"] == int(gw.sacct(job["slurm_job_id"], "CPUTimeRAW")["CPUTimeRAW"])
    assert Job.select().count() == 1
