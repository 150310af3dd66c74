"""Working together on jobs: who sees jobs on shared data, tags, comments, share links,
and who may charge a licence. Jobs run on the real Slurm."""
from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest

from gateway.db import utcnow
from gateway.models import ShareLink, Team, TeamMember


def world(gw):
    """admin owns proj/exp; alice is a Member of proj, bob a Viewer; both may charge test-lab."""
    gw.environment("env", public=True)
    gw.experiment()
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "alice", "role": "member"})
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "bob", "role": "viewer"})
    for name in ("alice", "bob"):
        gw.ok("POST", "/licenses/test-lab/access", 201, json={"user": name, "role": "member"})
    tpl = gw.template(name="report", environment="env", public=True,
                      script='echo "report for $DC_WHO"; echo data > $JOB_OUTPUT_DIR/r.txt; OUT_N=7\n',
                      inputs=[{"name": "DC_WHO", "type": "string", "default": "x"}],
                      outputs=[{"name": "OUT_N"}])
    return tpl


def test_everyone_with_a_role_on_the_data_sees_its_jobs_and_nobody_else(gw):
    from gateway.users import add_user, create_token

    world(gw)
    carol = create_token(add_user("carol"), "tests")  # no role on proj
    mine = gw.run("report")  # admin's job on proj/exp
    done = gw.wait(mine["id"])
    jid = done["id"]
    # Members and Viewers (read-only) of the data see the job; nobody else does.
    for path in (f"/jobs/{jid}", f"/jobs/{jid}/log", f"/jobs/{jid}/files/r.txt", f"/jobs/{jid}/script"):
        assert gw.api("GET", path, token=gw.alice_token).status_code == 200, path
        assert gw.api("GET", path, token=gw.bob_token).status_code == 200, path
        assert gw.api("GET", path, token=carol).status_code == 404, path
    for token in (gw.alice_token, gw.bob_token):
        assert [j["id"] for j in gw.ok("GET", "/jobs", token=token)["jobs"]] == [jid]
    assert gw.ok("GET", "/jobs", token=carol)["total"] == 0
    assert gw.api("POST", f"/jobs/{jid}/cancel", token=carol).status_code == 404
    assert gw.api("POST", f"/jobs/{jid}/cancel", token=gw.bob_token).status_code == 403
    # A Member sees others' jobs but does not manage them.
    assert gw.api("POST", f"/jobs/{jid}/cancel", token=gw.alice_token).status_code in (403, 409)
    # alice's own job on the same data is seen by the project's owner and its Viewer.
    theirs = gw.run("report", token=gw.alice_token)
    assert theirs["user"] == "alice"
    assert gw.api("GET", f"/jobs/{theirs['id']}").status_code == 200
    assert gw.api("GET", f"/jobs/{theirs['id']}", token=gw.bob_token).status_code == 200
    assert gw.api("GET", f"/jobs/{theirs['id']}", token=carol).status_code == 404
    assert gw.ok("GET", "/jobs?per_page=1&page=2", token=gw.alice_token)["total"] == 2


def test_tags_before_and_after_start(gw):
    world(gw)
    held = gw.ok("POST", "/jobs/sbatch", 201, json={
        "script": "#!/bin/bash\n#SBATCH --hold\nsleep 2\n", "license": "test-lab",
        "project": "proj", "experiment": "exp"})
    jid = held["id"]
    gw.wait(jid, 30, until=lambda j: j["slurm_state"] == "PENDING")
    # Before it starts only the person who ran it (admin) may tag it.
    r = gw.api("POST", f"/jobs/{jid}/tags", token=gw.alice_token, json={"name": "early"})
    assert r.status_code == 403 and "only the person who ran it" in r.json["error"]
    assert gw.ok("POST", f"/jobs/{jid}/tags", 201, json={"name": "reference"})["tags"] == ["reference"]
    subprocess.run(["scontrol", "release", held["slurm_job_id"]], check=True)
    gw.wait(jid)
    # After it ran, Members and up add, rename and delete tags.
    gw.ok("POST", f"/jobs/{jid}/tags", 201, token=gw.alice_token, json={"name": "follow-up"})
    assert gw.ok("PUT", f"/jobs/{jid}/tags/reference", token=gw.alice_token,
                 json={"name": "ref"})["tags"] == ["follow-up", "ref"]
    assert gw.api("POST", f"/jobs/{jid}/tags", token=gw.alice_token, json={"name": "ref"}).status_code == 409
    assert gw.api("POST", f"/jobs/{jid}/tags", token=gw.alice_token, json={"name": ""}).status_code == 400
    gw.ok("DELETE", f"/jobs/{jid}/tags/follow-up", token=gw.alice_token)
    assert gw.ok("GET", f"/jobs/{jid}/tags", token=gw.alice_token) == ["ref"]
    assert gw.api("POST", f"/jobs/{jid}/tags", token=gw.bob_token, json={"name": "x"}).status_code == 403
    # The job list filters by tag.
    assert [j["id"] for j in gw.ok("GET", "/jobs?tag=ref", token=gw.alice_token)["jobs"]] == [jid]
    assert gw.ok("GET", "/jobs?tag=nothing")["total"] == 0


