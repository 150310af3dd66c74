"""Every permission question goes through access.py's table.

- every action the code asks about (``can``, ``require``, ``where_may``, ``who_may``)
  is an entry of ``access.ACTIONS``;
- no other module ranks roles itself, and the portal re-derives nothing;
- the SQL filter of lists (``where_may``) answers exactly as ``can`` does row by row;
- the rules that depend on a job's state or on who made a link are table entries too.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import gateway
from gateway import access
from gateway.access import ACTIONS, GRANTABLE, KIND_OF, STATE_RULES, Role
from gateway.db import utcnow
from gateway.models import (
    Environment,
    Experiment,
    Job,
    Project,
    ShareLink,
    Team,
    Template,
    User,
)
from tests.fast.access_world import World

PACKAGE = Path(gateway.__file__).parent
ASKING = {"can", "require", "where_may", "who_may"}


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def _actions_asked() -> dict[str, list[str]]:
    """action -> where it is asked, from every call of ASKING in the package. An
    f-string action (``f"{kind}.manage_access"``) stands for every grantable kind."""
    found: dict[str, list[str]] = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            if name not in ASKING:
                continue
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and "." in arg.value:
                    found.setdefault(arg.value, []).append(where)
                elif isinstance(arg, ast.JoinedStr):
                    tail = "".join(v.value for v in arg.values if isinstance(v, ast.Constant))
                    for kind in GRANTABLE:
                        found.setdefault(f"{kind}{tail}", []).append(where)
    return found


def test_every_action_asked_anywhere_is_in_the_table():
    asked = _actions_asked()
    assert len(asked) > 25, sorted(asked)  # the scan found the calls
    missing = {a: w for a, w in asked.items() if a not in ACTIONS}
    assert not missing, missing
    for action, (instead, _) in STATE_RULES.items():
        assert action in ACTIONS and instead in ACTIONS
    assert {a.split(".")[0] for a in ACTIONS} <= set(KIND_OF.values())


def test_no_module_but_access_ranks_roles():
    for path in _sources():
        if path.name == "access.py":
            continue
        text = path.read_text()
        assert "role_of(" not in text, path
        assert not re.search(r"Role\.[A-Z]+|[<>]=?\s*Role\b", text), path


PORTAL = PACKAGE / "web" / "portal"
# Deciding who may do something: comparing who a person is with who made a thing,
# their admin flag, or a role.
REDERIVED = re.compile(r"\b(user_id|owner_id|created_by_id|author_id|is_admin|role_of|has_started)\b"
                       r"|ROLE_NAMES\[")


def test_the_portal_asks_access_and_derives_nothing_itself():
    for path in sorted(PORTAL.rglob("*.py")) + sorted(PORTAL.rglob("*.html")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not REDERIVED.search(line), f"{path}:{n}: {line.strip()}"


# --- the SQL filter agrees with can() ---------------------------------------------

MODELS = {"template": Template, "project": Project, "experiment": Experiment,
          "environment": Environment, "job": Job, "team": Team}


@pytest.fixture
def world(fake_gw):
    w = World(fake_gw)
    w.add_jobs(40)
    w.add_templates(12)
    return w


def test_lists_filtered_in_sql_show_exactly_what_can_allows(world):
    checked = 0
    for user in User.select():
        for action in ACTIONS:
            kind = action.split(".")[0]
            if kind not in MODELS or action in STATE_RULES:
                continue
            model = MODELS[kind]
            in_sql = {o.id for o in access.where_may(user, action, model.select())}
            by_row = {o.id for o in model.select() if access.can(user, action, o)}
            assert in_sql == by_row, (user.username, action)
            checked += 1
    assert checked > 50


def test_which_jobs_are_visible_follows_the_job_view_entry(world, monkeypatch):
    alice = world.alice
    seen = {j.id for j in access.visible_jobs(alice, Job.select())}
    assert seen == world.visible_jobs
    # Viewers of the data see its jobs: alice is one on "viewed", and sees them...
    viewed = {j.id for j in Job.select().join(Project).where(Project.name == "viewed")
              if j.user_id != alice.id}
    assert viewed and viewed <= seen
    # ...and were the table to ask for Members, the list would follow it.
    monkeypatch.setitem(ACTIONS, "job.view", Role.MEMBER)
    assert {j.id for j in access.visible_jobs(User.get_by_id(alice.id), Job.select())} \
        == world.visible_jobs - viewed


# --- rules that depend on state or on who made something --------------------------

def test_before_a_job_starts_only_who_ran_it_tags_it(world):
    job = Job.get((Job.user == world.bob) & (Job.project == world.places[1][0]))  # alice's team's data
    assert job.status == "Pending" and job.started_at is None
    assert not access.can(world.alice, "job.tag", job)
    assert access.can(world.bob, "job.tag", job)
    with pytest.raises(gateway.errors.Forbidden, match="only the person who ran it"):
        access.require(world.alice, "job.tag", job)
    job.started_at = utcnow()
    assert access.can(world.alice, "job.tag", job)


def test_the_data_owner_is_a_manager_of_others_jobs_not_their_owner(world):
    owner = world.places[0][0].owner  # alice owns "mine"
    job = Job.get((Job.user != owner) & (Job.project == world.places[0][0]))
    assert access.role_of(owner, job) == Role.MANAGER
    assert access.can(owner, "job.cancel", job) and not access.can(owner, "job.view_script", job)


def test_a_share_link_is_revoked_by_its_creator_or_a_manager(world):
    job = Job.get((Job.user == world.bob) & (Job.project == world.places[1][0]))
    link = ShareLink.create(job=job, token_hash="f" * 64, created_by=world.alice)
    other = ShareLink.create(job=job, token_hash="e" * 64, created_by=world.bob)
    assert access.can(world.alice, "share_link.revoke", link)
    assert not access.can(world.alice, "share_link.revoke", other)
    assert access.can(world.bob, "share_link.revoke", link)  # he ran the job
    assert access.can(world.admin, "share_link.revoke", other)


def test_only_owners_manage_owners(world):
    project = world.places[1][0]  # by-team: alice's team are Members
    assert not access.can(world.alice, "project.manage_owners", project)
    assert access.can(project.owner, "project.manage_owners", project)
    for kind in GRANTABLE:
        assert ACTIONS[f"{kind}.manage_owners"] == Role.OWNER
        assert ACTIONS[f"{kind}.manage_access"] == Role.MANAGER


def _portal_session(gw, user):
    from gateway.auth.login import set_local_password

    set_local_password(user, "a-long-password")
    client = gw.app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True))
    r = client.post("/login", data={"username": user.username, "password": "a-long-password",
                                    "csrf_token": token.group(1)})
    assert r.status_code == 302
    return client


def test_the_job_page_offers_what_access_allows(fake_gw):
    gw = fake_gw
    gw.experiment()
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "alice", "role": "member"})
    job = gw.ok("POST", "/jobs/sbatch", 201, json={"script": "#!/bin/bash\ntrue\n", "license": "test-lab",
                                                   "project": "proj", "experiment": "exp"})
    theirs = gw.ok("POST", f"/jobs/{job['id']}/comments", 201, json={"body": "admin's"})
    hers = gw.ok("POST", f"/jobs/{job['id']}/comments", 201, token=gw.alice_token, json={"body": "hers"})
    client = _portal_session(gw, gw.alice)

    def page():
        return client.get(f"/jobs/{job['id']}").get_data(as_text=True)

    shown = page()
    assert 'value="add_tag"' not in shown  # not started: only who ran it tags it
    assert f'name="comment" value="{hers["id"]}"' in shown
    assert f'name="comment" value="{theirs["id"]}"' not in shown  # only its author edits a comment
    assert 'value="cancel"' not in shown  # a Member does not cancel others' jobs
    Job.update(started_at=utcnow(), status="Running").where(Job.id == job["id"]).execute()
    assert 'value="add_tag"' in page()
