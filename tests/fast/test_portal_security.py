"""The portal's forms need their CSRF token, session calls to the API need the header,
and no page shows what the API would refuse."""
from __future__ import annotations

import pytest

from tests.fast.portal_client import session


@pytest.fixture
def gw(fake_gw):
    """On FakeSlurm: what is checked here never needs a job to run."""
    return fake_gw




def test_forms_without_csrf_token_are_refused(gw):
    client, token = session(gw, gw.alice)
    r = client.post("/tokens", data={"name": "x"})
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    assert gw.ok("GET", "/tokens", token=gw.alice_token)[0]["name"] == "tests"  # nothing made
    assert client.post("/tokens", data={"name": "x", "csrf_token": token}).status_code == 200


def test_session_calls_to_the_api_need_the_csrf_header(gw):
    client, token = session(gw, gw.alice)
    assert client.get("/api/v1/me").json["username"] == "alice"
    r = client.post("/api/v1/projects", json={"name": "p"})
    assert r.status_code == 403 and "X-CSRFToken" in r.json["error"]
    r = client.post("/api/v1/projects", json={"name": "p"}, headers={"X-CSRFToken": token})
    assert r.status_code == 201


def test_pages_refuse_what_the_api_refuses(gw):
    gw.environment("env", public=False)
    gw.experiment()
    tpl = gw.template(name="private", environment="env")
    job = gw.ok("POST", "/jobs/sbatch", 201, json={"script": "#!/bin/bash\ntrue\n", "license": "test-lab",
                                                   "project": "proj", "experiment": "exp"})
    client, _ = session(gw, gw.bob)
    for path in (f"/templates/{tpl['id']}", f"/templates/{tpl['id']}/run", f"/jobs/{job['id']}",
                 f"/api/v1/jobs/{job['id']}/log", "/licenses/test-lab", f"/templates/{tpl['id']}/versions/1"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert "Traceback" not in r.get_data(as_text=True)
    listing = client.get("/jobs").get_data(as_text=True)
    assert f"#{job['id']}<" not in listing
    assert "private" not in client.get("/templates").get_data(as_text=True)
    # Not signed in: every page sends to the login page.
    anon = gw.app.test_client()
    assert anon.get(f"/jobs/{job['id']}").headers["Location"].startswith("/login")