def test_tags_given_at_run_time(gw):
    world(gw)
    job = gw.run("report", token=gw.alice_token, tags=["baseline", "v1"])
    assert job["tags"] == ["baseline", "v1"]
    r = gw.api("POST", "/templates/report/runs", token=gw.alice_token, json={
        "project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab",
        "tags": ["\x00bad"]})
    assert r.status_code == 400 and r.json["field"] == "tags[0]"


def test_comments(gw):
    world(gw)
    jid = gw.run("report")["id"]
    c = gw.ok("POST", f"/jobs/{jid}/comments", 201, token=gw.alice_token, json={"body": "looks off"})
    gw.ok("POST", f"/jobs/{jid}/comments", 201, json={"body": "rerun with 2 CPUs"})
    assert [x["author"] for x in gw.ok("GET", f"/jobs/{jid}/comments", token=gw.alice_token)] == \
        ["alice", "admin"]
    # Only the author edits or deletes, whatever the role (admin owns everything here).
    assert gw.api("PUT", f"/jobs/{jid}/comments/{c['id']}", json={"body": "x"}).status_code == 403
    assert gw.api("DELETE", f"/jobs/{jid}/comments/{c['id']}").status_code == 403
    assert gw.ok("PUT", f"/jobs/{jid}/comments/{c['id']}", token=gw.alice_token,
                 json={"body": "fixed"})["body"] == "fixed"
    gw.ok("DELETE", f"/jobs/{jid}/comments/{c['id']}", token=gw.alice_token)
    assert len(gw.ok("GET", f"/jobs/{jid}/comments")) == 1
    # Viewers see the job but neither read nor add comments.
    assert gw.api("GET", f"/jobs/{jid}/comments", token=gw.bob_token).status_code == 403
    assert gw.api("POST", f"/jobs/{jid}/comments", token=gw.bob_token, json={"body": "hi"}).status_code == 403
    assert gw.api("POST", f"/jobs/{jid}/comments", json={"body": ""}).status_code == 400


def test_share_link_shows_results_to_anyone_and_nothing_else(gw):
    world(gw)
    job = gw.wait(gw.run("report", inputs={"DC_WHO": "the public"})["id"])
    link = gw.ok("POST", f"/jobs/{job['id']}/share-links", 201, token=gw.alice_token,
                 json={"expires_in_hours": 24})
    token = link["token"]
    assert len(token) >= 22 and link["url"].endswith(f"/api/v1/shared/{token}")
    anon = gw.app.test_client()
    shown = anon.get(f"/api/v1/shared/{token}").json
    assert shown["status"] == "Completed" and shown["inputs"] == {"DC_WHO": "the public"}
    assert shown["output_variables"] == {"OUT_N": "7"} and shown["output_files"][0]["path"] == "r.txt"
    assert "user" not in shown and "license" not in shown
    assert b"report for the public" in anon.get(f"/api/v1/shared/{token}/log").data
    assert anon.get(f"/api/v1/shared/{token}/files/r.txt").data == b"data\n"
    assert anon.get(f"/api/v1/shared/{token}/files/../../../etc/passwd").status_code in (400, 404)
    # It grants nothing else: not as a token, not for other jobs.
    assert anon.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert anon.get(f"/api/v1/shared/{token[:-2]}xx").status_code == 404
    assert gw.api("POST", f"/jobs/{job['id']}/share-links", token=gw.bob_token).status_code == 403
    # Revoked by its creator (or a Manager): gone.
    gw.ok("DELETE", f"/jobs/{job['id']}/share-links/{link['id']}", token=gw.alice_token)
    r = anon.get(f"/api/v1/shared/{token}")
    assert r.status_code == 410 and "revoked" in r.json["error"]
    # Expired: gone too.
    other = gw.ok("POST", f"/jobs/{job['id']}/share-links", 201, json={"expires_in_hours": 1})
    ShareLink.update(expires_at=utcnow() - timedelta(seconds=1)).where(ShareLink.id == other["id"]).execute()
    r = anon.get(f"/api/v1/shared/{other['token']}")
    assert r.status_code == 410 and "expired" in r.json["error"]
    listed = gw.ok("GET", f"/jobs/{job['id']}/share-links")
    assert all("token" not in x for x in listed) and listed[0]["revoked_at"]


