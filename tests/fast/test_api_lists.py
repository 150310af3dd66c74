"""The API's long lists page: GET /jobs by page or by the ``before`` cursor, GET
/sweeps/<id> by ``limit`` and ``offset`` (its counts always over every task); bad
values refused naming the field; a page costs the same few queries however long the
list; a Member pages through only what they may see; the command-line clients still
read every task of a sweep bigger than a page. Also: the migrations make every index
the models declare."""
from __future__ import annotations

import pytest

from gateway.db import database
from gateway.models import ALL_MODELS, Job
from gateway.sweeps import TASKS_PAGE
from tests.fast.access_world import World
from tests.fast.test_query_counts import counted, get_counted

INPUTS = [{"name": "DC_N", "type": "integer", "default": 1}]


@pytest.fixture
def gw(fake_gw):
    fake_gw.environment(public=True)
    fake_gw.experiment()
    fake_gw.experiment(project="other", experiment="exp")
    fake_gw.tpl = fake_gw.template(name="sweepme", inputs=INPUTS, outputs=[{"name": "OUT_R"}], public=True)
    return fake_gw


def sweep(gw, n: int, project: str = "proj") -> dict:
    return gw.ok("POST", f"/templates/{gw.tpl['id']}/sweeps", 201, json={
        "project": project, "experiment": "exp", "machine_type": "small", "license": "test-lab",
        "software_disk_gb": 1, "inputs": {"DC_N": {"range": {"start": 1, "stop": n}}}})


def refused(gw, path: str, field: str, token: str | None = None) -> str:
    r = gw.api("GET", path, token=token)
    assert r.status_code == 400, (path, r.status_code, r.get_data(as_text=True))
    assert r.json["field"] == field, r.json
    return r.json["error"]


# --- GET /jobs ------------------------------------------------------------------

def walk(gw, token: str, per_page: int, query: str = "") -> list[int]:
    """Every job id of the list, followed page after page by ``next_before``."""
    seen: list[int] = []
    path = f"/jobs?per_page={per_page}{query}"
    while True:
        body = gw.ok("GET", path, token=token)
        assert len(body["jobs"]) <= per_page
        seen += [j["id"] for j in body["jobs"]]
        if body["next_before"] is None:
            return seen
        assert body["next_before"] == body["jobs"][-1]["id"]
        path = f"/jobs?per_page={per_page}{query}&before={body['next_before']}"


def test_the_cursor_and_the_pages_list_the_same_jobs_newest_first(fake_gw):
    gw = fake_gw
    world = World(gw)
    world.add_jobs(23)
    every = [j.id for j in Job.select(Job.id).order_by(Job.id.desc())]
    assert walk(gw, gw.token, 5) == every
    by_page = []
    for page in range(1, 6):
        body = gw.ok("GET", f"/jobs?per_page=5&page={page}")
        assert body["total"] == 23
        by_page += [j["id"] for j in body["jobs"]]
    assert by_page == every
    # The total counts the whole list, whatever the cursor; a page counts from it.
    body = gw.ok("GET", f"/jobs?per_page=5&before={every[4]}&page=2")
    assert body["total"] == 23 and [j["id"] for j in body["jobs"]] == every[10:15]
    last = gw.ok("GET", f"/jobs?per_page=5&before={every[19]}")
    assert [j["id"] for j in last["jobs"]] == every[20:] and last["next_before"] is None
    assert gw.ok("GET", f"/jobs?before={every[-1]}")["jobs"] == []


def test_a_member_pages_through_only_what_she_may_see(fake_gw):
    gw = fake_gw
    world = World(gw)
    world.add_jobs(40)
    assert set(walk(gw, gw.alice_token, 4)) == world.visible_jobs
    assert len(walk(gw, gw.alice_token, 4)) == len(world.visible_jobs)  # none twice
    body = gw.ok("GET", "/jobs?per_page=500", token=gw.alice_token)
    assert {j["id"] for j in body["jobs"]} == world.visible_jobs == set(walk(gw, gw.alice_token, 7))
    assert body["total"] == len(world.visible_jobs)
    # A cursor at a job she may not see shows her nothing more than her own list does.
    hidden = Job.select(Job.id).where(Job.id.not_in(list(world.visible_jobs))).order_by(Job.id.desc()).first()
    after = gw.ok("GET", f"/jobs?per_page=500&before={hidden.id + 1}", token=gw.alice_token)
    assert {j["id"] for j in after["jobs"]} == {i for i in world.visible_jobs if i <= hidden.id}


