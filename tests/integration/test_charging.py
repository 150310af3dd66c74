"""CPU and GPU hours are read from accounting, counted only while running, charged once."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from gateway.charging import license_usage
from gateway.models import Job
from tests.conftest import as_service, hand_to_service


def _setup(gw):
    gw.environment()
    gw.experiment()


def _lic(gw, name):
    return next(x for x in gw.ok("GET", "/licenses") if x["name"] == name)


def test_charges_match_sacct_to_the_second(gw):
    _setup(gw)
    tpl = gw.template(script="sleep 4\n")
    a = gw.run(tpl["id"], machine_type="double")
    b = gw.run(tpl["id"], machine_type="gpu2", license="other-lab")
    a, b = gw.wait(a["id"]), gw.wait(b["id"])
    for job in (a, b):
        acct = gw.sacct(job["slurm_job_id"], "CPUTimeRAW,ElapsedRaw,AllocTRES")
        gpus = int(dict(p.split("=") for p in acct["AllocTRES"].split(",")).get("gres/gpu", 0))
        assert job["cpu_seconds"] == int(acct["CPUTimeRAW"]) > 0
        assert job["gpu_seconds"] == int(acct["ElapsedRaw"]) * gpus
        assert job["cpu_hours"] == round(int(acct["CPUTimeRAW"]) / 3600, 6)
    assert a["gpu_seconds"] == 0 and b["gpu_seconds"] > 0
    assert _lic(gw, "test-lab")["cpu_seconds"] == a["cpu_seconds"]
    assert _lic(gw, "other-lab")["gpu_seconds"] == b["gpu_seconds"]
    # Polling again changes nothing: each job is charged exactly once.
    before = license_usage()
    for _ in range(3):
        gw.tick()
    assert license_usage() == before
    # `gateway reconcile` (as the service user) finds the charges equal to accounting,
    # job by job; a charge changed by hand is a difference, and its exit status says so.
    env = {**os.environ, "GATEWAY_CONFIG": str(gw.config_path)}
    hand_to_service(gw.base)
    out = subprocess.run(as_service([sys.executable, "-m", "gateway.cli", "reconcile"]), env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"^licence test-lab .*: 1 jobs; .*: equal$", out.stdout, re.M), out.stdout
    assert re.search(r"^licence other-lab .*: 1 jobs; .*: equal$", out.stdout, re.M), out.stdout
    Job.update(cpu_seconds=Job.cpu_seconds + 1).where(Job.id == a["id"]).execute()
    out = subprocess.run(as_service([sys.executable, "-m", "gateway.cli", "reconcile"]), env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and f"differs: job {a['id']} (Slurm {a['slurm_job_id']})" in out.stdout


def test_pending_time_is_not_charged_and_running_usage_shows(gw_sqlite):
    gw = gw_sqlite  # once, on SQLite: what this tests is Slurm's part, not the database's
    _setup(gw)
    held = gw.ok("POST", "/jobs/sbatch", 201, json={
        "script": "#!/bin/bash\n#SBATCH --hold\n#SBATCH --cpus-per-task=2\nsleep 6\n",
        "license": "test-lab"})
    job = gw.wait(held["id"], 30, until=lambda j: j["slurm_state"] == "PENDING")
    assert job["status"] == "Pending" and "JobHeldUser" in job["reason"]
    assert job["cpu_seconds"] == 0
    subprocess.run(["sleep", "3"], check=True)  # waiting time that must not be charged
    subprocess.run(["scontrol", "release", job["slurm_job_id"]], check=True)
    running = gw.wait(job["id"], 60, until=lambda j: j["status"] == "Running" and j["cpu_seconds"] > 0)
    assert running["cpu_seconds"] == 2 * running["elapsed_seconds"]
    assert _lic(gw, "test-lab")["cpu_seconds"] >= running["cpu_seconds"]
    done = gw.wait(job["id"])
    acct = gw.sacct(done["slurm_job_id"], "CPUTimeRAW,ElapsedRaw")
    assert done["status"] == "Completed"
    assert done["cpu_seconds"] == int(acct["CPUTimeRAW"])
    assert int(acct["ElapsedRaw"]) < 12  # the held time is not in it
