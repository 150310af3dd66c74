"""A plain script's own array through the sbatch wrapper's API, on FakeSlurm: one
sbatch, one gateway job per task index (Slurm's own indexes), each followed and
charged on its own; each task's log placed in its own folder through links the job
cannot change; bad arrays refused with the field named and nothing submitted."""
from __future__ import annotations

import os
import stat

import pytest

from gateway.models import Job, Sweep

SCRIPT = ("#!/bin/bash\n#SBATCH --array=1-7:3%2\n#SBATCH --output=/etc/shadow\n"
          "echo task $SLURM_ARRAY_TASK_ID\n")


def send(gw, script=SCRIPT, expect=201, token=None, **extra):
    body = {"script": script, "license": "test-lab", "workdir": "/tmp", **extra}
    return gw.ok("POST", "/jobs/sbatch", expect, token=token, json=body)


def test_an_array_script_is_one_sbatch_and_a_job_per_task(fake_gw):
    s = send(fake_gw)
    assert len(fake_gw.slurm.submitted) == 1 and len(s["array_job_ids"]) == 1
    base = s["array_job_ids"][0]
    assert s["tasks"] == 3 and s["template"] is None and s["experiment"] is None and s["throttle"] == 2
    assert [(j["array_task"], j["slurm_job_id"]) for j in s["jobs"]] == [
        (1, f"{base}_1"), (4, f"{base}_4"), (7, f"{base}_7")]
    shown = fake_gw.ok("GET", f"/sweeps/{s['id']}")["jobs"]
    assert all(j["kind"] == "sbatch" and j["sweep"] == s["id"] for j in shown)
    request = fake_gw.slurm.submitted[0]
    assert request.script == SCRIPT  # sent as its author wrote it
    opts = dict(o[2:].partition("=")[::2] for o in request.options)
    links = fake_gw.config.jobs_root / str(s["jobs"][0]["id"]) / "tasks"
    # The log goes to each task's own folder, whatever the script names.
    assert opts["output"] == opts["error"] == f"{links}/%a/run/job.log"
    assert opts["account"] == "test_lab" and opts["export"] == f"ALL,GATEWAY_TASKS={links}"
    for j in s["jobs"]:
        link = links / str(j["array_task"])
        assert os.readlink(link) == str(fake_gw.config.jobs_root / str(j["id"]))
        assert (fake_gw.config.jobs_root / str(j["id"]) / "job.sbatch").read_text() == SCRIPT
    # Nobody, the job's user included, may change where a task's log goes.
    assert not stat.S_IMODE(os.stat(links).st_mode) & 0o222


def test_each_task_is_followed_and_charged_on_its_own(fake_gw):
    s = send(fake_gw)
    base = s["array_job_ids"][0]
    fake_gw.slurm.finish(f"{base}_1", exit_code=0, elapsed=60)
    fake_gw.slurm.finish(f"{base}_4", exit_code=3, elapsed=120)
    fake_gw.tick()
    got = {j["array_task"]: j for j in fake_gw.ok("GET", f"/sweeps/{s['id']}")["jobs"]}
    assert got[1]["status"] == "Completed" and got[1]["cpu_seconds"] == 60
    assert got[4]["status"] == "Failed" and got[4]["exit_code"] == 3 and got[4]["cpu_seconds"] == 120
    assert got[7]["status"] == "Pending" and got[7]["cpu_seconds"] == 0
    # Re-running is its author's: the gateway says which indexes to send again.
    fake_gw.slurm.finish(f"{base}_7", exit_code=1)
    fake_gw.tick()
    r = fake_gw.api("POST", f"/sweeps/{s['id']}/rerun-failed")
    assert r.status_code == 400 and r.json["field"] == "sweep" and "--array=4,7" in r.json["error"]


def test_cancel_stops_the_whole_array(fake_gw):
    s = send(fake_gw)
    fake_gw.ok("POST", f"/sweeps/{s['id']}/cancel", 202)
    assert list(fake_gw.slurm.cancelled_by) == s["array_job_ids"]  # one scancel, the array's own id
    fake_gw.tick()
    assert {j.status for j in Job.select()} == {"Failed"}  # cancelled tasks end as Failed


@pytest.mark.parametrize("spec, words", [
    ("0-3\\;rm", "not a task index list"),
    ("5-1", "not a task index list"),
    ("0-20000", "more than the"),
    ("1000-1002", "above the cluster's largest"),
    ("0-3%0", "throttle"),
])
def test_a_bad_array_is_refused_by_name_and_nothing_is_submitted(fake_gw, spec, words):
    r = fake_gw.api("POST", "/jobs/sbatch", json={
        "script": f"#!/bin/bash\n#SBATCH --array={spec}\ntrue\n", "license": "test-lab", "workdir": "/tmp"})
    assert r.status_code == 400 and r.json["field"] == "array" and words in r.json["error"], r.json
    assert not fake_gw.slurm.submitted and Job.select().count() == 0 and Sweep.select().count() == 0


def test_an_array_needs_a_working_directory(fake_gw):
    r = fake_gw.api("POST", "/jobs/sbatch", json={"script": SCRIPT, "license": "test-lab"})
    assert r.status_code == 400 and r.json["field"] == "workdir"
    assert not fake_gw.slurm.submitted and Job.select().count() == 0


def test_another_person_cannot_see_or_cancel_an_array(fake_gw):
    s = send(fake_gw)
    for method, path in (("GET", f"/sweeps/{s['id']}"), ("POST", f"/sweeps/{s['id']}/cancel"),
                         ("GET", f"/sweeps/{s['id']}/results.csv")):
        r = fake_gw.api(method, path, token=fake_gw.alice_token)
        assert r.status_code == 404, (path, r.json)
    assert not fake_gw.slurm.cancelled_by


def test_a_slurm_outage_fails_every_task_honestly(fake_gw):
    fake_gw.slurm.down()
    r = fake_gw.api("POST", "/jobs/sbatch", json={"script": SCRIPT, "license": "test-lab", "workdir": "/tmp"})
    assert r.status_code == 503 and "array" in r.json["error"]
    rows = list(Job.select())
    assert len(rows) == 3 and all(j.status == "Failed" and j.finalized for j in rows)


def test_the_sweep_page_shows_a_script_array(fake_gw):
    from tests.fast.portal_client import get_page, session

    s = send(fake_gw)
    client, _ = session(fake_gw, fake_gw.admin)
    page = get_page(client, f"/sweeps/{s['id']}")
    assert "a script's own array" in page and "Re-run failed" not in page
    assert page.count('<tr data-job="') == 3
