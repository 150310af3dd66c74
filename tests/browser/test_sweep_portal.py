"""A sweep from the portal, in a real browser on the real Slurm: "run over many values"
on two inputs, the task count shown before submit, then the sweep's page whose counts
and results fill in by themselves as the array's tasks run, sortable, with its CSV."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from screens import login_from_directory, shot
from test_portal import world

pytestmark = pytest.mark.parametrize("gw", ["sqlite"], indirect=True)

SCRIPT = 'sleep 3\nOUT_PRODUCT=$((DC_A * DC_B))\n'


def test_a_sweep_from_the_run_form_fills_in_live(gw, portal, new_page):
    world(gw)
    tpl = gw.template(name="times", script=SCRIPT, outputs=[{"name": "OUT_PRODUCT"}],
                      inputs=[{"name": "DC_A", "type": "integer", "default": 1},
                              {"name": "DC_B", "type": "integer", "default": 1}])
    gw.ok("POST", f"/templates/{tpl['id']}/access", 201, json={"user": "alice", "role": "member"})
    page = new_page(portal)
    login_from_directory(page, "alice")
    page.goto(f"/templates/{tpl['id']}/run")
    page.get_by_role("button", name="CONTINUE").click()
    a = page.locator(".param", has=page.locator("#input-DC_A"))
    a.get_by_text("Run over many values").click()
    a.get_by_label("Values of DC_A").fill("1..3")
    b = page.locator(".param", has=page.locator("#input-DC_B"))
    b.get_by_text("Run over many values").click()
    b.get_by_label("Values of DC_B").fill("10, 20")
    page.get_by_role("button", name="CONTINUE").click()
    expect(page.locator("#task-count")).to_have_text("This runs 6 tasks as one sweep (Slurm job array).")
    page.get_by_label("License (who is charged)").select_option("test-lab")
    page.get_by_label("Tasks at once (when running over many values)").fill("2")
    page.get_by_role("button", name="Submit job").click()
    expect(page).to_have_url(re.compile(r"/sweeps/\d+$"))
    expect(page.locator("p.flash")).to_contain_text("6 tasks as Slurm array")

    # The counts move by themselves, two tasks at a time, until all six are done.
    sweep_id = int(page.url.rsplit("/", 1)[1])
    page.evaluate("window.__noReload = true")
    completed = page.locator("#sweep-counts [data-status=Completed]")
    expect(page.locator("#sweep-counts [data-status=Pending]")).not_to_have_text("6", timeout=60_000)
    try:
        expect(completed).to_have_text(re.compile("^[1-5]$"), timeout=90_000)
        expect(completed).to_have_text("6", timeout=120_000)
    except AssertionError:
        tasks = gw.ok("GET", f"/sweeps/{sweep_id}")["jobs"]  # say why, in the failure
        raise AssertionError([(j["status"], j["reason"], j["exit_code"]) for j in tasks]) from None
    assert page.evaluate("window.__noReload") is True
    expect(page.locator("#results td.cpu").first).not_to_have_text("0.0000")  # charged, live too
    products = sorted(int(t) for t in page.locator("#results td.out").all_inner_texts())
    assert products == [10, 20, 20, 30, 40, 60]
    expect(page.get_by_role("button", name="Cancel sweep")).to_have_count(0)

    # Sorting by the OUT_ column, largest first.
    page.get_by_role("button", name="OUT_PRODUCT").click()
    page.get_by_role("button", name="OUT_PRODUCT").click()
    expect(page.locator("#results th", has_text="OUT_PRODUCT")).to_have_attribute("aria-sort", "descending")
    assert page.locator("#results tbody tr td.out").first.inner_text() == "60"
    shot(page, "sweep")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    lines = open(download.value.path()).read().splitlines()
    assert lines[0].startswith("task,job,status,DC_A,DC_B,OUT_PRODUCT") and len(lines) == 7
