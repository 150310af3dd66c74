"""The role matrix: every role x every action, granted to a person and to a team.

Through the REST API, a person holding a role on a template, project, experiment or
environment may do exactly what access.ACTIONS allows; anything else is refused with
403 (they can see it) or 404 (they cannot).
"""
from __future__ import annotations

import pytest

from gateway.access import ROLE_NAMES, Role
from gateway.models import Team, TeamMember


@pytest.fixture
def gw(fake_gw):
    """On FakeSlurm: what is checked here never needs a job to run."""
    return fake_gw

ROLES = ["owner", "manager", "member", "viewer", None]


def setup_world(gw):
    gw.environment("env", public=False)
    gw.experiment("proj", "exp")
    gw.ok("PUT", "/projects/proj/experiments/exp/files/raw/a.txt", 201, data=b"x")
    gw.experiment("shared", "work")  # where alice may run things, for the template checks
    gw.template(name="tpl", environment="env", script="echo secret-script\n",
                inputs=[{"name": "DC_X", "type": "string", "default": "1"}])
    for path in ("/projects/shared/access", "/licenses/test-lab/access"):
        gw.ok("POST", path, 201, json={"user": "alice", "role": "member"})
    team = Team.create(name="lab-team", source="local")
    TeamMember.create(team=team, user=gw.alice)


def grant(gw, path, principal, role):
    if role is None:
        return
    who = {"user": "alice"} if principal == "user" else {"team": "lab-team"}
    gw.ok("POST", f"{path}/access", 201, json={**who, "role": role})


RUN = {"machine_type": "small", "license": "test-lab", "inputs": {}}


def template_actions(gw, t):
    return {
        "view": lambda: gw.api("GET", "/templates/tpl", token=t),
        "view_config": lambda: _config_visible(gw.api("GET", "/templates/tpl", token=t)),
        "run": lambda: gw.api("POST", "/templates/tpl/preview", token=t,
                              json={**RUN, "project": "shared", "experiment": "work"}),
        "edit": lambda: gw.api("PATCH", "/templates/tpl", token=t, json={"description": "new"}),
        "manage_access": lambda: gw.api("POST", "/templates/tpl/access", token=t,
                                        json={"user": "admin", "role": "viewer"}),
    }


def _config_visible(r):
    if r.status_code == 200 and "script" not in r.json:
        r.status_code = 403  # seen, but not its configuration
    return r


def project_actions(gw, t):
    return {
        "view": lambda: gw.api("GET", "/projects/proj/experiments", token=t),
        "edit": lambda: gw.api("POST", "/projects/proj/experiments", token=t, json={"name": "e2"}),
        "manage_access": lambda: gw.api("POST", "/projects/proj/access", token=t,
                                        json={"user": "admin", "role": "viewer"}),
    }


def experiment_actions(gw, t):
    base = "/projects/proj/experiments/exp"
    return {
        "view": lambda: gw.api("GET", f"{base}/access", token=t),
        "read_data": lambda: gw.api("GET", f"{base}/files", token=t),
        "write_data": lambda: gw.api("PUT", f"{base}/files/raw/b.txt", token=t, data=b"y"),
        "run_on": lambda: _run_on(gw, t),
        "manage_access": lambda: gw.api("POST", f"{base}/access", token=t,
                                        json={"user": "admin", "role": "viewer"}),
    }


def _run_on(gw, t):
    # alice may always run her own template; only the experiment's role decides.
    gw.ok("POST", "/environments/env/access", 201, json={"user": "alice", "role": "member"})
    r = gw.api("POST", "/templates", token=t, json={
        "name": "mine", "language": "bash", "script": "true", "environment": "env"})
    assert r.status_code == 201, r.json
    return gw.api("POST", "/templates/mine/preview", token=t,
                  json={**RUN, "project": "proj", "experiment": "exp"})


