"""No request makes the gateway answer 500: generated paths, ids, query values and
JSON bodies (wrong shapes, huge numbers, non-ASCII digits, deep nesting) thrown at
every route of the API and the portal get a 4xx with a field, never a crash."""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.auth.login import set_local_password


@pytest.fixture
def gw(fake_gw):
    """On FakeSlurm: what is checked here never needs a job to run."""
    return fake_gw

FIELDS = ["name", "description", "public", "open_source", "language", "script", "environment",
          "environment_version", "version", "setup", "inputs", "outputs", "project", "experiment",
          "machine_type", "license", "software_disk_gb", "time_limit_minutes", "tags", "user", "team",
          "role", "username", "password", "expires_in_hours", "text", "partition", "workdir",
          "job_name", "throttle", "python_executable", "remove_files", "token"]
NASTY = ["0", "-1", "1", str(2**63), str(2**64 + 1), "9" * 40, "١٢", "１２", "1e3", "1.5", " 1",
         "..", "%00", "a/../../b", "\x00", "ß", "🙂", "NaN", "null", "[]", "{}"]

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40) | st.sampled_from(NASTY))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=12) | st.sampled_from(FIELDS), inner, max_size=3),
                      max_leaves=12)
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6) | values
segments = st.sampled_from(NASTY) | st.integers(min_value=-(2**70), max_value=2**70).map(str) \
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#"),
              min_size=1, max_size=20)
queries = st.dictionaries(st.sampled_from(["page", "per_page", "offset", "version", "status", "path",
                                           "template", "project", "sweep", "q"]), segments, max_size=3)


def routes(app):
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((method, rule.rule))
    return sorted(out)


def fill(rule: str, draw_segment) -> str:
    return re.sub(r"<(?:[a-z]+:)?[a-z_]+>", lambda m: draw_segment(), rule)


@pytest.fixture
def world(gw):
    gw.environment("base", public=True)
    gw.experiment()
    gw.template(name="tpl", environment="base")
    return gw


def test_generated_requests_never_get_a_500(world):
    gw = world
    all_routes = routes(gw.app)
    assert len(all_routes) > 40
    # The portal's pages go by a session (tokens are for the API only).
    set_local_password(gw.admin, "fuzz-admin-password")
    browser = gw.app.test_client()
    assert browser.post("/api/v1/auth/login", json={"username": "admin",
                                                    "password": "fuzz-admin-password"}).status_code == 200

    @settings(max_examples=400, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(route=st.sampled_from(all_routes), data=st.data(), body=bodies, query=queries)
    def check(route, data, body, query):
        method, rule = route
        path = fill(rule, lambda: data.draw(segments))
        client = gw.client if path.startswith("/api/") else browser
        r = client.open(path, method=method, query_string=query, headers=gw.headers(),
                        data=json.dumps(body), content_type="application/json")
        assert r.status_code < 500, (method, path, query, body, r.get_data(as_text=True)[:500])
        if path.startswith("/api/") and r.status_code >= 400 and r.is_json:
            assert set(r.json) >= {"error", "field"}

    check()


@pytest.mark.parametrize("depth", [100, 5000, 100_000])
def test_deeply_nested_json_is_a_400(gw, depth):
    r = gw.api("POST", "/projects", data="[" * depth + "]" * depth, content_type="application/json")
    assert r.status_code == 400 and r.json["error"]


@pytest.mark.parametrize("path", [
    f"/jobs/{2**63}", f"/jobs/{2**64}", "/jobs/١", "/jobs/１", f"/templates/{2**70}", "/jobs/-1",
    f"/jobs?page={2**63}", f"/jobs?per_page={2**70}", "/jobs?page=١", f"/jobs/1/log?offset={2**64}",
    f"/templates/1?version={2**64}", "/templates/1?version=١",
])
def test_ids_and_numbers_out_of_range_are_4xx(world, path):
    r = world.api("GET", path)
    assert 400 <= r.status_code < 500 and r.json["field"], (path, r.status_code, r.get_data(as_text=True))


def test_routes_whose_body_is_optional_refuse_deep_nesting_too(world):
    """Share links, tokens and revokes take an optional body; it goes through the same
    checks as every other body (it used to reach json.loads unguarded: a 500)."""
    gw = world
    job = gw.ok("POST", "/jobs/sbatch", 201, json={"script": "#!/bin/bash\ntrue\n", "license": "test-lab"})
    deep = "[" * 5000 + "]" * 5000
    for method, path in (("POST", f"/jobs/{job['id']}/share-links"), ("POST", "/tokens"),
                         ("DELETE", "/projects/proj/access")):
        r = gw.api(method, path, data=deep, content_type="application/json")
        assert r.status_code == 400 and r.json["field"] == "body", (path, r.status_code)
    assert gw.ok("POST", f"/jobs/{job['id']}/share-links", 201)["token"]  # no body: {} as before
