"""Job Details, on FakeSlurm: facts that follow a running job, why a pending job waits and
when Slurm expects it to start, cancel with confirmation and the canceller's name, tags
renamed, comments not marked edited when new; Viewers of the data see jobs read-only
and never their comments; a licence's config-named sponsor and members in its access
list; every date the API gives in ISO 8601; the licence chart's axes."""
from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest

from gateway import job_reasons
from gateway.db import database, utcnow
from gateway.models import ALL_MODELS, Comment, Job
from gateway.web.portal.views_licenses import axis_top, usage_chart
from tests.fast.portal_client import get_page, session

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SECRET = "the-admins-private-remark"


@pytest.fixture
def gw(fake_gw_ready):
    return fake_gw_ready


def _sid(gw, job) -> str:
    return gw.ok("GET", f"/jobs/{job['id']}")["slurm_job_id"]


def _page(client, path: str, expect: int = 200) -> str:
    return html.unescape(get_page(client, path, expect))


def _act(client, token, job_id, **form):
    return client.post(f"/jobs/{job_id}/act", data={"csrf_token": token, **form})


# --- live facts -------------------------------------------------------------------------

def test_a_running_jobs_usage_and_times_follow_it_live(gw):
    job = gw.run("tpl", machine_type="double")
    sid = job["slurm_job_id"]
    client, _ = session(gw, gw.admin)
    gw.tick()
    live = client.get(f"/jobs/{job['id']}/live").json
    assert live["status"] == "Pending" and live["started"] == "—" and live["cpu_hours"] == "0.0000"
    started = utcnow().replace(microsecond=0) - timedelta(minutes=30)
    gw.slurm.start(sid, at=started)
    gw.slurm.jobs[sid].elapsed = 1800  # accounting's ElapsedRaw grows while it runs
    gw.tick()
    live = client.get(f"/jobs/{job['id']}/live").json
    assert live["status"] == "Running" and live["started"] == started.strftime("%Y-%m-%d %H:%M UTC")
    assert live["cpu_hours"] == "1.0000" and live["gpu_hours"] == "0.0000" and live["ended"] == "—"
    assert live["expected_start"] == "" and live["slurm"] == f"{sid} RUNNING"
    # The page itself starts from the same values, in the places the script refreshes.
    page = _page(client, f"/jobs/{job['id']}")
    assert '<span id="job-cpu">1.0000</span>' in page and f"/jobs/{job['id']}/live" in page
    api = gw.ok("GET", f"/jobs/{job['id']}")
    assert api["cpu_hours"] == 1.0 and api["started_at"] == started.isoformat() + "Z"
    gw.slurm.finish(sid, elapsed=2400)
    gw.tick()
    live = client.get(f"/jobs/{job['id']}/live").json
    assert live["finalized"] and live["status"] == "Completed" and live["ended"] != "—"
    assert live["cpu_hours"] == "1.3333" and live["exit_code"] == 0


def test_the_live_endpoint_shows_nothing_to_who_may_not_see_the_job(gw):
    job = gw.run("tpl")
    client, _ = session(gw, gw.bob)
    assert client.get(f"/jobs/{job['id']}/live").status_code == 404
    assert client.get("/jobs/999999/live").status_code == 404


# --- why a pending job waits, and when it should start -----------------------------------

@pytest.mark.parametrize("code,words", [
    ("Priority", "other jobs are ahead of it in the queue"),
    ("Resources", "not enough CPUs, memory or GPUs are free yet"),
    ("ReqNodeNotAvail, UnavailableNodes:node1", "the nodes it needs are down, drained or reserved"),
    ("NodeDown", "a node it needs is down"),
    ("AssocGrpCPUMinutesLimit", "the licence's budget is used up"),
    ("AssocGrpGRESMinutes", "the licence's budget is used up"),
    ("AssocGrpCpuLimit", "the licence's jobs already use all it may use at once"),
    ("AssocMaxJobsLimit", "you already run as much as you may at once"),
    ("QOSMaxWallDurationPerJobLimit", "it asks for more than one job may use"),
    ("JobHeldUser", "held by the person who ran it"),
    ("JobHeldAdmin", "held by an administrator"),
    ("SomethingNew", "Slurm says SomethingNew"),
])
def test_pending_reasons_in_plain_words(code, words):
    assert job_reasons.pending_words(code).startswith(words)


