"""Failed jobs say why: exit status, out of memory, time limit, cancel."""
from __future__ import annotations

import time


def _setup(gw):
    gw.environment()
    gw.experiment()


def test_nonzero_exit_is_failed_with_status_and_outputs_kept(gw):
    _setup(gw)
    tpl = gw.template(script="OUT_STAGE=half\necho partial > $JOB_OUTPUT_DIR/p.txt\nexit 3\n",
                      outputs=[{"name": "OUT_STAGE"}])
    job = gw.wait(gw.run(tpl["id"])["id"])
    assert job["status"] == "Failed" and job["exit_code"] == 3
    assert job["reason"] == "the script exited with status 3"
    assert job["output_variables"] == {"OUT_STAGE": "half"}
    assert gw.ok("GET", f"/templates/{tpl['id']}")["status"] == "unvalidated"
    # Only Completed jobs fill the Processed folder.
    assert not (gw.config.data_root / "projects/proj/exp/Processed" / f"tpl-{job['id']}").exists()


def test_job_without_output_values(gw):
    _setup(gw)
    tpl = gw.template(script="echo nothing to report\n", outputs=[{"name": "OUT_X"}])
    job = gw.wait(gw.run(tpl["id"])["id"])
    assert job["status"] == "Completed"
    assert job["output_variables"] == {} and job["output_files"] == []


def test_out_of_memory_is_failed_even_if_the_script_exits_zero(gw_sqlite):
    gw = gw_sqlite
    _setup(gw)
    script = ("python3 -c 'import time; b = bytearray(1500 * 2**20); time.sleep(3)' "
              "|| echo 'child died'\nexit 0\n")
    job = gw.wait(gw.run(gw.template(script=script)["id"])["id"])
    assert job["status"] == "Failed", job
    assert job["slurm_state"] == "OUT_OF_MEMORY"
    assert "out of memory" in job["reason"]


def test_cancel_a_running_job(gw):
    _setup(gw)
    tpl = gw.template(script="echo started; sleep 120\n")
    job = gw.run(tpl["id"])
    gw.wait(job["id"], 60, until=lambda j: j["status"] == "Running")
    # The log is served while the job runs, and can be tailed by offset.
    deadline = time.monotonic() + 20
    while b"started" not in gw.ok("GET", f"/jobs/{job['id']}/log").get_data():
        assert time.monotonic() < deadline, "no live log"
        time.sleep(0.5)
    r = gw.ok("GET", f"/jobs/{job['id']}/log")
    offset = int(r.headers["X-Log-Offset"])
    assert offset == len(r.get_data()) and r.headers["X-Job-Status"] == "Running"
    assert gw.ok("GET", f"/jobs/{job['id']}/log?offset={offset}").get_data() == b""
    r = gw.api("POST", f"/jobs/{job['id']}/cancel")
    assert r.status_code == 202
    job = gw.wait(job["id"])
    assert job["status"] == "Failed" and job["reason"].startswith("cancelled")
    assert gw.api("POST", f"/jobs/{job['id']}/cancel").status_code == 409


def test_time_limit_is_reported_as_timeout(gw_sqlite):
    gw = gw_sqlite
    _setup(gw)
    tpl = gw.template(script="echo start; sleep 600\n")
    job = gw.run(tpl["id"], time_limit_minutes=1)
    job = gw.wait(job["id"], timeout=240)
    assert job["status"] == "Failed" and job["slurm_state"] == "TIMEOUT"
    assert "wall-time limit" in job["reason"]
    assert 60 <= job["elapsed_seconds"] <= 200
