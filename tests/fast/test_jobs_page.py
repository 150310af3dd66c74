"""The portal's Jobs table: a person's own jobs by default and every job they may see on
request, filters and page in the URL, rows that expand to the job's outputs (read
from the API with the session, files through its permission-checked download), and a
page that costs the same few queries for 5 or 50 jobs."""
from __future__ import annotations

import html
import re

import pytest

from gateway.job_paths import OUTPUTS_FILE
from gateway.models import Job
from tests.fast.access_world import World
from tests.fast.test_portal_security import session
from tests.fast.test_query_counts import counted

# The session, its person, the ids of the data she sees, the count, the rows (with what
# each shows), their tags, and the templates of the filter.
PAGE_QUERIES = 7


@pytest.fixture
def gw(fake_gw):
    return fake_gw


def shown_ids(page: str) -> set[int]:
    return {int(i) for i in re.findall(r'<tr data-job="(\d+)"', page)}


def text(client, path: str, expect: int = 200) -> str:
    r = client.get(path)
    assert r.status_code == expect, (path, r.status_code, r.get_data(as_text=True)[:500])
    return r.get_data(as_text=True)


def test_the_page_costs_the_same_few_queries_for_5_or_50_jobs(gw):
    world = World(gw)
    client, _ = session(gw, gw.alice)
    counts = []
    for total in (5, 50):
        world.add_jobs(total - Job.select().count())
        for path in ("/jobs", "/jobs?scope=all"):
            text(client, path)  # once first: the session's last use is written then
            with counted() as count:
                page = text(client, path)
            counts.append(count.n)
            assert count.n <= PAGE_QUERIES, count.sql
        mine = {j.id for j in Job.select().where(Job.user == gw.alice)}
        assert shown_ids(text(client, "/jobs")) == mine
        assert shown_ids(page) == world.visible_jobs and len(world.visible_jobs) > len(mine)
    assert len(set(counts)) == 1, counts
    # What each row shows came with those queries: project/experiment, version, tags.
    job = Job.select().where(Job.id.in_(list(world.visible_jobs)), Job.experiment.is_null(False)).first()
    row = re.search(rf'<tr data-job="{job.id}".*?</tr>', page, re.S).group(0)
    assert f"{job.project.name} <span class=\"muted\">/</span> {job.experiment.name}" in row
    assert "v2" in row and job.user.username in row
    # Filters are SQL too: none costs a query more.
    for query in ("tag=alpha", "project=by-team", "template=t001", "status=Pending", "text=job1",
                  "text=carol", "scope=all&text=e"):
        with counted() as count:
            text(client, f"/jobs?{query}")
        assert count.n <= counts[-1], (query, count.sql)  # fewer when nothing matches: no tags to load


def test_mine_by_default_all_on_request_and_every_filter_in_the_url(gw):
    world = World(gw)
    world.add_jobs(21)
    client, _ = session(gw, gw.alice)
    visible = Job.select().where(Job.id.in_(list(world.visible_jobs)))
    by = {j.id: j for j in visible}

    page = text(client, "/jobs")
    assert shown_ids(page) == {i for i, j in by.items() if j.user_id == gw.alice.id}
    assert re.search(r'<a href="/jobs" aria-current="true">My jobs</a>', page)
    assert '<a href="/jobs?scope=all" >All I can see</a>' in page
    assert 'name="scope"' not in page  # the default needs no field

    page = text(client, "/jobs?scope=all")
    assert shown_ids(page) == world.visible_jobs
    assert '<input type="hidden" name="scope" value="all">' in page  # filtering keeps it

    # Each filter, alone and with the scope; the links of the page keep them all.
    assert shown_ids(text(client, "/jobs?scope=all&project=by-team")) == {
        i for i, j in by.items() if j.project_id and j.project.name == "by-team"}
    assert shown_ids(text(client, "/jobs?scope=all&tag=beta")) == {
        i for i, j in by.items() if "beta" in [t.name for t in j.tags]}
    assert shown_ids(text(client, "/jobs?scope=all&status=Completed")) == set()
    assert shown_ids(text(client, "/jobs?scope=all&template=t001")) == world.visible_jobs
    assert shown_ids(text(client, "/jobs?scope=all&text=CAROL")) == {
        i for i, j in by.items() if j.user_id == world.carol.id}
    some = max(world.visible_jobs)
    assert some in shown_ids(text(client, f"/jobs?scope=all&text=%23{some}"))
    assert shown_ids(text(client, "/jobs?scope=all&text=job2")) == {
        i for i, j in by.items() if "job2" in j.name}
    assert shown_ids(text(client, "/jobs?scope=all&text=granted")) == {
        i for i, j in by.items() if j.experiment_id and j.experiment.name == "granted"}
    assert shown_ids(text(client, "/jobs?text=100%25_")) == set()  # LIKE's wildcards are text
    page = text(client, "/jobs?scope=all&tag=alpha&text=job")
    assert 'value="job"' in page and 'id="f-tag" name="tag" value="alpha"' in page
    assert 'href="/jobs?scope=all"' in page and "Clear filters" in page

    # A page of its own keeps the filters in the pager's links (and back again).
    for i in range(55):
        Job.create(kind="sbatch", name=f"mass{i}", user=gw.alice, license="test-lab",
                   slurm_account="test_lab", time_limit_minutes=10)
    page = text(client, "/jobs?text=mass&status=Pending")
    assert len(shown_ids(page)) == 50 and "page 1 of 2 · 55 jobs" in page
    older = html.unescape(re.search(r'<a rel="next" href="([^"]+)"', page).group(1))
    assert older == "/jobs?page=2&status=Pending&text=mass"
    page = text(client, older)
    assert len(shown_ids(page)) == 5 and "page 2 of 2" in page
    newer = html.unescape(re.search(r'<a rel="prev" href="([^"]+)"', page).group(1))
    assert newer == "/jobs?page=1&status=Pending&text=mass"
    # Whose jobs: switching keeps the filters, and starts at the first page.
    switch = html.unescape(re.search(r'<a href="([^"]+)" >All I can see', page).group(1))
    assert switch == "/jobs?scope=all&status=Pending&text=mass"

    # What the URL may not say is refused in words, not with a crash.
    assert "must be one of" in text(client, "/jobs?status=Nope", 400)
    assert "at most 200" in text(client, "/jobs?text=" + "x" * 201, 400)


