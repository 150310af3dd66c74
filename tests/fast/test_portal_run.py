"""Run Job in the portal: every problem at once next to its field in plain words, the
wizard's check, defaults pre-filled, "show advanced" kept, older versions runnable;
and what a hostile person gets from the check."""
from __future__ import annotations

import re

import pytest

from gateway.models import Job, Sweep
from tests.fast.portal_client import session

INPUTS = [
    {"name": "DC_DATA", "type": "path", "default": "raw"},
    {"name": "DC_N", "type": "integer", "default": 3},
    {"name": "DC_MODE", "type": "choice", "choices": ["fast", "exact"], "default": "fast"},
    {"name": "DC_OTHER", "type": "path", "default": "raw/a.txt", "advanced": True},
]


@pytest.fixture
def gw(fake_gw):
    fake_gw.environment()
    fake_gw.experiment()
    (fake_gw.config.data_root / "projects" / "proj" / "exp" / "raw").mkdir()
    (fake_gw.config.data_root / "projects" / "proj" / "exp" / "raw" / "a.txt").write_text("a\n")
    fake_gw.tpl = fake_gw.template(name="wiz", inputs=INPUTS, script='echo "$DC_N"\n')
    return fake_gw


def form(token, **over):
    values = {"csrf_token": token, "version": "1", "experiment": "proj/exp", "input-DC_DATA": "raw",
              "input-DC_N": "3", "input-DC_MODE": "fast", "input-DC_OTHER": "raw/a.txt",
              "machine_type": "small", "license": "test-lab", "software_disk_gb": "1",
              "time_limit_minutes": "10", "tags": "", "action": "submit"}
    values.update(over)
    return {k: v for k, v in values.items() if v is not None}


def error_next_to(page: str, field: str) -> str:
    m = re.search(rf'<span class="field-error" id="err-{re.escape(field)}"[^>]*>([^<]*)</span>', page)
    assert m, f"no error span for {field}"
    return m.group(1)


def test_defaults_are_prefilled_and_every_path_input_has_browse(gw):
    client, _ = session(gw, gw.admin)
    page = client.get(f"/templates/{gw.tpl['id']}/run").get_data(as_text=True)
    assert re.search(r'id="input-DC_DATA" name="input-DC_DATA" value="raw"', page)
    assert re.search(r'id="input-DC_OTHER" name="input-DC_OTHER" value="raw/a.txt"', page)
    assert 'data-browse="input-DC_DATA"' in page and 'data-browse="input-DC_OTHER"' in page
    # The data path is in the first step, the advanced one hidden under "show advanced".
    step1 = page[page.index('id="step-data"'):page.index('id="step-params"')]
    assert 'id="input-DC_DATA"' in step1 and "DC_OTHER" not in step1
    assert re.search(r'<div class="param advanced" hidden>\s*<label for="input-DC_OTHER"', page)


def test_all_problems_at_once_next_to_their_fields_and_nothing_submitted(gw):
    client, token = session(gw, gw.admin)
    r = client.post(f"/templates/{gw.tpl['id']}/run", data=form(
        token, **{"input-DC_N": "many", "input-DC_OTHER": "../../etc/passwd", "time_limit_minutes": "100000",
                  "license": "nope", "input-DC_DATA": "missing"}))
    assert r.status_code == 400
    page = r.get_data(as_text=True)
    assert "5 things need fixing" in page
    assert "whole number" in error_next_to(page, "inputs.DC_N")
    assert "without &#39;..&#39;" in error_next_to(page, "inputs.DC_OTHER")
    assert "does not exist" in error_next_to(page, "inputs.DC_DATA")
    assert "at most" in error_next_to(page, "time_limit_minutes")
    assert "unknown license" in error_next_to(page, "license")
    # Field names are not in the messages (the field shows whose it is).
    assert "inputs.DC_N:" not in page
    # The wizard opens at the first step with a problem; the advanced input with one is shown.
    assert 'data-step="1" novalidate' in page
    assert re.search(r'<div class="param advanced" >\s*<label for="input-DC_OTHER"', page)
    assert 'id="input-DC_N" name="input-DC_N" inputmode="numeric" value="many"' in page  # as typed
    assert Job.select().count() == 0


def test_the_wizard_check_names_each_problem_and_its_step(gw):
    client, token = session(gw, gw.admin)
    url = f"/templates/{gw.tpl['id']}/run/check"
    r = client.post(url, data=form(token, **{"input-DC_N": "x", "machine_type": "huge"}),
                    headers={"X-CSRFToken": token})
    assert r.status_code == 200
    problems = {p["field"]: p for p in r.json["problems"]}
    assert set(problems) == {"inputs.DC_N", "machine_type"}
    assert problems["inputs.DC_N"]["step"] == 2 and problems["machine_type"]["step"] == 3
    r = client.post(url, data=form(token, experiment=""), headers={"X-CSRFToken": token})
    assert [(p["field"], p["step"]) for p in r.json["problems"]] == [("experiment", 1)]
    fine = client.post(url, data=form(token), headers={"X-CSRFToken": token})
    assert fine.json == {"problems": [], "tasks": 1}
    assert Job.select().count() == 0
    # Without the CSRF token the check is refused like any other form.
    data = form(token)
    del data["csrf_token"]
    assert client.post(url, data=data).status_code == 400