def test_a_pending_job_says_why_and_when_slurm_expects_it_to_start(gw):
    job = gw.run("tpl")
    sid = job["slurm_job_id"]
    fake = gw.slurm.jobs[sid]
    fake.reason = "AssocGrpCPUMinutesLimit"
    fake.expected_start = utcnow().replace(microsecond=0) + timedelta(hours=2)
    gw.tick()  # first seen: squeue is asked for its estimate
    api = gw.ok("GET", f"/jobs/{job['id']}")
    assert api["reason"] == ("waiting: the licence's budget is used up: it starts once the sponsor's "
                             "budget is raised (Slurm: AssocGrpCPUMinutesLimit)")
    assert api["expected_start_at"] == fake.expected_start.isoformat() + "Z"
    client, _ = session(gw, gw.admin)
    live = client.get(f"/jobs/{job['id']}/live").json
    assert live["reason"] == api["reason"]
    assert live["expected_start"] == ("Slurm expects it to start around "
                                      f"{fake.expected_start.strftime('%Y-%m-%d %H:%M')} UTC.")
    assert live["expected_start"] in _page(client, f"/jobs/{job['id']}")
    # Between refreshes the poller does not ask again; at the next one Slurm's new view wins.
    fake.expected_start, fake.reason = None, "JobHeldUser"
    assert gw.tick().slurm_calls == 1
    gw.ctx.queue_memory.refreshed = 0.0
    assert gw.tick().slurm_calls == 2
    api = gw.ok("GET", f"/jobs/{job['id']}")
    assert api["expected_start_at"] is None and "JobHeldUser" in api["reason"]
    assert client.get(f"/jobs/{job['id']}/live").json["expected_start"] == \
        "It has no expected start while it is held."
    gw.slurm.start(sid)
    gw.tick()
    assert gw.ok("GET", f"/jobs/{job['id']}")["expected_start_at"] is None


def test_a_job_slurm_has_not_looked_at_says_so(gw):
    job = gw.run("tpl")
    gw.tick()
    client, _ = session(gw, gw.admin)
    live = client.get(f"/jobs/{job['id']}/live").json
    assert live["reason"].startswith("waiting: other jobs are ahead of it")
    assert live["expected_start"] == "Slurm has not estimated when it will start yet."


# --- cancel: confirmed first, and who did it by name -------------------------------------

def test_cancel_asks_for_confirmation_and_says_who_cancelled(gw):
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "alice", "role": "manager"})
    job = gw.run("tpl")  # the admin's job; alice manages its data
    sid = job["slurm_job_id"]
    client, token = session(gw, gw.alice)
    page = _page(client, f"/jobs/{job['id']}")
    assert 'id="cancel-dialog"' in page and 'data-confirm="cancel-dialog"' in page
    assert '<dialog id="cancel-dialog" class="confirm" aria-labelledby="cancel-title" ' \
           'aria-describedby="cancel-what">' in page  # closed until asked
    # Not confirmed: nothing happens; the page asks, with the dialog open.
    r = _act(client, token, job["id"], action="cancel")
    assert r.status_code == 302 and "confirm=cancel" in r.headers["Location"]
    assert sid not in gw.slurm.cancelled_by
    assert 'aria-describedby="cancel-what" open>' in _page(client, f"/jobs/{job['id']}?confirm=cancel")
    r = _act(client, token, job["id"], action="cancel", confirmed="yes")
    assert r.status_code == 302 and sid in gw.slurm.cancelled_by
    gw.tick()
    api = gw.ok("GET", f"/jobs/{job['id']}")
    # Slurm says "CANCELLED by 0" (the uid scancel ran as); the gateway knows who asked.
    assert gw.slurm.jobs[sid].state == "CANCELLED by 0"
    assert api["status"] == "Failed" and api["reason"] == "cancelled by alice"
    assert api["cancelled_by"] == "alice"
    live = client.get(f"/jobs/{job['id']}/live").json
    assert live["reason"] == "cancelled by alice"
    page = _page(client, f"/jobs/{job['id']}")
    assert "cancelled by alice" in page and 'id="cancel-dialog"' not in page


def test_a_cancel_outside_the_gateway_is_named_by_its_unix_user(gw):
    job = gw.run("tpl")
    sid = job["slurm_job_id"]
    gw.slurm.start(sid)
    gw.slurm.finish(sid, elapsed=5, state="CANCELLED by 0", signal=15)
    gw.tick()
    api = gw.ok("GET", f"/jobs/{job['id']}")
    assert api["reason"] == "cancelled by root" and api["cancelled_by"] == "root"


