"""Licence budgets on a FakeSlurm: the API, the refusal before submit, the drift check
and the start of a period. The real thing (Slurm holding a plain sbatch job for the
budget) is tests/integration/test_budgets_on_slurm.py.

"tiny-lab" (tests/conftest.py) has 1 CPU hour a month on account test_budget, sponsor
alice (who may set up to 5 hours), member bob."""
from datetime import UTC, datetime

import pytest

from gateway import budgets
from gateway.models import LicenseBudget


def run_body(machine_type="small", minutes=30, license="tiny-lab", **extra):
    return {"project": "proj", "experiment": "exp", "machine_type": machine_type, "license": license,
            "software_disk_gb": 1, "time_limit_minutes": minutes, "inputs": {}, **extra}


def test_the_licence_list_shows_budget_and_what_is_left(fake_gw):
    fake_gw.slurm.set_account_limits("test_budget", 60, None)
    fake_gw.slurm.use("test_budget", cpu_minutes=15, running_cpu_minutes=6)
    lics = {lic["name"]: lic for lic in fake_gw.ok("GET", "/licenses")}
    tiny = lics["tiny-lab"]
    assert tiny["budget"]["cpu_hours"] == 1.0 and tiny["budget"]["gpu_hours"] is None
    assert tiny["budget"]["period"] == "month" and tiny["budget"]["source"] == "config"
    assert tiny["budget"]["period_start"] == datetime.now(UTC).strftime("%Y-%m-01T00:00:00Z")
    assert tiny["budget"]["used"]["cpu_hours"] == 0.25 and tiny["budget"]["used"]["running_cpu_hours"] == 0.1
    assert tiny["remaining"] == {"cpu_hours": 0.65, "gpu_hours": None}
    # A licence without limits shows none, and nothing is left to count.
    assert lics["test-lab"]["budget"]["cpu_hours"] is None and lics["test-lab"]["remaining"] is None


def test_no_slurm_call_for_licences_without_limits(fake_gw):
    from dataclasses import replace

    cfg = fake_gw.ctx.config
    no_budget = {n: replace(lic, budget=replace(lic.budget, cpu_hours=None))
                 for n, lic in cfg.licenses.items()}
    object.__setattr__(cfg, "licenses", no_budget)
    before = fake_gw.slurm.calls
    fake_gw.ok("GET", "/licenses")
    assert fake_gw.slurm.calls == before


def test_slurm_down_still_lists_licences_with_usage_unknown(fake_gw):
    fake_gw.slurm.down()
    tiny = next(lic for lic in fake_gw.ok("GET", "/licenses") if lic["name"] == "tiny-lab")
    assert tiny["remaining"] is None and "Slurm is unavailable" in tiny["budget"]["usage_error"]


def test_the_sponsor_sets_the_budget_within_the_sites_limit(fake_gw):
    r = fake_gw.ok("PUT", "/licenses/tiny-lab/budget", token=fake_gw.alice_token,
                   json={"cpu_hours": 4.5, "gpu_hours": 0, "period": "quarter", "soft_percent": 90})
    assert (r["cpu_hours"], r["gpu_hours"], r["period"], r["soft_percent"]) == (4.5, 0.0, "quarter", 90)
    assert r["source"] == "api" and r["set_by"] == "alice"
    # Slurm holds it: GrpTRESMins in minutes.
    assert fake_gw.slurm.usage_["test_budget"][:2] == [270, 0]
    assert fake_gw.ok("GET", "/licenses/tiny-lab/budget")["cpu_hours"] == 4.5
    # Above what the site lets a sponsor set, or no limit at all: refused, nothing changed.
    for cpu in (6, None):
        r = fake_gw.api("PUT", "/licenses/tiny-lab/budget", token=fake_gw.alice_token,
                        json={"cpu_hours": cpu})
        assert r.status_code == 400 and r.json["field"] == "cpu_hours"
        assert "at most 5.0000 hours" in r.json["error"] and "administrator" in r.json["error"]
    assert fake_gw.slurm.usage_["test_budget"][:2] == [270, 0]
    # An admin may set any, no limit included.
    r = fake_gw.ok("PUT", "/licenses/tiny-lab/budget", json={"cpu_hours": None, "gpu_hours": None})
    assert r["cpu_hours"] is None and fake_gw.slurm.usage_["test_budget"][:2] == [None, None]