def _job_with_outputs(gw, token):
    """A job of ``token``'s person on proj/exp that ended with a file and an OUT_ value."""
    job = gw.run("outs", token=token)
    paths = gw.ctx.job_paths(job["id"])
    (paths.output_dir / "sub dir").mkdir(parents=True)
    (paths.output_dir / "sub dir" / "result #1.txt").write_text("42\n")
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    (paths.base / OUTPUTS_FILE).write_bytes(b"OUT_ANSWER=42\0")
    gw.slurm.finish(job["slurm_job_id"], elapsed=5)
    gw.tick()
    return job["id"]


def test_a_row_expands_to_outputs_only_for_who_may_see_the_job(gw):
    gw.environment("base", public=True)
    gw.experiment()
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "alice", "role": "member"})
    gw.ok("POST", "/licenses/test-lab/access", 201, json={"user": "alice", "role": "member"})
    gw.template(name="outs", outputs=[{"name": "OUT_ANSWER", "type": "string"}], token=gw.alice_token)
    job_id = _job_with_outputs(gw, gw.alice_token)
    client, _ = session(gw, gw.alice)

    page = text(client, "/jobs")
    row = re.search(rf'<tr data-job="{job_id}".*?</tr>\s*<tr class="job-more"[^>]*>', page, re.S).group(0)
    # The "+" is a labelled button that says whether its row is open and which row it opens.
    button = re.search(r"<button [^>]*class=\"expand\"[^>]*>", row, re.S).group(0)
    assert f'aria-controls="job-more-{job_id}"' in button and 'aria-expanded="false"' in button
    assert f'aria-label="Outputs of job {job_id}"' in button
    assert f'data-job-url="/api/v1/jobs/{job_id}"' in button
    assert f'<tr class="job-more" id="job-more-{job_id}" hidden>' in row
    assert f'href="/jobs/{job_id}" aria-label="Details of job {job_id}"' in row  # the eye
    # No inline script or style anywhere: the page's CSP would block them.
    r = client.get("/jobs")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)|\sstyle=|\son[a-z]+=", page)

    # The table's live refresh says when a job ended, as the table shows it.
    live = client.get(f"/jobs/statuses?ids={job_id}").json[str(job_id)]
    assert live["finalized"] and live["status"] == "Completed" and live["ended"].endswith(" UTC")

    # What the expanded row reads, with the session: files and OUT_ values...
    d = client.get(f"/api/v1/jobs/{job_id}").json
    assert d["output_files"] == [{"path": "sub dir/result #1.txt", "size": 3}]
    assert d["output_variables"] == {"OUT_ANSWER": "42"}
    # ...and the link it makes, to the permission-checked download.
    r = client.get(f"/api/v1/jobs/{job_id}/files/sub%20dir/result%20%231.txt")
    assert r.status_code == 200 and r.data == b"42\n"

    # bob may not see the job: not in his table, whatever he asks for, and nothing to expand.
    bob, _ = session(gw, gw.bob)
    for path in ("/jobs", "/jobs?scope=all", f"/jobs?scope=all&text={job_id}",
                 "/jobs?scope=all&project=proj"):
        assert job_id not in shown_ids(text(bob, path)), path
    assert bob.get(f"/api/v1/jobs/{job_id}").status_code == 404
    r = bob.get(f"/api/v1/jobs/{job_id}/files/sub%20dir/result%20%231.txt")
    assert r.status_code == 404 and b"42" not in r.data
    assert bob.get(f"/jobs/statuses?ids={job_id}").json == {}


def test_what_jobs_and_people_wrote_is_shown_as_text(gw):
    gw.environment("base", public=True)
    gw.experiment()
    gw.template(name="outs")
    job = gw.run("outs")
    gw.ok("POST", f"/jobs/{job['id']}/tags", 201, json={"name": "<b>bold</b>"})
    client, _ = session(gw, gw.admin)
    page = text(client, "/jobs")
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