def environment_actions(gw, t):
    return {
        "view": lambda: gw.api("GET", "/environments/env", token=t),
        "use": lambda: gw.api("POST", "/templates", token=t, json={
            "name": "uses-env", "language": "bash", "script": "true", "environment": "env"}),
        "edit": lambda: gw.api("POST", "/environments/env/versions", token=t,
                               json={"version": "2", "setup": ""}),
        "manage_access": lambda: gw.api("POST", "/environments/env/access", token=t,
                                        json={"user": "admin", "role": "viewer"}),
    }


KINDS = {
    "template": ("/templates/tpl", template_actions),
    "project": ("/projects/proj", project_actions),
    "experiment": ("/projects/proj/experiments/exp", experiment_actions),
    "environment": ("/environments/env", environment_actions),
}


def expected_allowed(kind: str, action: str, role: str | None) -> bool:
    from gateway.access import ACTIONS

    if role is None:
        return False
    return ROLE_NAMES[role] >= ACTIONS[f"{kind}.{action}"]


@pytest.mark.parametrize("principal", ["user", "team"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_role_matrix(gw, kind, role, principal):
    setup_world(gw)
    path, actions = KINDS[kind]
    grant(gw, path, principal, role)
    for action, call in actions(gw, gw.alice_token).items():
        r = call()
        allowed = expected_allowed(kind, action, role)
        if allowed:
            assert r.status_code in (200, 201), (kind, action, role, principal, r.status_code, r.json)
        else:
            can_view = expected_allowed(kind, "view", role)
            if action == "use":  # an environment one may not use is unknown to the template form
                assert r.status_code == 400 and r.json["field"] == "environment", r.json
            else:
                assert r.status_code == (403 if can_view else 404), \
                    (kind, action, role, principal, r.status_code, r.json)


def test_open_source_template_shows_its_configuration_to_viewers(gw):
    setup_world(gw)
    gw.ok("POST", "/templates/tpl/access", 201, json={"user": "alice", "role": "viewer"})
    assert "script" not in gw.ok("GET", "/templates/tpl", token=gw.alice_token)
    gw.ok("PATCH", "/templates/tpl", json={"open_source": True})
    shown = gw.ok("GET", "/templates/tpl", token=gw.alice_token)
    assert shown["script"] == "echo secret-script\n"
    r = gw.api("POST", "/templates/tpl/preview", token=gw.alice_token,
               json={**RUN, "project": "shared", "experiment": "work"})
    assert r.status_code == 403  # a Viewer still cannot run it


def test_public_template_needs_a_public_environment(gw):
    setup_world(gw)
    r = gw.api("PATCH", "/templates/tpl", json={"public": True})
    assert r.status_code == 400 and r.json["field"] == "public" and "not public" in r.json["error"]
    assert gw.api("GET", "/templates/tpl", token=gw.alice_token).status_code == 404
    gw.environment("open-env", public=True)
    body = {"language": "bash", "script": "echo v2\n", "environment": "open-env"}
    gw.ok("PUT", "/templates/tpl", json=body)
    gw.ok("PATCH", "/templates/tpl", json={"public": True})
    # Every signed-in person now sees and may run it; nobody else may edit it.
    assert gw.ok("GET", "/templates/tpl", token=gw.alice_token)["public"] is True
    gw.ok("POST", "/templates/tpl/preview", token=gw.alice_token,
          json={**RUN, "project": "shared", "experiment": "work"})
    assert gw.api("PATCH", "/templates/tpl", token=gw.alice_token, json={"public": False}).status_code == 403


@pytest.mark.parametrize("body,field", [
    ({"user": "nobody", "role": "member"}, "user"),
    ({"team": "no-team", "role": "member"}, "team"),
    ({"user": "alice", "role": "superuser"}, "role"),
    ({"user": "alice", "team": "lab-team", "role": "member"}, "user"),
    ({"role": "member"}, "user"),
])
def test_bad_grants_are_refused_and_change_nothing(gw, body, field):
    setup_world(gw)
    before = gw.ok("GET", "/templates/tpl/access")
    r = gw.api("POST", "/templates/tpl/access", json=body)
    assert r.status_code == 400 and r.json["field"] == field, r.json
    assert gw.ok("GET", "/templates/tpl/access") == before


def test_only_owners_make_owners_and_revoke_works(gw):
    setup_world(gw)
    gw.ok("POST", "/templates/tpl/access", 201, json={"user": "alice", "role": "manager"})
    alice = gw.alice_token
    r = gw.api("POST", "/templates/tpl/access", token=alice, json={"team": "lab-team", "role": "owner"})
    assert r.status_code == 403
    gw.ok("POST", "/templates/tpl/access", 201, token=alice, json={"team": "lab-team", "role": "member"})
    gw.ok("DELETE", "/templates/tpl/access", json={"user": "alice"})
    # alice still reaches it through her team, as a Member now.
    assert gw.api("PATCH", "/templates/tpl", token=alice, json={"description": "x"}).status_code == 403
    assert gw.api("GET", "/templates/tpl", token=gw.alice_token).status_code == 200
    gw.ok("DELETE", "/templates/tpl/access", json={"team": "lab-team"})
    assert gw.api("GET", "/templates/tpl", token=gw.alice_token).status_code == 404
    assert Role.MEMBER < Role.MANAGER


# --- jobs: what a role on the data a job ran on lets someone do with the job -----------

def job_actions(gw, job_id, t):
    base = f"/jobs/{job_id}"
    return {  # in this order: cancelling comes last
        "view": lambda: gw.api("GET", base, token=t),
        "list": lambda: _listed(gw.api("GET", "/jobs?per_page=500", token=t), job_id),
        "view_log": lambda: gw.api("GET", f"{base}/log", token=t),
        "read_comments": lambda: gw.api("GET", f"{base}/comments", token=t),
        "tag": lambda: gw.api("POST", f"{base}/tags", token=t, json={"name": "mine"}),
        "comment": lambda: gw.api("POST", f"{base}/comments", token=t, json={"body": "hi"}),
        "share": lambda: gw.api("POST", f"{base}/share-links", token=t, json={}),
        "cancel": lambda: gw.api("POST", f"{base}/cancel", token=t),
    }


def _listed(r, job_id):
    if r.status_code == 200 and job_id not in {j["id"] for j in r.json["jobs"]}:
        r.status_code = 404  # not among the jobs shown to them
    return r


# The entry of access.ACTIONS each check asks.
JOB_ENTRY = {"view": "job.view", "list": "job.view", "view_log": "job.view",
             "read_comments": "comment.view", "tag": "job.tag", "comment": "job.comment",
             "share": "job.share", "cancel": "job.cancel"}


@pytest.mark.parametrize("principal", ["user", "team"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("place", ["project", "experiment"])
def test_job_role_matrix(gw, place, role, principal):
    """Someone else's job, on data where alice holds ``role``: she holds that role on the
    job, up to Manager (only who ran a job owns it). Viewers see it read-only."""
    from gateway.access import ACTIONS

    setup_world(gw)
    job = gw.ok("POST", "/jobs/sbatch", 201, json={
        "script": "#!/bin/bash\ntrue\n", "license": "test-lab", "project": "proj", "experiment": "exp"})
    gw.slurm.start(job["slurm_job_id"])
    gw.tick()
    gw.ok("POST", f"/jobs/{job['id']}/comments", 201, json={"body": "the admin's note"})
    grant(gw, {"project": "/projects/proj", "experiment": "/projects/proj/experiments/exp"}[place],
          principal, role)
    held = min(ROLE_NAMES[role], Role.MANAGER) if role else None
    for action, call in job_actions(gw, job["id"], gw.alice_token).items():
        r = call()
        allowed = held is not None and held >= ACTIONS[JOB_ENTRY[action]]
        if allowed:
            assert r.status_code in (200, 201, 202), (place, action, role, principal, r.status_code)
        else:
            seen = held is not None and held >= ACTIONS["job.view"]
            assert r.status_code == (403 if seen else 404), (place, action, role, principal, r.status_code)
            assert b"the admin's note" not in r.get_data()