def test_members_and_strangers_may_not_set_a_budget(fake_gw):
    r = fake_gw.api("PUT", "/licenses/tiny-lab/budget", token=fake_gw.bob_token, json={"cpu_hours": 2})
    assert r.status_code == 403
    # other-lab's sponsor is alice; bob is not a member of it either: he does not see it.
    r = fake_gw.api("PUT", "/licenses/other-lab/budget", token=fake_gw.bob_token, json={"cpu_hours": 2})
    assert r.status_code == 404
    assert LicenseBudget.select().count() == 0


def test_every_wrong_field_is_named_at_once(fake_gw):
    r = fake_gw.api("PUT", "/licenses/tiny-lab/budget", token=fake_gw.alice_token,
                    json={"cpu_hours": -1, "gpu_hours": "lots", "period": "week", "soft_percent": 0,
                          "colour": "red"})
    assert r.status_code == 400
    assert {p["field"] for p in r.json["problems"]} == {"cpu_hours", "gpu_hours", "period", "soft_percent",
                                                       "colour"}
    assert fake_gw.slurm.usage_.get("test_budget", [None, None])[:2] == [None, None]


def test_slurm_down_changes_nothing(fake_gw):
    fake_gw.slurm.down()
    r = fake_gw.api("PUT", "/licenses/tiny-lab/budget", token=fake_gw.alice_token, json={"cpu_hours": 2})
    assert r.status_code == 503 and "Slurm is unavailable" in r.json["error"]
    assert LicenseBudget.select().count() == 0


def test_a_run_that_could_pass_the_budget_is_refused_with_the_numbers(fake_gw_ready):
    gw = fake_gw_ready
    gw.slurm.use("test_budget", cpu_minutes=20, running_cpu_minutes=10)
    # 1 CPU x 30 min fits in the 30 minutes left; 2 CPUs x 30 min does not.
    gw.run("tpl", machine_type="small", license="tiny-lab", time_limit_minutes=30)
    before = len(gw.slurm.submitted)
    r = gw.api("POST", "/templates/tpl/runs", json=run_body("double", 30))
    assert r.status_code == 400 and r.json["field"] == "license"
    assert r.json["error"] == (
        "this run may use up to 1.0000 CPU hours (2 CPUs for 30 minutes), but licence 'tiny-lab' has "
        "0.5000 of its 1.0000 CPU hours left this month (0.3333 used, 0.1667 held by running jobs): "
        "choose a smaller machine type or time limit, or ask the sponsor to raise the budget")
    assert len(gw.slurm.submitted) == before
    # Another licence is not this one's budget.
    gw.run("tpl", machine_type="double", license="test-lab", time_limit_minutes=30)


def test_a_sweep_counts_every_task(fake_gw_ready):
    gw = fake_gw_ready
    gw.template(name="swept", inputs=[{"name": "DC_N", "type": "integer", "default": 1}])
    body = run_body("small", 20, inputs={"DC_N": {"values": [1, 2, 3, 4]}})
    r = gw.api("POST", "/templates/swept/sweeps", json=body)
    assert r.status_code == 400 and r.json["field"] == "license"
    assert "(1 CPU for 20 minutes, in each of 4 tasks)" in r.json["error"]
    body["inputs"] = {"DC_N": {"values": [1, 2, 3]}}
    assert gw.api("POST", "/templates/swept/sweeps", json=body).status_code == 201


def test_drift_is_found_and_fixed(fake_gw):
    ctx = fake_gw.ctx
    assert budgets.drift(ctx) == ["licenses[tiny-lab].budget: Slurm account 'test_budget' has GrpTRESMins "
                                  "cpu=none, gres/gpu=none; the budget says cpu=60 min, gres/gpu=none"]
    assert budgets.drift(ctx, fix=True)
    assert budgets.drift(ctx) == []
    fake_gw.slurm.set_account_limits("test_budget", 600, 5)  # changed by hand in Slurm
    assert len(budgets.drift(ctx)) == 1


