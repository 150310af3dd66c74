"""After a job ends, on a FakeSlurm: what it used against what it asked for, the
warnings in plain words, and "run again with more". The real thing (a wasteful job and
an OOM one on the dev cluster) is tests/integration/test_efficiency_on_slurm.py.

Machine types (tests/conftest.py): small 1 CPU 0.5 GB, double 2 CPUs 1 GB, gpu1, gpu2."""
from datetime import timedelta

from gateway import efficiency
from gateway.db import utcnow
from gateway.models import Job
from gateway.slurm.client import JobUsage


def ended(gw, machine_type="double", state=None, exit_code=0, elapsed=60, used=None, **run):
    """A job of template tpl run on ``machine_type`` and ended in Slurm as told, followed
    by the poller; ``used`` is what accounting says it used."""
    job = gw.run("tpl", machine_type=machine_type, inputs=run.pop("inputs", None), **run)
    sid = gw.ok("GET", f"/jobs/{job['id']}")["slurm_job_id"]
    gw.slurm.finish(sid, exit_code=exit_code, elapsed=elapsed, state=state)
    if used is not None:
        gw.slurm.used_[sid] = JobUsage(sid, *used, True)
    gw.tick()
    return job["id"], sid


def test_a_wasteful_job_is_told_what_would_do(fake_gw_ready):
    gw = fake_gw_ready
    job_id, _ = ended(gw, "double", elapsed=60, used=(9.0, 100.0, 1024.0))
    assert gw.ok("GET", f"/jobs/{job_id}")["efficiency"] is None  # not read yet
    before = gw.slurm.calls
    assert efficiency.read_ended(gw.ctx) == 1
    assert gw.slurm.calls == before + 1
    e = gw.ok("GET", f"/jobs/{job_id}")["efficiency"]
    assert (e["cpu_percent"], e["memory_percent"], e["time_percent"]) == (7.5, 9.8, 10.0)
    assert e["warnings"] == [
        "it kept 7.5 % of its 2 CPUs busy: this machine type is larger than the job needs; small would do",
        "it used 9.8 % of its memory (at most 100 MB of 1.0 GB)"]
    assert e["rerun_with_more"] is None
    # Read once: the next read has nothing to do and asks Slurm nothing.
    assert efficiency.read_ended(gw.ctx) == 0 and gw.slurm.calls == before + 1
    r = gw.api("POST", f"/jobs/{job_id}/rerun-with-more")
    assert r.status_code == 400 and r.json["field"] == "job" and "run it again as it was" in r.json["error"]


def test_a_busy_job_gets_no_warning_and_a_short_one_none_either(fake_gw_ready):
    gw = fake_gw_ready
    busy, _ = ended(gw, "double", elapsed=60, used=(118.0, 800.0, 1024.0))
    short, _ = ended(gw, "double", elapsed=3, used=(0.01, 2.0, 1024.0))
    assert efficiency.read_ended(gw.ctx) == 2
    assert gw.ok("GET", f"/jobs/{busy}")["efficiency"]["warnings"] == []
    assert gw.ok("GET", f"/jobs/{short}")["efficiency"]["warnings"] == []


def test_out_of_memory_runs_again_on_the_next_larger_machine_type(fake_gw_ready):
    gw = fake_gw_ready
    job_id, _ = ended(gw, "small", state="OUT_OF_MEMORY", exit_code=0, elapsed=40, used=(30.0, 512.0, 512.0),
                      time_limit_minutes=20, tags=["beam"])
    efficiency.read_ended(gw.ctx)
    job = gw.ok("GET", f"/jobs/{job_id}")
    assert job["status"] == "Failed"
    assert job["efficiency"]["warnings"] == [
        "it ran out of memory (512 MB of 512 MB): run it again on double (1 GB)"]
    assert job["efficiency"]["rerun_with_more"] == {"machine_type": "double"}
    again = gw.ok("POST", f"/jobs/{job_id}/rerun-with-more", 201)
    assert again["machine_type"] == "double" and again["time_limit_minutes"] == 20
    same = ("template_version", "inputs", "license", "project", "experiment")
    assert [again[k] for k in same] == [job[k] for k in same]
    assert gw.slurm.submitted[-1].script.count("#SBATCH --cpus-per-task=2") == 1


