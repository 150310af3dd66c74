"""The poller's paths, made deterministic with FakeSlurm: a job's life, late
accounting, an outage, an sbatch without answer (adopted, failed, duplicated), a
gateway killed between writing the row and recording the id, and a tick killed
between reading Slurm and writing."""
from __future__ import annotations

from datetime import timedelta

import pytest

import gateway.poller as poller
from gateway.charging import license_usage
from gateway.models import Job
from gateway.runs import UNCONFIRMED, slurm_job_name
from gateway.slurm.states import COMPLETED, FAILED, PENDING, RUNNING


@pytest.fixture
def gw(fake_gw_ready):
    return fake_gw_ready


def _row(job) -> Job:
    return Job.get_by_id(job["id"])


@pytest.fixture
def later(monkeypatch):
    """``later(s)``: the poller's clock runs ``s`` seconds ahead (it waits out sbatch's
    time-out before looking for a job, and gives up on one Slurm never recorded)."""
    from gateway.db import utcnow

    def move(seconds: float) -> None:
        monkeypatch.setattr(poller, "utcnow", lambda: utcnow() + timedelta(seconds=seconds))
    return move


def test_a_job_is_followed_to_its_end_and_charged_once(gw):
    job = gw.run("tpl", machine_type="double")
    sid = job["slurm_job_id"]
    # sacct, and squeue once for the new pending job (its start estimate); then one call.
    assert gw.tick().slurm_calls == 2 and _row(job).status == PENDING
    assert _row(job).reason.startswith("waiting"), _row(job).reason
    assert gw.tick().slurm_calls == 1
    gw.slurm.start(sid)
    gw.tick()
    assert _row(job).status == RUNNING and _row(job).started_at is not None
    gw.slurm.finish(sid, elapsed=90)
    result = gw.tick()
    row = _row(job)
    assert result.finalized == 1 and row.status == COMPLETED and row.finalized
    assert (row.cpu_seconds, row.elapsed_seconds, row.alloc_cpus) == (180, 90, 2)
    for _ in range(2):  # later ticks neither re-read nor re-charge a finished job
        assert gw.tick().unfinished == 0
    assert license_usage()["test-lab"][0] == 180


def test_a_failed_script_is_failed_with_its_exit_code(gw):
    job = gw.run("tpl")
    gw.slurm.finish(job["slurm_job_id"], exit_code=3, elapsed=5)
    gw.tick()
    row = _row(job)
    assert row.status == FAILED and row.exit_code == 3 and row.cpu_seconds == 5


def test_late_accounting_asks_squeue_and_waits_to_charge(gw):
    job = gw.run("tpl")
    sid = job["slurm_job_id"]
    gw.slurm.late_accounting(sid)
    gw.slurm.start(sid)
    result = gw.tick()
    assert result.slurm_calls == 2 and _row(job).status == RUNNING  # sacct, then squeue for it
    gw.slurm.finish(sid, elapsed=30)
    gw.tick()
    row = _row(job)
    # Finished as far as squeue can tell, but charges come from accounting only.
    assert not row.finalized and row.cpu_seconds == 0
    gw.slurm.late_accounting(sid, late=False)
    gw.tick()
    assert _row(job).finalized and _row(job).cpu_seconds == 30


def test_an_outage_changes_nothing_and_the_next_tick_catches_up(gw):
    job = gw.run("tpl")
    gw.slurm.finish(job["slurm_job_id"], elapsed=10)
    before = _row(job).__data__
    gw.slurm.down()
    assert poller.guarded_tick(gw.ctx, holder="me:1") is None  # logged, not raised
    assert _row(job).__data__ == before
    gw.slurm.up()
    gw.tick()
    assert _row(job).status == COMPLETED and _row(job).cpu_seconds == 10


def test_a_job_slurm_does_not_know_is_kept_not_dropped(gw):
    job = gw.run("tpl")
    Job.update(slurm_job_id="999999").where(Job.id == job["id"]).execute()
    result = gw.tick()
    assert job["id"] in result.not_found
    assert _row(job).status == PENDING and not _row(job).finalized


def test_slurm_down_at_submit_records_the_job_as_not_submitted(gw):
    gw.slurm.fail_next_submit("unavailable")
    r = gw.api("POST", "/templates/tpl/runs", json={
        "project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab"})
    assert r.status_code == 503 and "Slurm is unavailable" in r.json["error"] and r.headers["Retry-After"]
    row = Job.get_by_id(r.json["job_id"])
    assert row.status == FAILED and row.finalized and row.reason.startswith("not submitted")


