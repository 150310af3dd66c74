"""Sweeps on FakeSlurm: a template over many inputs as one Slurm array, each task a job
followed and charged on its own; bad sweeps refused with the field named and nothing
submitted; cancel, re-run of the failed tasks, the results CSV (hostile values kept
from becoming formulas), and who may see a sweep."""
from __future__ import annotations

import csv
import io

import pytest

from gateway.job_paths import OUTPUTS_FILE
from gateway.models import Job, Sweep

INPUTS = [{"name": "DC_N", "type": "integer", "default": 1},
          {"name": "DC_DATA", "type": "path", "default": "raw"},
          {"name": "DC_WORD", "type": "string", "default": "x"}]


@pytest.fixture
def gw(fake_gw):
    fake_gw.environment()
    fake_gw.experiment()
    raw = fake_gw.config.data_root / "projects" / "proj" / "exp" / "raw"
    raw.mkdir()
    for name in ("a.h5", "b.h5", "notes.txt"):
        (raw / name).write_text(name)
    fake_gw.tpl = fake_gw.template(name="sweepme", inputs=INPUTS, outputs=[{"name": "OUT_R"}],
                                   script='echo "$DC_N $DC_DATA"\n')
    return fake_gw


def sweep(gw, expect=201, token=None, **inputs):
    body = {"project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab",
            "software_disk_gb": 1, "inputs": inputs}
    body.update(inputs.pop("_extra", {}))
    return gw.ok("POST", f"/templates/{gw.tpl['id']}/sweeps", expect, token=token, json=body)


def refused(gw, field, **inputs):
    r = gw.api("POST", f"/templates/{gw.tpl['id']}/sweeps", json={
        "project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab",
        "inputs": inputs, **inputs.pop("_extra", {})})
    assert r.status_code == 400, r.json
    assert r.json["field"] == field, r.json
    assert Job.select().count() == 0 and Sweep.select().count() == 0
    assert not gw.slurm.submitted
    return r.json["error"]


def test_a_three_by_two_sweep_is_one_array_of_six_jobs(gw):
    s = sweep(gw, DC_N={"values": [1, 2, 3]}, DC_DATA={"glob": "raw/*.h5"}, DC_WORD="it's $(here)")
    assert s["tasks"] == 6 and len(s["array_job_ids"]) == 1 and len(gw.slurm.submitted) == 1
    base = s["array_job_ids"][0]
    assert [j["slurm_job_id"] for j in s["jobs"]] == [f"{base}_{i}" for i in range(6)]
    assert [(j["inputs"]["DC_N"], j["inputs"]["DC_DATA"]) for j in s["jobs"]] == [
        ("1", "raw/a.h5"), ("1", "raw/b.h5"), ("2", "raw/a.h5"), ("2", "raw/b.h5"),
        ("3", "raw/a.h5"), ("3", "raw/b.h5")]
    assert all(j["inputs"]["DC_WORD"] == "it's $(here)" for j in s["jobs"])
    assert s["swept"] == ["DC_N", "DC_DATA"] and s["status_counts"]["Pending"] == 6
    # The array's script picks each task's own script, which holds its inputs, quoted.
    array = gw.slurm.submitted[0].script
    assert "#SBATCH --array=0-5%50" in array
    task = gw.ctx.job_paths(s["jobs"][4]["id"]).script.read_text()
    assert "export DC_N=3\n" in task and "export DC_WORD='it'\"'\"'s $(here)'" in task
    assert "ids=(" + " ".join(str(j["id"]) for j in s["jobs"]) + ")\n" in array
    assert f"script={gw.config.jobs_root}/\"$job\"/job.sbatch\n" in array
    # GET /jobs?sweep= lists the tasks; GET /sweeps/<id> the counts.
    listed = gw.ok("GET", f"/jobs?sweep={s['id']}")
    assert listed["total"] == 6
    assert gw.ok("GET", f"/sweeps/{s['id']}")["status_counts"] == {
        "Pending": 6, "Running": 0, "Completed": 0, "Failed": 0}