# --- tags and comments ------------------------------------------------------------------

def test_tags_are_added_renamed_and_removed_in_the_portal(gw):
    job = gw.run("tpl")
    gw.slurm.start(job["slurm_job_id"])
    gw.tick()
    client, token = session(gw, gw.admin)
    _act(client, token, job["id"], action="add_tag", name="reference")
    page = _page(client, f"/jobs/{job['id']}")
    # The × is inside its chip (it submits the one delete form by its name and value).
    chip = re.search(r'<span class="tag"><span class="tag-name">reference</span>.*?</span>', page, re.S)[0]
    assert 'form="tag-delete"' in chip and ">×</button>" in chip
    assert 'aria-label="Rename tag reference"' in chip
    assert 'id="tag-rename"' in page
    _act(client, token, job["id"], action="rename_tag", old="reference", name="baseline")
    assert gw.ok("GET", f"/jobs/{job['id']}/tags") == ["baseline"]
    assert gw.ok("PUT", f"/jobs/{job['id']}/tags/baseline", json={"name": "gold"}) == {"tags": ["gold"]}
    _act(client, token, job["id"], action="delete_tag", name="gold")
    assert gw.ok("GET", f"/jobs/{job['id']}/tags") == []


def test_a_new_comment_is_not_marked_edited(gw):
    job = gw.run("tpl")
    client, token = session(gw, gw.admin)
    c = gw.ok("POST", f"/jobs/{job['id']}/comments", 201, json={"body": "first"})
    assert c["edited"] is False and c["created_at"] == c["updated_at"]
    assert "· edited" not in _page(client, f"/jobs/{job['id']}")
    # A comment stored before both times were set at once (microseconds apart) is not either.
    row = Comment.get_by_id(c["id"])
    Comment.update(updated_at=row.created_at + timedelta(microseconds=300)).execute()
    assert "· edited" not in _page(client, f"/jobs/{job['id']}")
    Comment.update(created_at=utcnow() - timedelta(minutes=5)).execute()
    edited = gw.ok("PUT", f"/jobs/{job['id']}/comments/{c['id']}", json={"body": "second"})
    assert edited["edited"] is True
    assert "· edited" in _page(client, f"/jobs/{job['id']}")


# --- Viewers: read-only, and never a comment --------------------------------------------