def _unanswered(gw) -> Job:
    r = gw.api("POST", "/templates/tpl/runs", json={
        "project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab"})
    assert r.status_code == 503 and "will check whether Slurm accepted it" in r.json["error"], r.json
    row = Job.get_by_id(r.json["job_id"])
    assert row.status == PENDING and row.reason.startswith(UNCONFIRMED) and row.slurm_job_id is None
    return row


def test_sbatch_without_answer_that_slurm_took_is_adopted(gw, later):
    gw.slurm.fail_next_submit("no_answer_taken")
    row = _unanswered(gw)
    gw.tick()  # too young: the sbatch may still be running
    assert _row({"id": row.id}).slurm_job_id is None
    later(poller.UNCONFIRMED_GRACE_S + 31)
    result = gw.tick()
    (made,) = gw.slurm.by_name(slurm_job_name(row))
    assert result.adopted == [row.id] and _row({"id": row.id}).slurm_job_id == made.job_id
    gw.slurm.finish(made.job_id, elapsed=7)
    gw.tick()
    assert _row({"id": row.id}).status == COMPLETED and _row({"id": row.id}).cpu_seconds == 7
    assert Job.select().count() == 1


def test_sbatch_without_answer_that_slurm_never_got_is_failed_after_the_give_up_time(gw, later):
    gw.slurm.fail_next_submit("no_answer")
    row = _unanswered(gw)
    later(poller.UNCONFIRMED_GRACE_S + 31)
    gw.tick()
    assert not _row({"id": row.id}).finalized  # accounting may still be catching up
    later(poller.UNCONFIRMED_GIVE_UP_S + poller.UNCONFIRMED_GRACE_S + 31)
    gw.tick()
    done = _row({"id": row.id})
    assert done.status == FAILED and done.finalized and "never recorded" in done.reason
    assert done.cpu_seconds == 0 and not gw.slurm.jobs


def test_a_duplicate_from_sbatchs_retry_is_cancelled_tracked_and_charged(gw, later):
    gw.slurm.fail_next_submit("duplicate")
    row = _unanswered(gw)
    first, second = gw.slurm.by_name(slurm_job_name(row))
    gw.slurm.start(second.job_id)  # the twin ran a little before anyone noticed
    later(poller.UNCONFIRMED_GRACE_S + 31)
    gw.tick()
    assert _row({"id": row.id}).slurm_job_id == first.job_id
    twin = Job.get(Job.slurm_job_id == second.job_id)
    assert f"duplicate of job {row.id}" in twin.name and twin.license == row.license
    assert second.job_id in gw.slurm.cancelled_by
    gw.slurm.finish(first.job_id, elapsed=20)
    for _ in range(3):  # found again on later ticks: tracked once, never twice
        gw.tick()
    twin = Job.get(Job.slurm_job_id == second.job_id)
    assert twin.finalized and twin.status == FAILED and twin.cpu_seconds == second.elapsed
    assert Job.select().where(Job.slurm_job_id == second.job_id).count() == 1
    assert _row({"id": row.id}).status == COMPLETED and _row({"id": row.id}).cpu_seconds == 20


def test_killed_after_slurm_took_the_job_before_its_id_was_written(gw, monkeypatch, later):
    """The gateway died between sbatch's answer and recording the id: the row still says
    "submitting"; the poller finds the job by name and adopts it."""
    real_submit = gw.slurm.submit

    def submit_then_die(request):
        real_submit(request)
        raise KeyboardInterrupt  # stands for the SIGKILL: nothing after sbatch runs

    monkeypatch.setattr(gw.slurm, "submit", submit_then_die)
    with pytest.raises(KeyboardInterrupt):
        gw.run("tpl")
    monkeypatch.undo()
    row = Job.get()
    assert row.slurm_job_id is None and row.reason == "submitting"
    gw.tick()
    assert Job.get_by_id(row.id).slurm_job_id is None  # younger than sbatch's time-out
    later(poller.UNCONFIRMED_GRACE_S + 31)
    assert gw.tick().adopted == [row.id]
    (made,) = gw.slurm.jobs.values()
    assert Job.get_by_id(row.id).slurm_job_id == made.job_id


def test_a_tick_killed_between_reading_and_writing_writes_nothing(gw, monkeypatch):
    job = gw.run("tpl")
    gw.slurm.finish(job["slurm_job_id"], elapsed=40)

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # killed after Slurm was read and outputs collected

    monkeypatch.setattr(Job, "update", die)
    with pytest.raises(KeyboardInterrupt):
        poller.tick(gw.ctx)
    monkeypatch.undo()
    row = _row(job)
    assert not row.finalized and row.cpu_seconds == 0
    gw.tick()
    gw.tick()
    assert _row(job).cpu_seconds == 40 and license_usage()["test-lab"][0] == 40