@pytest.mark.parametrize("listed", [1000, 0])
def test_reading_the_ids_of_her_data_first_lets_her_see_exactly_the_same_jobs(fake_gw, monkeypatch, listed):
    """A job list reads the ids of the projects and experiments she holds a role on
    first (the subqueries themselves above MAX_LISTED_IDS): the same jobs either way,
    for a Viewer's role too, and nothing for someone with no role."""
    from gateway import access

    monkeypatch.setattr(access, "MAX_LISTED_IDS", listed)
    world = World(fake_gw)
    world.add_jobs(30)
    for who in (world.alice, world.bob, world.carol):
        by_subquery = {j.id for j in access.visible_jobs(who, Job.select(Job.id))}
        by_ids = {j.id for j in access.visible_jobs(who, Job.select(Job.id), ids_first=True)}
        assert by_ids == by_subquery, who.username
    assert by_ids == {j.id for j in Job.select(Job.id).where(Job.user == world.carol)}
    assert {j.id for j in access.visible_jobs(world.alice, Job.select(Job.id), ids_first=True)} == \
        world.visible_jobs
    assert set(walk(fake_gw, fake_gw.alice_token, 6)) == world.visible_jobs


@pytest.mark.parametrize("query, field", [
    ("per_page=0", "per_page"), ("per_page=501", "per_page"), ("per_page=many", "per_page"),
    ("page=0", "page"), ("page=-3", "page"), ("page=1.5", "page"), ("page=99999999999", "page"),
    ("before=0", "before"), ("before=-1", "before"), ("before=abc", "before"), ("before=1e3", "before"),
    ("before=99999999999999999999", "before"),
])
def test_bad_paging_of_the_job_list_is_refused_naming_the_field(gw, query, field):
    refused(gw, f"/jobs?{query}", field)


def test_a_page_of_jobs_costs_the_same_queries_by_page_or_by_cursor(fake_gw):
    gw = fake_gw
    world = World(gw)
    world.add_jobs(30)
    counts = []
    for path in ("/jobs?per_page=5", "/jobs?per_page=5&page=4", "/jobs?per_page=5&before=12"):
        body, count = get_counted(gw, path, gw.alice_token)
        assert len(body["jobs"]) == 5, path
        counts.append(count.n)
    assert counts[0] == counts[1] == counts[2], counts


# --- GET /sweeps/<id> -------------------------------------------------------------

def test_a_sweep_lists_a_page_of_its_tasks_and_counts_them_all(gw):
    s = sweep(gw, 7)
    tasks = [j["id"] for j in gw.ok("GET", f"/sweeps/{s['id']}")["jobs"]]
    assert len(tasks) == 7
    page = gw.ok("GET", f"/sweeps/{s['id']}?limit=3&offset=2")
    assert [j["array_task"] for j in page["jobs"]] == [2, 3, 4]
    assert [j["id"] for j in page["jobs"]] == tasks[2:5]
    assert (page["tasks"], page["limit"], page["offset"]) == (7, 3, 2)
    assert sum(page["status_counts"].values()) == 7 and page["status_counts"]["Pending"] == 7
    assert page["finished"] is False
    # Every field a task shows in the list is the job's own.
    assert page["jobs"][0] == gw.ok("GET", f"/jobs/{tasks[2]}")
    assert [j["array_task"] for j in gw.ok("GET", f"/sweeps/{s['id']}?offset=5")["jobs"]] == [5, 6]
    beyond = gw.ok("GET", f"/sweeps/{s['id']}?offset=7")
    assert beyond["jobs"] == [] and beyond["tasks"] == 7
    assert gw.ok("GET", f"/sweeps/{s['id']}?offset={2**63 - 1}&limit={2**63 - 1}")["jobs"] == []
    # With no paging asked for, the first TASKS_PAGE tasks (here all of them); a limit
    # above the sweep's size, all of them.
    whole = gw.ok("GET", f"/sweeps/{s['id']}")
    assert (whole["limit"], whole["offset"]) == (TASKS_PAGE, 0) and len(whole["jobs"]) == 7
    assert len(gw.ok("GET", f"/sweeps/{s['id']}?limit=20000")["jobs"]) == 7


def test_a_sweeps_counts_and_finished_cover_the_tasks_beyond_the_page(gw):
    s = sweep(gw, 4)
    base = s["array_job_ids"][0]
    for i in range(4):
        gw.slurm.start(f"{base}_{i}")
        gw.slurm.finish(f"{base}_{i}", elapsed=5, exit_code=1 if i == 3 else 0)
    gw.tick()
    first = gw.ok("GET", f"/sweeps/{s['id']}?limit=1")
    assert first["status_counts"] == {"Pending": 0, "Running": 0, "Completed": 3, "Failed": 1}
    assert first["finished"] is True and first["tasks"] == 4 and len(first["jobs"]) == 1


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=-1", "limit"), ("limit=ten", "limit"), ("limit=2.5", "limit"),
    ("limit=99999999999999999999", "limit"),
    ("offset=-1", "offset"), ("offset=x", "offset"), ("offset=", "offset"),
])
def test_bad_paging_of_a_sweep_is_refused_naming_the_field(gw, query, field):
    s = sweep(gw, 2)
    error = refused(gw, f"/sweeps/{s['id']}?{query}", field)
    assert error


def test_a_sweep_page_costs_the_same_queries_for_3_or_30_tasks(gw):
    counts = []
    for n in (3, 30):
        s = sweep(gw, n)
        body, count = get_counted(gw, f"/sweeps/{s['id']}", gw.token)
        assert len(body["jobs"]) == n
        counts.append(count.n)
        with counted() as csv_count:
            gw.ok("GET", f"/sweeps/{s['id']}/results.csv")
        counts.append(csv_count.n)
    assert counts[0] == counts[2] and counts[1] == counts[3], counts