@pytest.mark.parametrize("place", ["project", "experiment"])
def test_a_viewer_sees_the_job_read_only_and_no_comment_anywhere(gw, place):
    job = gw.run("tpl")
    sid = job["slurm_job_id"]
    gw.ok("POST", f"/jobs/{job['id']}/tags", 201, json={"name": "reference"})  # who ran it, before start
    gw.slurm.start(sid)
    gw.tick()
    comment = gw.ok("POST", f"/jobs/{job['id']}/comments", 201, json={"body": SECRET})
    (gw.base / "jobs" / str(job["id"]) / "output").mkdir(parents=True, exist_ok=True)
    (gw.base / "jobs" / str(job["id"]) / "output" / "result.txt").write_text("42\n")
    gw.slurm.finish(sid, elapsed=30)
    gw.tick()
    path = "/projects/proj" if place == "project" else "/projects/proj/experiments/exp"
    gw.ok("POST", f"{path}/access", 201, json={"user": "alice", "role": "viewer"})
    t, base = gw.alice_token, f"/jobs/{job['id']}"
    answers = []

    def ask(method, url, expect, **kw):
        r = gw.api(method, url, token=t, **kw)
        assert r.status_code == expect, (method, url, r.status_code, r.get_data(as_text=True)[:300])
        answers.append(r.get_data(as_text=True))
        return r

    # What a Viewer sees: the job, in the list, its inputs, outputs, log and tags.
    shown = ask("GET", base, 200).json
    assert shown["status"] == "Completed" and shown["tags"] == ["reference"]
    assert shown["output_files"] == [{"path": "result.txt", "size": 3}]
    assert job["id"] in {j["id"] for j in ask("GET", "/jobs?per_page=500", 200).json["jobs"]}
    assert ask("GET", f"{base}/tags", 200).json == ["reference"]
    assert ask("GET", f"{base}/files/result.txt", 200).get_data() == b"42\n"
    ask("GET", f"{base}/log", 200)
    # What a Viewer may not: comments (read or write), tags, cancel, share.
    ask("GET", f"{base}/comments", 403)
    ask("POST", f"{base}/comments", 403, json={"body": "mine"})
    ask("PUT", f"{base}/comments/{comment['id']}", 403, json={"body": "changed"})
    ask("DELETE", f"{base}/comments/{comment['id']}", 403)
    ask("PUT", f"{base}/comments/999999", 403, json={"body": "probe"})
    ask("POST", f"{base}/tags", 403, json={"name": "mine"})
    ask("PUT", f"{base}/tags/reference", 403, json={"name": "renamed"})
    ask("DELETE", f"{base}/tags/reference", 403)
    ask("GET", f"{base}/share-links", 403)
    ask("POST", f"{base}/share-links", 403, json={})
    ask("POST", f"{base}/cancel", 403)
    ask("GET", f"{base}/script", 403)  # the template's configuration is not hers
    # The portal: the job and its tags, no comment, nothing to change.
    client, token = session(gw, gw.alice)
    page = _page(client, base)
    assert "reference" in page and "result.txt" in page and 'id="read-only"' in page
    for offered in ('value="add_tag"', 'value="rename_tag"', 'value="delete_tag"', 'value="add_comment"',
                    'value="cancel"', 'value="share"', 'id="comments"'):
        assert offered not in page, offered
    answers += [page, _page(client, f"{base}/live"), _page(client, "/jobs?scope=all")]
    for action in ("add_comment", "edit_comment", "delete_comment", "add_tag", "cancel"):
        r = _act(client, token, job["id"], action=action, confirmed="yes", comment=str(comment["id"]),
                 body="x", name="x")
        answers.append(_page(client, r.headers["Location"]))
        assert "Not done" in answers[-1], action
    assert all(SECRET not in a for a in answers)
    assert gw.ok("GET", f"{base}/comments")[0]["body"] == SECRET  # untouched
    assert gw.ok("GET", f"{base}/tags") == ["reference"]


# --- licences: the config's sponsor and members in the access list ----------------------

def test_a_licences_access_list_shows_its_config_and_its_grants(gw):
    rows = gw.ok("GET", "/licenses/other-lab/access")
    assert {"user": "alice", "team": None, "role": "owner", "source": "config"} in rows
    assert {"user": None, "team": "bio-team", "role": "member", "source": "config"} in rows
    # The sponsor grants and revokes; the config's entries are not the API's to revoke.
    gw.ok("POST", "/licenses/other-lab/access", 201, token=gw.alice_token,
          json={"user": "bob", "role": "member"})
    rows = gw.ok("GET", "/licenses/other-lab/access", token=gw.bob_token)
    assert any(r["user"] == "bob" and r["source"] == "grant" and ISO.match(r["created_at"]) for r in rows)
    for who, field in (({"user": "alice"}, "user"), ({"team": "bio-team"}, "team")):
        r = gw.api("DELETE", "/licenses/other-lab/access", token=gw.alice_token, json=who)
        assert r.status_code == 409 and r.json["field"] == field, r.json
        assert "site configuration" in r.json["error"] and "cannot be revoked here" in r.json["error"]
    r = gw.api("DELETE", "/licenses/other-lab/access", token=gw.alice_token, json={"user": "nobody"})
    assert r.status_code == 400 and r.json["field"] == "user"  # named nowhere: unknown
    assert gw.api("POST", "/licenses/other-lab/access", token=gw.bob_token,
                  json={"user": "admin", "role": "member"}).status_code == 403  # a member manages nothing
    gw.ok("DELETE", "/licenses/other-lab/access", token=gw.alice_token, json={"user": "bob"})
    assert gw.api("GET", "/licenses/other-lab/access", token=gw.bob_token).status_code == 404