def test_licenses_belong_to_people(gw):
    world(gw)
    # other-lab: alice is its sponsor (config), bio-team its members; bob is neither.
    # (tiny-lab names bob a member.)
    assert [x["name"] for x in gw.ok("GET", "/licenses", token=gw.bob_token)] == ["test-lab", "tiny-lab"]
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "bob", "role": "member"})
    r = gw.api("POST", "/templates/report/runs", token=gw.bob_token, json={
        "project": "proj", "experiment": "exp", "machine_type": "small", "license": "other-lab"})
    assert r.status_code == 400 and r.json["field"] == "license"
    team = Team.create(name="bio-team", source="local")
    TeamMember.create(team=team, user=gw.bob)
    bobs = gw.run("report", token=gw.bob_token, license="other-lab")
    alices = gw.run("report", token=gw.alice_token, license="other-lab")
    for j in (bobs, alices):
        gw.wait(j["id"])
    # The sponsor sees all usage, per person and per template; a member does not.
    report = gw.ok("GET", "/licenses/other-lab/usage", token=gw.alice_token)
    assert [u["name"] for u in report["by_user"]] == ["alice", "bob"]
    assert report["by_template"][0]["name"] == "report" and report["by_template"][0]["jobs"] == 2
    assert report["cpu_seconds"] == sum(u["cpu_seconds"] for u in report["by_user"])
    assert gw.api("GET", "/licenses/other-lab/usage", token=gw.bob_token).status_code == 403
    assert gw.ok("GET", "/licenses/other-lab", token=gw.bob_token)["sponsor"] == "alice"


@pytest.mark.parametrize("header", ["Bearer gw_forged-token", "Bearer ", "Token abc"])
def test_forged_tokens_are_refused(gw, header):
    assert gw.client.get("/api/v1/me", headers={"Authorization": header}).status_code == 401


def test_tokens_are_listed_and_revoked(gw):
    new = gw.ok("POST", "/tokens", 201, token=gw.alice_token, json={"name": "laptop"})
    assert gw.ok("GET", "/me", token=new["token"])["username"] == "alice"
    listed = gw.ok("GET", "/tokens", token=gw.alice_token)
    assert {t["name"] for t in listed} == {"tests", "laptop"} and all("token" not in t for t in listed)
    assert gw.api("DELETE", f"/tokens/{new['id']}", token=gw.bob_token).status_code == 404
    gw.ok("DELETE", f"/tokens/{new['id']}", token=gw.alice_token)
    assert gw.api("GET", "/me", token=new["token"]).status_code == 401
    from gateway.models import ApiToken
    assert all(len(t.token_hash) == 64 and not t.token_hash.startswith("gw_") for t in ApiToken.select())


def test_share_tokens_never_reach_the_log(gw, server):
    """A link's token is a password: gunicorn's access log shows `/shared/<token>`."""
    import urllib.request

    world(gw)
    job = gw.wait(gw.run("report")["id"])
    token = gw.ok("POST", f"/jobs/{job['id']}/share-links", 201, json={})["token"]
    for path in (f"/api/v1/shared/{token}", f"/api/v1/shared/{token}/log", f"/s/{token}"):
        with urllib.request.urlopen(f"{server}{path}", timeout=30) as r:
            assert r.status == 200
    log = (gw.base / "serve.log").read_text()
    assert token not in log and "/api/v1/shared/<token>/log" in log, log[-2000:]