def test_a_new_period_starts_the_count_again(fake_gw):
    ctx, slurm = fake_gw.ctx, fake_gw.slurm
    slurm.use("test_budget", cpu_minutes=50)
    assert budgets.start_periods(ctx, datetime(2026, 11, 3)) == ["tiny-lab"]
    assert slurm.usage_["test_budget"][2] == 0
    slurm.use("test_budget", cpu_minutes=40)
    assert budgets.start_periods(ctx, datetime(2026, 11, 30, 23, 59)) == []
    assert slurm.usage_["test_budget"][2] == 40
    assert budgets.start_periods(ctx, datetime(2026, 12, 1, 0, 5)) == ["tiny-lab"]
    assert slurm.usage_["test_budget"][2] == 0
    # Licences without limits are left alone.
    assert slurm.usage_.get("test_lab") is None


@pytest.mark.parametrize("period, now, start", [
    ("month", datetime(2026, 2, 28, 13), datetime(2026, 2, 1)),
    ("quarter", datetime(2026, 6, 30), datetime(2026, 4, 1)),
    ("quarter", datetime(2026, 10, 1), datetime(2026, 10, 1)),
    ("year", datetime(2026, 11, 26), datetime(2026, 1, 1)),
    ("none", datetime(2026, 11, 26), None),
])
def test_period_start(period, now, start):
    assert budgets.period_start(period, now) == start


def test_the_licence_page_shows_the_budget_and_the_sponsor_changes_it(fake_gw):
    from tests.fast.portal_client import get_page, post, session

    fake_gw.slurm.use("test_budget", cpu_minutes=51)
    client, token = session(fake_gw, fake_gw.alice)
    page = get_page(client, "/licenses/tiny-lab")
    assert 'id="budget-form"' in page and "Over 80 % used." in page
    assert "0.1500 CPU h" in page  # left of the hour
    listing = get_page(client, "/licenses")
    assert "0.1500 of 1.0000 CPU h" in listing and "no budget" in listing
    # Every problem next to its field; nothing changed.
    r = post(client, token, "/licenses/tiny-lab/budget",
             {"cpu_hours": "9", "gpu_hours": "many", "period": "month", "soft_percent": "80"}, expect=400)
    text = r.get_data(as_text=True)
    assert 'id="err-cpu_hours"' in text and "at most 5.0000 hours" in text and 'id="err-gpu_hours"' in text
    assert fake_gw.slurm.usage_["test_budget"][0] is None
    post(client, token, "/licenses/tiny-lab/budget",
         {"cpu_hours": "2", "gpu_hours": "", "period": "quarter", "soft_percent": "90"})
    assert fake_gw.slurm.usage_["test_budget"][:2] == [120, None]
    page = get_page(client, "/licenses/tiny-lab")
    assert "Per quarter" in page and "Over 80 % used." not in page
    # A member sees the budget but no form, and may not post one.
    bob, bob_token = session(fake_gw, fake_gw.bob)
    page = get_page(bob, "/licenses/tiny-lab")
    assert 'id="budget-table"' in page and 'id="budget-form"' not in page
    post(bob, bob_token, "/licenses/tiny-lab/budget", {"cpu_hours": "5", "period": "month",
                                                       "soft_percent": "80"}, expect=403)
    assert fake_gw.slurm.usage_["test_budget"][:2] == [120, None]


def test_the_command_line_says_a_budget_in_a_line():
    from gateway.client.commands import budget_line

    assert budget_line({"cpu_hours": None, "gpu_hours": None, "period": "month"}) == "none"
    assert budget_line({"cpu_hours": 10.0, "gpu_hours": 2.0, "period": "quarter",
                        "remaining": {"cpu_hours": 2.5, "gpu_hours": 0.0}}) == (
        "2.5000 of 10.0000 CPU h left, 0.0000 of 2.0000 GPU h left this quarter")
    assert budget_line({"cpu_hours": 1.0, "gpu_hours": None, "period": "none", "remaining": None,
                        "usage_error": "scontrol: Slurm is unavailable"}) == (
        "unknown of 1.0000 CPU h left (scontrol: Slurm is unavailable)")