def test_show_advanced_and_inputs_are_kept_across_preview(gw):
    client, token = session(gw, gw.admin)
    r = client.post(f"/templates/{gw.tpl['id']}/run",
                    data=form(token, action="preview", show_advanced="1", **{"input-DC_N": "7"}))
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "export DC_N=7" in page
    assert 'id="show-advanced" name="show_advanced" value="1" checked' in page
    assert re.search(r'<div class="param advanced" >\s*<label for="input-DC_OTHER"', page)
    assert 'data-step="3"' in page


def test_an_older_version_can_be_run_from_the_card(gw):
    gw.ok("PUT", f"/templates/{gw.tpl['id']}", json={
        "script": "echo v2\n", "environment": "base", "language": "bash",
        "inputs": [{"name": "DC_ONLY_V2", "type": "string", "default": "x"}]})
    client, token = session(gw, gw.admin)
    card = client.get(f"/templates/{gw.tpl['id']}").get_data(as_text=True)
    assert f'href="/templates/{gw.tpl["id"]}/run?version=1"' in card
    page = client.get(f"/templates/{gw.tpl['id']}/run?version=1").get_data(as_text=True)
    assert "DC_N" in page and "DC_ONLY_V2" not in page
    assert '<option value="1" selected>version 1</option>' in page
    r = client.post(f"/templates/{gw.tpl['id']}/run", data=form(token))
    assert r.status_code == 302
    assert Job.get().template_version.version == 1


def test_the_api_lists_every_problem_too(gw):
    body = {"project": "proj", "experiment": "exp", "machine_type": "huge", "license": "test-lab",
            "inputs": {"DC_N": "x", "DC_NOPE": "1"}}
    r = gw.api("POST", f"/templates/{gw.tpl['id']}/runs", json=body)
    assert r.status_code == 400
    fields = [p["field"] for p in r.json["problems"]]
    assert fields == ["inputs.DC_NOPE", "inputs.DC_N", "machine_type"]
    assert (r.json["field"], r.json["error"]) == ("inputs.DC_NOPE", r.json["problems"][0]["error"])


def test_strangers_and_viewers_get_nothing_from_the_check(gw):
    gw.ok("POST", f"/templates/{gw.tpl['id']}/access", 201, json={"user": "alice", "role": "viewer"})
    url = f"/templates/{gw.tpl['id']}/run/check"
    for person, status in ((gw.bob, 404), (gw.alice, 403)):
        client, token = session(gw, person)
        r = client.post(url, data=form(token), headers={"X-CSRFToken": token})
        assert r.status_code == status, person.username
        assert "problems" not in r.get_data(as_text=True)


def test_run_over_many_values_makes_a_sweep_and_its_page(gw):
    client, token = session(gw, gw.admin)
    url = f"/templates/{gw.tpl['id']}/run"
    many = {"many-DC_N": "1..3", "many-DC_MODE": "fast, exact"}
    csrf = {"X-CSRFToken": token}
    check = client.post(f"{url}/check", data=form(token, **many), headers=csrf)
    assert check.json == {"tasks": 6, "problems": []}
    bad = client.post(f"{url}/check", data=form(token, **{"many-DC_DATA": "../*"}), headers=csrf)
    assert [(p["field"], p["step"]) for p in bad.json["problems"]] == [("inputs.DC_DATA", 1)]
    preview = client.post(url, data=form(token, action="preview", **{"many-DC_N": "4, 5"}))
    assert preview.status_code == 200
    page = preview.get_data(as_text=True)
    assert "of the first of 2 tasks" in page and "export DC_N=4" in page
    assert 'id="many-DC_N" name="many-DC_N" value="4, 5"' in page  # kept for the next try
    r = client.post(url, data=form(token, throttle="2", **many))
    assert r.status_code == 302 and "/sweeps/" in r.headers["Location"]
    sweep = Sweep.get()
    assert sweep.throttle == 2 and Job.select().where(Job.sweep == sweep).count() == 6
    # Its page: the tasks with their inputs; a job's OUT_ value is shown as text.
    hostile = {"OUT_X": "<img src=x onerror=alert(1)>"}
    Job.update(output_variables=hostile).where(Job.array_task == 0).execute()
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert page.count('<tr data-job="') == 6 and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page
    live = client.get(f"/sweeps/{sweep.id}/live").json
    assert live["counts"]["Pending"] == 6 and not live["finished"]
    # Somebody who may not see its jobs gets nothing of it.
    bob, _ = session(gw, gw.bob)
    assert bob.get(f"/sweeps/{sweep.id}").status_code == 404
    assert bob.get(f"/sweeps/{sweep.id}/live").status_code == 404
