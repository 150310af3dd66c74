"""Jobs calling back on the real dev cluster: a job's own start and end bring its
final status into the gateway with no poller tick at all, and a gateway that cannot be
reached changes nothing for the job."""
from __future__ import annotations

import socket
import time
from dataclasses import replace

import requests

from gateway import job_callbacks
from gateway.models import Job
from tests.conftest import served


def _job_row(job_id: int) -> Job:
    return Job.get_by_id(job_id)


def test_a_job_reaches_completed_by_its_callbacks_alone(gw):
    gw.environment()
    gw.experiment()
    gw.template(name="quick", script="echo hello\nOUT_X=done\n", outputs=[{"name": "OUT_X"}])
    with served(gw, poller=False) as url:  # no tick anywhere: only the job's callbacks
        r = requests.post(f"{url}/api/v1/templates/quick/runs", headers=gw.headers(), timeout=60, json={
            "project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab",
            "software_disk_gb": 1})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        script = (gw.base / "jobs" / str(job_id) / "job.sbatch").read_text()
        assert f"{url}/api/v1/jobs/{job_id}/callback" in script
        deadline = time.monotonic() + 60
        while not _job_row(job_id).finalized:
            assert time.monotonic() < deadline, _job_row(job_id).__data__
            time.sleep(0.2)
        gw.database.close()
    job = gw.ok("GET", f"/jobs/{job_id}")
    assert job["status"] == "Completed" and job["exit_code"] == 0, job
    assert job["output_variables"] == {"OUT_X": "done"}
    acct = gw.sacct(job["slurm_job_id"], "State,ElapsedRaw,AllocCPUS")
    assert acct["State"] == "COMPLETED"
    assert job["elapsed_seconds"] == int(acct["ElapsedRaw"])
    assert job["cpu_seconds"] == int(acct["ElapsedRaw"]) * int(acct["AllocCPUS"])
    log = gw.ok("GET", f"/jobs/{job_id}/log").get_data(as_text=True)
    token = job_callbacks.token_for(gw.config, job_id)
    assert token not in log and "curl" not in log and "callback" not in log, log


def test_a_job_whose_gateway_does_not_answer_completes_as_usual(gw):
    """Callbacks to a port that takes the connection and never answers: each costs the
    job at most about 2 s, prints nothing, and the job completes with exit 0."""
    silent = socket.socket()
    silent.bind(("0.0.0.0", 0))
    silent.listen(16)
    try:
        gw.ctx.config = replace(gw.ctx.config, callback_url=f"http://127.0.0.1:{silent.getsockname()[1]}")
        gw.environment()
        gw.experiment()
        gw.template(name="quick", script="echo hello\nexit 0\n")
        job = gw.run("quick")
        assert "gateway_callback end" in (gw.base / "jobs" / str(job["id"]) / "job.sbatch").read_text()
        job = gw.wait(job["id"])
    finally:
        silent.close()
    assert job["status"] == "Completed" and job["exit_code"] == 0, job
    acct = gw.sacct(job["slurm_job_id"], "State,ExitCode,ElapsedRaw")
    assert acct["State"] == "COMPLETED" and acct["ExitCode"] == "0:0"
    assert int(acct["ElapsedRaw"]) <= 5, acct  # echo, plus at most ~2 s for the end callback
    log = gw.ok("GET", f"/jobs/{job['id']}/log").get_data(as_text=True)
    # The gateway's own two lines and the script's output, nothing about the callbacks.
    assert [line.split(" ")[0] for line in log.splitlines()] == ["gateway:", "hello", "gateway:"], log
    assert job_callbacks.token_for(gw.config, job["id"]) not in log, log


def test_sweep_tasks_reach_completed_by_their_callbacks_alone(gw):
    """Array tasks call back too; their reads go by their task ids."""
    gw.environment()
    gw.experiment()
    gw.template(name="quick", script='OUT_X="$DC_X"\n', inputs=[{"name": "DC_X", "type": "integer"}],
                outputs=[{"name": "OUT_X"}])
    with served(gw, poller=False) as url:
        r = requests.post(f"{url}/api/v1/templates/quick/sweeps", headers=gw.headers(), timeout=60, json={
            "project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab",
            "software_disk_gb": 1, "inputs": {"DC_X": {"values": [1, 2]}}})
        assert r.status_code == 201, r.text
        ids = [j["id"] for j in r.json()["jobs"]]
        deadline = time.monotonic() + 90
        while not all(_job_row(i).finalized for i in ids):
            assert time.monotonic() < deadline, [_job_row(i).__data__ for i in ids]
            time.sleep(0.2)
        gw.database.close()
    jobs = [gw.ok("GET", f"/jobs/{i}") for i in ids]
    assert [(j["status"], j["output_variables"]) for j in jobs] == [
        ("Completed", {"OUT_X": "1"}), ("Completed", {"OUT_X": "2"})], jobs
    assert all("_" in j["slurm_job_id"] for j in jobs)