def test_the_sponsor_manages_members_from_the_licence_page(gw):
    client, token = session(gw, gw.alice)
    page = _page(client, "/licenses/other-lab")
    assert 'id="grant-form"' in page and "site configuration" in page
    r = client.post("/licenses/other-lab/access", data={"csrf_token": token, "action": "grant",
                                                         "user": "bob", "role": "member"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/licenses/other-lab#access")
    assert any(r["user"] == "bob" for r in gw.ok("GET", "/licenses/other-lab/access"))
    page = _page(client, "/licenses/other-lab")
    assert 'name="user" value="bob"' in page and 'name="user" value="alice"' not in page  # config: no Remove
    client.post("/licenses/other-lab/access", data={"csrf_token": token, "action": "revoke", "user": "bob"})
    assert not any(r["user"] == "bob" for r in gw.ok("GET", "/licenses/other-lab/access"))
    # A member sees the list, without the form.
    gw.ok("POST", "/licenses/other-lab/access", 201, token=gw.alice_token,
          json={"user": "bob", "role": "member"})
    bob, bob_token = session(gw, gw.bob)
    page = _page(bob, "/licenses/other-lab")
    assert 'id="access-table"' in page and 'id="grant-form"' not in page
    r = bob.post("/licenses/other-lab/access", data={"csrf_token": bob_token, "action": "grant",
                                                      "user": "admin", "role": "member"})
    assert "Not changed" in _page(bob, r.headers["Location"])


# --- the licence chart ------------------------------------------------------------------

def test_the_usage_axis_is_round_and_sensible_at_zero():
    assert [axis_top(p) for p in (0, 0.0003, 0.3, 1, 1.2, 2.2, 7, 40)] == [1, 0.0005, 0.5, 1, 2, 2.5, 10, 50]
    empty = usage_chart([])
    assert empty["empty"] and len(empty["bars"]) == 30
    assert [t["label"] for t in empty["ticks"]] == ["0 h", "0.2 h", "0.4 h", "0.6 h", "0.8 h", "1 h"]
    assert all(b["cpu_h"] == 0 and b["gpu_h"] == 0 for b in empty["bars"])
    today = utcnow().date().isoformat()
    used = usage_chart([{"day": today, "jobs": 2, "cpu_hours": 1.5, "gpu_hours": 0.5}])
    last = used["bars"][-1]
    assert used["ticks"][-1]["label"] == "2 h" and last["day"] == today and last["label"] == today
    assert last["cpu_h"] + last["gpu_h"] == pytest.approx(used["bottom"] - used["top"])


def test_the_licence_page_with_no_usage(gw):
    client, _ = session(gw, gw.alice)
    page = _page(client, "/licenses/other-lab")
    assert 'id="no-usage"' in page and "e-0" not in page and ">1 h</text>" in page


# --- dates, and the schema the migrations make --------------------------------------------

def _dates(value, where=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _dates(v, f"{where}.{k}") if isinstance(v, dict | list) else \
                ([(f"{where}.{k}", v)] if k.endswith("_at") or k == "day" else [])
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _dates(v, f"{where}[{i}]")


def test_every_date_the_api_gives_is_iso_8601(gw):
    job = gw.run("tpl", tags=["t"])
    gw.slurm.start(job["slurm_job_id"])
    gw.slurm.finish(job["slurm_job_id"], elapsed=30)
    gw.tick()
    gw.ok("POST", f"/jobs/{job['id']}/comments", 201, json={"body": "x"})
    gw.ok("POST", f"/jobs/{job['id']}/share-links", 201, json={"expires_in_hours": 2})
    gw.ok("POST", "/projects/proj/access", 201, json={"user": "alice", "role": "viewer"})
    found = []
    base = f"/jobs/{job['id']}"
    for path in ("/jobs", base, f"{base}/comments", f"{base}/share-links", "/templates", "/templates/tpl",
                 "/environments", "/projects", "/projects/proj/experiments",
                 "/projects/proj/access", "/licenses/test-lab/usage", "/licenses/other-lab/access", "/tokens",
                 "/licenses", "/teams", "/me"):
        body = gw.ok("GET", path)
        found += list(_dates(body, path))
        # No date slipped through as Flask writes a datetime (RFC 822: "Thu, 26 Nov 2026 ...").
        assert not re.search(r"\b[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4}", json.dumps(body)), path
    assert len([v for _, v in found if v]) > 15, found
    for where, value in found:
        assert value is None or ISO.match(value) or (where.endswith(".day") and
                                                     re.match(r"^\d{4}-\d{2}-\d{2}$", value)), (where, value)


def test_the_migrations_make_every_column_the_models_have(gw):
    for model in ALL_MODELS:
        table = model._meta.table_name
        columns = {c.name for c in database.get_columns(table)}
        assert {f.column_name for f in model._meta.sorted_fields} <= columns, table
    assert Job.select().where(Job.expected_start_at.is_null()).count() >= 0
