"""A sweep answers once Slurm holds its array; its tasks' folders are made just after.
Each task's script is exactly the one a single run with its inputs would get, a task
that starts first waits for it, and folders a stopped gateway left unmade are made
by the poller from the sweep's own record."""
from __future__ import annotations

import io
import os
import stat
from datetime import timedelta

import pytest

from gateway import runs, sweeps
from gateway.db import utcnow
from gateway.models import Job, Sweep

INPUTS = [{"name": "DC_N", "type": "integer", "default": 1},
          {"name": "DC_WORD", "type": "string", "default": "x"}]


@pytest.fixture
def gw(fake_gw):
    fake_gw.environment()
    fake_gw.experiment()
    fake_gw.tpl = fake_gw.template(name="folders", inputs=INPUTS, script='echo "$DC_N $DC_WORD"\n')
    fake_gw.ok("POST", f"/templates/{fake_gw.tpl['id']}/files", 201,
               data={"files": (io.BytesIO(b"echo help\n"), "helper.sh")}, content_type="multipart/form-data")
    return fake_gw


def sweep(gw, n=4):
    return gw.ok("POST", f"/templates/{gw.tpl['id']}/sweeps", 201, json={
        "project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab",
        "software_disk_gb": 1, "inputs": {"DC_N": {"range": {"start": 1, "stop": n}}, "DC_WORD": "a'b $(c)"}})


def expected_script(gw, job: Job) -> str:
    """What a single run with the task's inputs renders (its own job id and name)."""
    tpl = Job.get_by_id(job.id).template
    plan = runs.plan_run(gw.ctx, job.user, tpl, sweeps._body_of(job.sweep, job))
    return runs._render(gw.ctx, plan, job.id, runs.slurm_job_name(job))


def test_each_task_gets_the_script_a_run_of_its_inputs_would(gw):
    s = sweep(gw)
    for j in Job.select().where(Job.sweep == s["id"]):
        paths = gw.ctx.job_paths(j.id)
        assert paths.script.read_text() == expected_script(gw, j)
        assert stat.S_IMODE(os.stat(paths.script).st_mode) == 0o444
        assert (paths.template_dir / "helper.sh").read_text() == "echo help\n"
        assert sorted(p.name for p in paths.base.iterdir()) == ["job.sbatch", "output", "run", "template"]
    array = gw.slurm.submitted[0].script
    # A task that starts before its folder is made waits for its script, for a while.
    assert 'while [ ! -e "$script" ]' in array and f"#SBATCH --chdir={gw.config.jobs_root}" in array


def test_folders_a_stopped_gateway_left_unmade_are_made_by_the_poller(gw):
    gw.ctx.run_later = lambda work: None  # the gateway stops right after answering
    s = sweep(gw)
    tasks = list(Job.select().where(Job.sweep == s["id"]).order_by(Job.array_task))
    assert all(j.slurm_job_id for j in tasks)  # Slurm has them: they must not be lost
    assert not any(gw.ctx.job_paths(j.id).base.exists() for j in tasks)
    # Not at once: the gateway that submitted may still be making them.
    assert sweeps.prepare_unready(gw.ctx) == 0
    Sweep.update(created_at=utcnow() - timedelta(seconds=30)).execute()
    gw.tick()
    for j in tasks:
        assert gw.ctx.job_paths(j.id).script.read_text() == expected_script(gw, j)
    assert sweeps.prepare_unready(gw.ctx) == 0  # nothing left to make


def test_a_half_made_folder_is_finished_on_a_second_try(gw):
    gw.ctx.run_later = lambda work: None
    s = sweep(gw, n=1)
    job = Job.get(Job.sweep == s["id"])
    paths = gw.ctx.job_paths(job.id)
    files = job.template_version.files
    runs.prepare_job_folder(gw.ctx, job.id, job.unix_user, files)
    (paths.template_dir / "helper.sh").chmod(0o444)
    Sweep.update(created_at=utcnow() - timedelta(seconds=30)).execute()
    assert sweeps.prepare_unready(gw.ctx) == 1
    assert paths.script.read_text() == expected_script(gw, job)
    assert not [p for p in paths.base.rglob("*part*")]


def test_old_sweeps_are_not_looked_at_again(gw):
    gw.ctx.run_later = lambda work: None
    sweep(gw, n=2)
    # Its tasks have given up waiting long ago (and failed): nothing is made for them.
    Sweep.update(created_at=utcnow() - timedelta(seconds=3 * sweeps.TASK_FOLDER_WAIT_S)).execute()
    assert sweeps.prepare_unready(gw.ctx) == 0