def test_a_member_sees_the_sweeps_on_her_data_and_nothing_of_the_others(gw):
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "alice", "role": "member"})
    mine, other = sweep(gw, 5), sweep(gw, 3, project="other")
    page = gw.ok("GET", f"/sweeps/{mine['id']}?limit=2&offset=1", token=gw.alice_token)
    assert [j["array_task"] for j in page["jobs"]] == [1, 2] and page["tasks"] == 5
    assert gw.ok("GET", f"/sweeps/{mine['id']}/results.csv", token=gw.alice_token).get_data(
        as_text=True).count("\n") == 6
    # The other project's sweep is not there for her, however she pages it; nor are its
    # tasks in her job list, by sweep or not.
    for path in (f"/sweeps/{other['id']}", f"/sweeps/{other['id']}?limit=1&offset=0",
                 f"/sweeps/{other['id']}?limit=0", f"/sweeps/{other['id']}/results.csv"):
        r = gw.api("GET", path, token=gw.alice_token)
        assert r.status_code == 404 and str(other["jobs"][0]["id"]) not in r.get_data(as_text=True), path
    assert gw.ok("GET", f"/jobs?sweep={other['id']}", token=gw.alice_token)["total"] == 0
    listed = walk(gw, gw.alice_token, 2)
    assert sorted(listed) == sorted(j["id"] for j in mine["jobs"])
    # bob, with no role anywhere, sees no sweep at all.
    assert gw.api("GET", f"/sweeps/{mine['id']}?limit=1", token=gw.bob_token).status_code == 404


# --- the schema ------------------------------------------------------------------

def _declared_indexes(model) -> set[tuple[tuple[str, ...], bool]]:
    fields = model._meta.fields
    found = {((f.column_name,), bool(f.unique)) for f in model._meta.sorted_fields
             if (f.index or f.unique) and not f.primary_key}
    for columns, unique in model._meta.indexes:
        found.add((tuple(fields[c].column_name if c in fields else c for c in columns), bool(unique)))
    return found


def test_the_migrations_make_every_index_the_models_declare(gw):
    for model in ALL_MODELS:
        table = model._meta.table_name
        made = {(tuple(ix.columns), bool(ix.unique)) for ix in database.get_indexes(table)}
        assert _declared_indexes(model) <= made, (table, _declared_indexes(model) - made)


# --- the command-line clients read every task of a sweep bigger than a page ----------

def _task(i: int, exit_code: int = 0) -> dict:
    return {"id": 100 + i, "array_task": i, "status": "Completed" if exit_code == 0 else "Failed",
            "exit_code": exit_code, "inputs": {"DC_N": str(i)}, "output_variables": {"OUT_R": str(i * 2)}}


def _sweep_answer(jobs: list[dict], tasks: int = 3) -> dict:
    return {"id": 5, "tasks": tasks, "swept": ["DC_N"], "finished": True, "array_job_ids": ["900"],
            "status_counts": {"Pending": 0, "Running": 0, "Completed": 2, "Failed": 1},
            "limit": len(jobs), "offset": 0, "jobs": jobs}


def test_gateway_sweep_lists_every_task_of_a_sweep_bigger_than_a_page(tmp_path):
    from tests.fast.test_client_startup import run_entry, stub_api

    with stub_api() as api:
        api.answers[("GET", "/api/v1/sweeps/5")] = (200, _sweep_answer([_task(0), _task(1)]), {})
        api.answers[("GET", "/api/v1/sweeps/5?limit=3")] = (
            200, _sweep_answer([_task(0), _task(1), _task(2, exit_code=4)]), {})
        done, _ = run_entry("gateway", "sweep", "5", tmp_path=tmp_path,
                            env={"GATEWAY_URL": api.url, "GATEWAY_TOKEN": "gw_t"})
    assert done.returncode == 0, done.stderr
    listed = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("  task")]
    assert listed == ["0", "1", "2"]


def test_sbatch_wait_on_an_array_counts_the_tasks_beyond_the_first_page(tmp_path):
    from tests.fast.test_client_startup import run_entry, stub_api

    with stub_api() as api:
        api.answers[("POST", "/api/v1/jobs/sbatch")] = (201, _sweep_answer([_task(0), _task(1)]), {})
        api.answers[("GET", "/api/v1/sweeps/5")] = (200, _sweep_answer([_task(0), _task(1)]), {})
        api.answers[("GET", "/api/v1/sweeps/5?limit=3")] = (
            200, _sweep_answer([_task(0), _task(1), _task(2, exit_code=4)]), {})
        done, _ = run_entry("gateway-sbatch", "--gw-license", "lab", "--wait", "--array=0-2", "--wrap",
                            "hostname", tmp_path=tmp_path,
                            env={"GATEWAY_URL": api.url, "GATEWAY_TOKEN": "gw_t"})
    assert done.returncode == 4, (done.stdout, done.stderr)
