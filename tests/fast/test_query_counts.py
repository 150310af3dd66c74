"""List endpoints cost a fixed number of SQL queries, whatever the number of rows, and
filter what a person may see in SQL.

The rows come from access_world.World, made directly in the database: jobs of
several people on several projects and experiments, with tags and share links;
templates of several owners, public, granted to a person or to a team, and hidden. The
person asking is not an admin and reaches things through her own rows, grants to her,
and grants to her team.
"""
from __future__ import annotations

import contextlib

import pytest

from gateway.db import database
from gateway.models import Job, Template
from tests.fast.access_world import World

MAX_QUERIES = 6


@pytest.fixture
def gw(fake_gw):
    return fake_gw


@contextlib.contextmanager
def counted():
    """Count the SQL statements run inside the block (``.n`` of what it yields)."""
    db = database.obj
    real = db.execute_sql
    count = type("Count", (), {"n": 0, "sql": []})()

    def counting(sql, params=None, *args, **kwargs):
        count.n += 1
        count.sql.append(sql)
        return real(sql, params, *args, **kwargs)

    db.execute_sql = counting
    try:
        yield count
    finally:
        del db.execute_sql  # the class's method again


def get_counted(gw, path: str, token: str):
    gw.ok("GET", path, token=token)  # once first: the token's last use is written then
    with counted() as count:
        body = gw.ok("GET", path, token=token)
    return body, count


def test_the_job_list_costs_the_same_few_queries_for_5_or_50_jobs(gw):
    world = World(gw)
    counts = []
    for total in (5, 50):
        world.add_jobs(total - Job.select().count())
        body, count = get_counted(gw, "/jobs?per_page=100", gw.alice_token)
        assert {j["id"] for j in body["jobs"]} == world.visible_jobs
        assert body["total"] == len(world.visible_jobs)
        assert count.n <= MAX_QUERIES, count.sql
        counts.append(count.n)
    assert counts[0] == counts[1], counts
    # What each row shows came with those queries: related rows and tags.
    shown = {j["id"]: j for j in body["jobs"]}
    for job in Job.select().where(Job.id.in_(list(world.visible_jobs))):
        d = shown[job.id]
        assert d["user"] == job.user.username and d["template_version"] == 2
        assert d["project"] == (job.project.name if job.project_id else None)
        assert d["experiment"] == (job.experiment.name if job.experiment_id else None)
        assert d["tags"] == sorted(t.name for t in job.tags)
    # Filters stay in SQL too.
    for query in ("tag=alpha", "project=by-team", f"template={world.template.tpl.name}", "status=Pending"):
        _, count = get_counted(gw, f"/jobs?{query}", gw.alice_token)
        assert count.n == counts[1], (query, count.sql)


def test_the_template_list_costs_the_same_few_queries_for_5_or_20_templates(gw):
    world = World(gw)
    counts = []
    for more in (5, 18):  # 5 then 20 templates she sees (and 3 she does not)
        world.add_templates(more)
        body, count = get_counted(gw, "/templates", gw.alice_token)
        assert {t["name"]: "script" in t for t in body if t["name"] != "t001"} == world.visible_templates
        assert count.n <= MAX_QUERIES, count.sql
        counts.append(count.n)
    assert counts[0] == counts[1], counts
    assert len(body) == 21 and Template.select().count() == 24  # t001 seen, 3 hidden
    shown = next(t for t in body if t["name"] == "t002")
    assert shown["owner"] == "alice" and shown["latest_version"] == 2
    assert [v["version"] for v in shown["versions"]] == [1, 2] and shown["created_by"] == "alice"
    assert shown["environment"] == "base" and shown["last_run_at"] is not None


def test_other_lists_filter_in_sql(gw):
    world = World(gw)
    world.add_templates(6)
    projects, count = get_counted(gw, "/projects", gw.alice_token)
    assert [p["name"] for p in projects] == ["by-team", "mine", "viewed"]
    assert count.n <= 2, count.sql
    experiments, count = get_counted(gw, "/projects/by-team/experiments", gw.alice_token)
    assert [e["name"] for e in experiments] == ["e"] and count.n <= 4, count.sql
    # The project "closed" is not hers to see, one experiment of it is.
    assert gw.api("GET", "/projects/closed/experiments", token=gw.alice_token).status_code == 404
    assert gw.api("GET", "/projects/closed/experiments/granted/access",
                  token=gw.alice_token).status_code == 200
    envs, count = get_counted(gw, "/environments", gw.alice_token)
    assert [e["name"] for e in envs] == ["base"] and count.n <= 3, count.sql
    teams, count = get_counted(gw, "/teams", gw.alice_token)
    assert teams == [{"name": "lab", "source": "local", "members": ["alice"]}] and count.n <= 3
    assert {t["name"] for t in gw.ok("GET", "/teams")} == {"lab", "elsewhere"}