def test_a_preview_shows_the_cost_what_is_left_and_when_it_may_start(fake_gw_ready):
    gw = fake_gw_ready
    gw.slurm.use("test_budget", cpu_minutes=20)
    gw.slurm.start_estimate = datetime(2026, 11, 27, 3, 0)
    p = gw.ok("POST", "/templates/tpl/preview", json=run_body("double", 30))
    assert p["script"].startswith("#!/bin/bash")
    assert p["cost"] == {"cpu_hours": 1.0, "gpu_hours": 0.0, "worst_case": "2 CPUs for 30 minutes",
                         "license": "tiny-lab", "left_after": {"cpu_hours": -0.333333, "gpu_hours": None},
                         "fits": False, "period": "month"}
    assert p["start_estimate"] == {"at": "2026-11-27T03:00:00Z",
                                   "source": "sbatch --test-only (an estimate by Slurm)"}
    # Slurm was asked about the script the preview shows, as the person it would run as;
    # nothing was queued.
    assert gw.slurm.tested[-1].script == p["script"] and not gw.slurm.submitted
    # Without a budget: the cost alone. A sweep: every task counted.
    p = gw.ok("POST", "/templates/tpl/preview", json=run_body("small", 10, license="test-lab"))
    assert p["cost"]["cpu_hours"] == round(10 / 60, 6) and p["cost"]["left_after"] is None
    gw.template(name="swept", inputs=[{"name": "DC_N", "type": "integer", "default": 1}])
    p = gw.ok("POST", "/templates/swept/preview",
              json=run_body("small", 10, inputs={"DC_N": {"values": [1, 2, 3]}}))
    assert p["tasks"] == 3 and p["cost"]["cpu_hours"] == 0.5 and p["cost"]["fits"] is True
    assert p["cost"]["left_after"]["cpu_hours"] == round((60 - 20 - 30) / 60, 6)


def test_a_preview_without_slurm_still_shows_the_script_and_the_cost(fake_gw_ready):
    gw = fake_gw_ready
    gw.slurm.down()
    p = gw.ok("POST", "/templates/tpl/preview", json=run_body("small", 30, license="test-lab"))
    assert p["cost"]["cpu_hours"] == 0.5 and p["start_estimate"]["at"] is None
    assert "Slurm is unavailable" in p["start_estimate"]["error"]
    p = gw.ok("POST", "/templates/tpl/preview", json=run_body("small", 30))
    assert "Slurm is unavailable" in p["cost"]["usage_error"]


def test_the_run_form_shows_the_estimate_before_submit(fake_gw_ready):
    from tests.fast.portal_client import session

    gw = fake_gw_ready
    gw.slurm.use("test_budget", cpu_minutes=50)
    client, token = session(gw, gw.admin)
    tpl_id = gw.ok("GET", "/templates/tpl")["id"]
    r = client.post(f"/templates/{tpl_id}/run", data={
        "csrf_token": token, "action": "preview", "experiment": "proj/exp", "machine_type": "double",
        "license": "tiny-lab", "software_disk_gb": "1", "time_limit_minutes": "30"})
    page = r.get_data(as_text=True)
    assert r.status_code == 200, page[:500]
    assert "At most <strong>1.0000 CPU h</strong> (2 CPUs for 30 minutes), charged to tiny-lab" in page
    assert ("This run would be refused: it may use 0.8333 CPU h more than the licence's budget has left "
            "this month.") in page
    assert 'id="start-estimate">Slurm expects it could start at' in page


def test_the_command_line_shows_a_previews_cost_and_start():
    from gateway.client.commands import estimate_lines

    cost = {"cpu_hours": 1.0, "gpu_hours": 0.5, "worst_case": "2 CPUs and 1 GPU for 30 minutes",
            "license": "lab", "left_after": {"cpu_hours": 2.0, "gpu_hours": None}, "fits": True}
    assert estimate_lines({"cost": cost, "start_estimate": {"at": "2026-11-27T03:00:00Z"}}) == [
        "at most 1.0000 CPU h and 0.5000 GPU h (2 CPUs and 1 GPU for 30 minutes), charged to lab",
        "the budget would have 2.0000 CPU h left after it",
        "Slurm expects it could start at 2026-11-27T03:00:00Z (an estimate)"]
    refused = {**cost, "left_after": {"cpu_hours": -0.25, "gpu_hours": 1.0}, "fits": False}
    assert estimate_lines({"cost": refused, "start_estimate": {"at": None, "error": "sbatch: down"}})[1:] == [
        "would be refused: it may use 0.2500 CPU h more than the budget has left",
        "no start estimate from Slurm: sbatch: down"]