def test_each_task_is_followed_and_charged_on_its_own(gw):
    s = sweep(gw, DC_N={"range": {"start": 1, "stop": 3}})
    base = s["array_job_ids"][0]
    gw.slurm.start(f"{base}_0")
    gw.tick()
    first = gw.ok("GET", f"/jobs/{s['jobs'][0]['id']}")
    assert first["status"] == "Running"
    assert gw.ok("GET", f"/jobs/{s['jobs'][2]['id']}")["status"] == "Pending"
    paths = gw.ctx.job_paths(s["jobs"][0]["id"])
    (paths.base / OUTPUTS_FILE).write_bytes(b"OUT_R==HYPERLINK(\"http://x\")\0")
    gw.slurm.finish(f"{base}_0", elapsed=120)
    gw.slurm.start(f"{base}_1")
    gw.slurm.finish(f"{base}_1", exit_code=3, elapsed=30)
    result = gw.tick()
    assert result.slurm_calls <= 2  # one sacct (and at most one squeue) for the whole sweep
    done = gw.ok("GET", f"/sweeps/{s['id']}")
    assert done["status_counts"] == {"Pending": 1, "Running": 0, "Completed": 1, "Failed": 1}
    jobs = {j["array_task"]: j for j in done["jobs"]}
    assert jobs[0]["cpu_seconds"] == 120 and jobs[1]["cpu_seconds"] == 30  # each its own record
    assert jobs[1]["exit_code"] == 3
    # The results table: a value a spreadsheet would run is kept as text.
    r = gw.api("GET", f"/sweeps/{s['id']}/results.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["DC_N"] for row in rows] == ["1", "2", "3"]
    assert rows[0]["OUT_R"] == "'=HYPERLINK(\"http://x\")" and rows[0]["status"] == "Completed"
    assert rows[1]["status"] == "Failed" and rows[1]["exit_code"] == "3"


def test_csv_cells_a_spreadsheet_would_run_are_text_and_numbers_stay_numbers():
    from gateway.results_table import cell as _cell

    for hostile in ("=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx"):
        assert _cell(hostile) == "'" + hostile
    for number in ("-3.5", "+2", "-1e-3", "42", "-.5"):
        assert _cell(number) == number


def test_rerun_failed_and_cancel(gw):
    s = sweep(gw, DC_N={"values": [1, 2, 3]})
    base = s["array_job_ids"][0]
    for i, code in ((0, 0), (1, 1), (2, 0)):
        gw.slurm.start(f"{base}_{i}")
        gw.slurm.finish(f"{base}_{i}", exit_code=code)
    gw.tick()
    again = gw.ok("POST", f"/sweeps/{s['id']}/rerun-failed", 201)
    assert again["tasks"] == 1 and again["rerun_of"] == s["id"]
    assert again["jobs"][0]["inputs"]["DC_N"] == "2" and len(gw.slurm.submitted) == 2
    gw.ok("POST", f"/sweeps/{again['id']}/cancel", 202)
    gw.tick()
    after = gw.ok("GET", f"/sweeps/{again['id']}")
    assert after["status_counts"]["Failed"] == 1 and after["jobs"][0]["cancelled_by"] == "admin"
    # Nothing failed in the re-run's own first sweep? Its one task was cancelled: failed.
    r = gw.api("POST", f"/sweeps/{s['id']}/rerun-failed")
    assert r.status_code == 201  # task 1 is still the first sweep's failed task


def test_zip_takes_values_side_by_side(gw):
    s = sweep(gw, DC_N={"values": [1, 2]}, DC_WORD={"values": ["a", "b"]}, _extra={"mode": "zip"})
    assert [(j["inputs"]["DC_N"], j["inputs"]["DC_WORD"]) for j in s["jobs"]] == [("1", "a"), ("2", "b")]


def test_bad_sweeps_are_refused_by_field_and_submit_nothing(gw):
    assert "no values" in refused(gw, "inputs.DC_N", DC_N={"values": []})
    assert "more than the 10000" in refused(gw, "inputs.DC_N", DC_N={"range": {"start": 1, "stop": 20000}})
    assert "20000 tasks" in refused(gw, "inputs", DC_N={"range": {"start": 1, "stop": 200}},
                                    DC_WORD={"values": [str(i) for i in range(100)]})
    assert "inside the experiment" in refused(gw, "inputs.DC_DATA", DC_DATA={"glob": "../*"})
    assert "inside the experiment" in refused(gw, "inputs.DC_DATA", DC_DATA={"glob": "/etc/*"})
    assert "matches nothing" in refused(gw, "inputs.DC_DATA", DC_DATA={"glob": "raw/*.nope"})
    assert "integer and number" in refused(gw, "inputs.DC_WORD", DC_WORD={"range": {"start": 1, "stop": 2}})
    assert "whole number" in refused(gw, "inputs.DC_N", DC_N={"values": [1, "two"]})
    assert "holds no value" in refused(gw, "inputs.DC_N", DC_N={"range": {"start": 5, "stop": 1}})
    assert "side by side" in refused(gw, "mode", DC_N={"values": [1, 2]}, DC_WORD={"values": ["a"]},
                                     _extra={"mode": "zip"})
    assert "exactly one" in refused(gw, "inputs.DC_N", DC_N={"values": [1], "glob": "x"})


def test_a_glob_does_not_follow_links_out_of_the_experiment(gw, tmp_path):
    secret = tmp_path / "secret.h5"
    secret.write_text("not yours")
    raw = gw.config.data_root / "projects" / "proj" / "exp" / "raw"
    (raw / "link.h5").symlink_to(secret)
    s = sweep(gw, DC_DATA={"glob": "raw/*.h5"})
    assert sorted(j["inputs"]["DC_DATA"] for j in s["jobs"]) == ["raw/a.h5", "raw/b.h5"]


def test_big_sweeps_are_split_at_the_array_size(gw, monkeypatch):
    from dataclasses import replace
    monkeypatch.setattr(gw.ctx, "config", replace(gw.ctx.config, slurm=replace(gw.ctx.config.slurm,
                                                                                max_array_size=4)))
    s = sweep(gw, DC_N={"range": {"start": 1, "stop": 10}}, _extra={"throttle": 2})
    assert len(s["array_job_ids"]) == 3 and len(gw.slurm.submitted) == 3
    ids = [j["slurm_job_id"] for j in s["jobs"]]
    a, b, c = s["array_job_ids"]
    assert ids == ([f"{a}_{i}" for i in range(4)] + [f"{b}_{i}" for i in range(4)]
                   + [f"{c}_{i}" for i in range(2)])
    assert "#SBATCH --array=0-1%2" in gw.slurm.submitted[2].script


def test_who_may_see_cancel_and_rerun_a_sweep(gw):
    s = sweep(gw, DC_N={"values": [1, 2]})
    for path in (f"/sweeps/{s['id']}", f"/sweeps/{s['id']}/results.csv"):
        r = gw.api("GET", path, token=gw.bob_token)
        assert r.status_code == 404, path
    assert gw.api("POST", f"/sweeps/{s['id']}/cancel", token=gw.bob_token).status_code == 404
    assert gw.api("GET", f"/jobs?sweep={s['id']}", token=gw.bob_token).json["total"] == 0
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "bob", "role": "viewer"})
    assert gw.ok("GET", f"/sweeps/{s['id']}", token=gw.bob_token)["tasks"] == 2
    assert gw.api("POST", f"/sweeps/{s['id']}/cancel", token=gw.bob_token).status_code == 403
    assert gw.api("GET", "/sweeps/x").status_code == 404


