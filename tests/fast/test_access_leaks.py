"""What a signed-in person may not learn through side doors: a template's script through
a job's rendered script, a private environment under a public template, and whether a
name they cannot see is taken."""
from __future__ import annotations

import pytest


@pytest.fixture
def gw(fake_gw):
    """On FakeSlurm: what is checked here never needs a job to run."""
    return fake_gw

SECRET_SCRIPT = "echo the-secret-method\n"
SECRET_SETUP = "export SECRET_LICENSE_SERVER=10.9.8.7"


def test_a_project_member_gets_no_script_of_a_template_they_may_not_see(gw):
    gw.environment("private-env", setup=SECRET_SETUP)
    gw.experiment()
    tpl = gw.template(name="private-tpl", environment="private-env", script=SECRET_SCRIPT)
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "alice", "role": "member"})
    job = gw.wait(gw.run(tpl["id"])["id"])
    # A Member of the data sees the job run on it...
    assert gw.api("GET", f"/jobs/{job['id']}", token=gw.alice_token).status_code == 200
    r = gw.api("GET", f"/jobs/{job['id']}/script", token=gw.alice_token)
    assert r.status_code == 403 and r.json["field"] == "job", r.get_data(as_text=True)
    assert b"the-secret-method" not in r.get_data() and b"SECRET_LICENSE" not in r.get_data()
    # A Viewer of a template that is not open source is no better off...
    gw.ok("POST", f"/templates/{tpl['id']}/access", 201, json={"user": "alice", "role": "viewer"})
    assert gw.api("GET", f"/jobs/{job['id']}/script", token=gw.alice_token).status_code == 403
    # ...until it is: then its configuration, and so the script, is hers to see.
    gw.ok("PATCH", f"/templates/{tpl['id']}", json={"open_source": True})
    script = gw.ok("GET", f"/jobs/{job['id']}/script", token=gw.alice_token).get_data(as_text=True)
    assert "the-secret-method" in script and SECRET_SETUP in script
    assert "the-secret-method" in gw.ok("GET", f"/jobs/{job['id']}/script").get_data(as_text=True)


def test_a_plain_sbatch_script_is_its_submitters_only(gw):
    gw.experiment()
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "alice", "role": "member"})
    job = gw.ok("POST", "/jobs/sbatch", 201, json={
        "script": "#!/bin/bash\necho token=hunter2\n", "license": "test-lab",
        "project": "proj", "experiment": "exp"})
    assert gw.api("GET", f"/jobs/{job['id']}", token=gw.alice_token).status_code == 200
    r = gw.api("GET", f"/jobs/{job['id']}/script", token=gw.alice_token)
    assert r.status_code == 403 and b"hunter2" not in r.get_data()
    assert b"hunter2" in gw.ok("GET", f"/jobs/{job['id']}/script").get_data()


def test_a_public_template_cannot_be_moved_onto_a_private_environment(gw):
    gw.environment("open-env", public=True)
    gw.environment("closed-env")
    tpl = gw.template(name="pub", environment="open-env")
    gw.ok("PATCH", f"/templates/{tpl['id']}", json={"public": True})
    moved = {"language": "bash", "script": "echo moved\n", "environment": "closed-env"}
    r = gw.api("PUT", f"/templates/{tpl['id']}", json=moved)
    assert r.status_code == 400 and r.json["field"] == "environment", r.json
    shown = gw.ok("GET", f"/templates/{tpl['id']}")
    assert shown["environment"] == "open-env" and shown["latest_version"] == 1
    # A private template may move; then it cannot be made public.
    gw.ok("PATCH", f"/templates/{tpl['id']}", json={"public": False})
    gw.ok("PUT", f"/templates/{tpl['id']}", json=moved)
    assert gw.api("PATCH", f"/templates/{tpl['id']}", json={"public": True}).status_code == 400


@pytest.mark.parametrize("kind,create", [
    ("project", lambda gw, name, token: gw.api("POST", "/projects", token=token, json={"name": name})),
    ("environment", lambda gw, name, token: gw.api("POST", "/environments", token=token,
                                                   json={"name": name, "description": "d"})),
    ("template", lambda gw, name, token: gw.api("POST", "/templates", token=token, json={
        "name": name, "description": "d", "language": "bash", "script": "true\n",
        "environment": "shared", "inputs": [], "outputs": []})),
])
def test_a_taken_name_is_not_confirmed_to_who_cannot_see_it(gw, kind, create):
    gw.environment("shared", public=True)
    assert create(gw, "hidden-thing", gw.token).status_code == 201  # admin's, private
    r = create(gw, "hidden-thing", gw.alice_token)
    assert r.status_code == 409 and r.json["field"] == "name"
    assert "not available" in r.json["error"] and "exists" not in r.json["error"], r.json
    r = create(gw, "hidden-thing", gw.token)  # its owner is told plainly
    assert r.status_code == 409 and "already exists" in r.json["error"]