def test_a_timeout_runs_again_with_half_as_long_again(fake_gw_ready):
    gw = fake_gw_ready
    job_id, _ = ended(gw, "small", state="TIMEOUT", elapsed=600, used=(590.0, 100.0, 512.0),
                      time_limit_minutes=10)
    efficiency.read_ended(gw.ctx)
    e = gw.ok("GET", f"/jobs/{job_id}")["efficiency"]
    assert e["warnings"] == ["it reached its time limit of 10 minutes: run it again with 15 minutes"]
    again = gw.ok("POST", f"/jobs/{job_id}/rerun-with-more", 201)
    assert again["time_limit_minutes"] == 15 and again["machine_type"] == "small"


def test_only_who_may_run_the_template_runs_it_again(fake_gw_ready):
    gw = fake_gw_ready
    job_id, _ = ended(gw, "small", state="OUT_OF_MEMORY", elapsed=40, used=(30.0, 512.0, 512.0))
    efficiency.read_ended(gw.ctx)
    # bob sees nothing of the admin's project: the job is not there for him.
    assert gw.api("POST", f"/jobs/{job_id}/rerun-with-more", token=gw.bob_token).status_code == 404
    assert Job.select().count() == 1


def test_steps_that_reach_accounting_late_are_waited_for(fake_gw_ready):
    gw = fake_gw_ready
    job_id, sid = ended(gw, "double", elapsed=60, used=(9.0, None, 1024.0))
    gw.slurm.used_[sid] = JobUsage(sid, 9.0, None, 1024.0, steps_seen=False)
    assert efficiency.read_ended(gw.ctx) == 0
    # Past the grace, it is read with what there is.
    Job.update(ended_at=utcnow() - efficiency.STEPS_GRACE - timedelta(seconds=1)).execute()
    assert efficiency.read_ended(gw.ctx) == 1
    e = gw.ok("GET", f"/jobs/{job_id}")["efficiency"]
    assert e["memory_percent"] is None and e["cpu_percent"] == 7.5


def test_the_job_page_shows_it_and_offers_more(fake_gw_ready):
    from tests.fast.portal_client import get_page, post, session

    gw = fake_gw_ready
    job_id, _ = ended(gw, "small", state="OUT_OF_MEMORY", elapsed=40, used=(30.0, 512.0, 512.0))
    efficiency.read_ended(gw.ctx)
    client, token = session(gw, gw.admin)
    page = get_page(client, f"/jobs/{job_id}")
    assert "It ran out of memory (512 MB of 512 MB): run it again on double (1 GB)." in page
    assert 'id="rerun-more">Run again with double</button>' in page
    r = post(client, token, f"/jobs/{job_id}/rerun-with-more", {})
    new = Job.select().order_by(Job.id.desc()).first()
    assert r.headers["Location"].endswith(f"/jobs/{new.id}") and new.machine_type == "double"


def test_the_licence_report_counts_failures_and_idle_cpus(fake_gw_ready):
    from tests.fast.portal_client import get_page, session

    gw = fake_gw_ready
    ended(gw, "double", elapsed=3600, used=(3600.0, 100.0, 1024.0))     # half its CPUs idle: 1 h lost
    ended(gw, "double", elapsed=3600, used=(7200.0, 100.0, 1024.0))     # all busy
    ended(gw, "small", state="OUT_OF_MEMORY", elapsed=1800, used=(1800.0, 512.0, 512.0))  # 0.5 h lost
    efficiency.read_ended(gw.ctx)
    waste = gw.ok("GET", "/licenses/test-lab/usage")["waste"]
    assert (waste["jobs"], waste["failed"], waste["failure_rate"]) == (3, 1, 0.3333)
    assert waste["median_cpu_percent"] == 100.0 and waste["wasted_cpu_hours"] == 1.5
    assert waste["by_template"] == [{"name": "tpl", "jobs": 3, "failed": 1, "failure_rate": 0.3333,
                                     "median_cpu_percent": 100.0, "wasted_cpu_hours": 1.5}]
    client, _ = session(gw, gw.admin)
    page = get_page(client, "/licenses/test-lab")
    assert '<td>tpl</td><td>3</td><td>1 (33.3 %)</td><td>100.0 %</td><td>1.5000</td>' in page


def test_the_command_line_says_what_a_job_used():
    from gateway.client.commands import efficiency_lines

    assert efficiency_lines(None) == []
    assert efficiency_lines({"cpu_percent": 7.5, "memory_percent": None, "time_percent": 10.0,
                             "warnings": ["it kept 7.5 % of its 2 CPUs busy"], "rerun_with_more": None}) == [
        "used: CPU 7.5 %, memory ?, time 10 % of what it asked for",
        "note: it kept 7.5 % of its 2 CPUs busy"]