def test_a_task_cancelled_before_it_started_ends_uncharged_after_the_grace(gw):
    """Slurm keeps no record of a pending task cancelled on its own: the poller ends it
    once neither the queue nor accounting has known it for a while after the cancel."""
    from datetime import timedelta

    from gateway.db import utcnow

    s = sweep(gw, DC_N={"values": [1, 2]})
    base = s["array_job_ids"][0]
    waiting = s["jobs"][1]
    gw.ok("POST", f"/jobs/{waiting['id']}/cancel", 202)
    gw.tick()
    assert gw.ok("GET", f"/jobs/{waiting['id']}")["status"] == "Pending"  # not yet: it may have started
    Job.update(cancelled_at=utcnow() - timedelta(minutes=2)).where(Job.id == waiting["id"]).execute()
    gw.tick()
    ended = gw.ok("GET", f"/jobs/{waiting['id']}")
    assert (ended["status"], ended["finalized"], ended["cpu_seconds"]) == ("Failed", True, 0)
    assert ended["reason"] == "cancelled by admin" and ended["slurm_state"] == "CANCELLED"
    # The other task is untouched and goes on.
    gw.slurm.start(f"{base}_0")
    gw.slurm.finish(f"{base}_0", elapsed=10)
    gw.tick()
    assert gw.ok("GET", f"/jobs/{s['jobs'][0]['id']}")["status"] == "Completed"
