"""Runs compared from the Jobs table, in a real browser on the real Slurm: tick three
runs of one template, "Compare selected", and see the input that differs and the OUT_
values side by side (the shared input said once above), sortable, each job linked, and
nothing axe-core finds serious on the page."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect
from screens import login_from_directory, shot
from test_accessibility import serious_violations
from test_portal import world

pytestmark = pytest.mark.parametrize("gw", ["sqlite"], indirect=True)

SCRIPT = 'OUT_SQUARE=$((DC_N * DC_N))\n'


def test_three_runs_picked_in_the_jobs_table_side_by_side(gw, portal, new_page):
    world(gw)
    gw.template(name="square", script=SCRIPT, outputs=[{"name": "OUT_SQUARE"}],
                inputs=[{"name": "DC_N", "type": "integer", "default": 1},
                        {"name": "DC_LABEL", "type": "string", "default": "<b>same</b>"}])
    ids = [gw.run("square", project="lab", experiment="run1", inputs={"DC_N": n})["id"] for n in (3, 1, 2)]
    # The served gateway's poller follows them (they end within seconds).
    deadline = time.monotonic() + 90
    while not all(gw.ok("GET", f"/jobs/{i}")["finalized"] for i in ids):
        assert time.monotonic() < deadline, [gw.ok("GET", f"/jobs/{i}") for i in ids]
        time.sleep(0.5)

    page = new_page(portal)
    login_from_directory(page, "alice")  # a Member of the project: the admin's runs are hers to see
    page.goto("/jobs?scope=all")
    for i in ids:
        page.get_by_label(f"Select job {i}").check()
    shot(page, "jobs-compare-pick")
    page.get_by_role("button", name="Compare selected").click()
    expect(page).to_have_url(re.compile(r"/jobs/compare\?ids="))
    expect(page.locator("h1")).to_have_text(re.compile(r"Compare 3 runs of\s+square"))
    assert not serious_violations(page)

    # The input every run shares is said once, as text; the one that differs is a column.
    expect(page.locator("#same-inputs")).to_contain_text("DC_LABEL")
    expect(page.locator("#same-inputs")).to_contain_text("<b>same</b>")
    table = page.locator("#results")
    expect(table.locator("thead th")).to_have_text(
        ["Job", "Version", "Status", "DC_N", "OUT_SQUARE", "Exit code", "CPU h", "GPU h"])
    newest_first = sorted(ids, reverse=True)  # the Jobs table lists the newest first
    expect(table.locator("tbody tr td:first-child")).to_have_text([f"#{i}" for i in newest_first])
    by_job = {i: n for i, n in zip(ids, (3, 1, 2), strict=True)}
    expect(table.locator("td[data-input=DC_N]")).to_have_text([str(by_job[i]) for i in newest_first])
    expect(table.locator("td.out")).to_have_text([str(by_job[i] ** 2) for i in newest_first])

    # Sorted by the OUT_ value, largest first; each job links to its details.
    table.get_by_role("button", name="OUT_SQUARE").click()
    table.get_by_role("button", name="OUT_SQUARE").click()
    expect(table.locator("th", has_text="OUT_SQUARE")).to_have_attribute("aria-sort", "descending")
    expect(table.locator("td.out")).to_have_text(["9", "4", "1"])
    shot(page, "compare")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    lines = open(download.value.path()).read().splitlines()
    assert lines[0] == "job,version,status,DC_N,OUT_SQUARE,exit_code,cpu_hours,gpu_hours,DC_LABEL"
    assert len(lines) == 4
    table.get_by_role("link", name=f"#{ids[0]}").click()
    expect(page).to_have_url(re.compile(rf"/jobs/{ids[0]}$"))
