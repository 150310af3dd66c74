"""Job Details in a real browser, on the real Slurm: a pending job says why it waits and
when Slurm expects it to start; a running job's start time and usage grow without a
reload; cancel asks first and then says who cancelled by name; tags are renamed in
place; a Viewer of the data sees the job and its tags but no comment; the sponsor
manages a licence's members from its page."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from screens import login_from_directory, shot

from tests.conftest import sign_in_from_directory

pytestmark = pytest.mark.parametrize("gw", ["sqlite"], indirect=True)

REMARK = "only for members: the beam was unstable"




def world(gw):
    """The admin's data; alice (from the directory) manages it, bob only views it."""
    sign_in_from_directory(gw, "alice", "bob")
    gw.environment("base", public=True)
    gw.experiment("lab", "run1")
    gw.ok("POST", "/projects/lab/access", 201, json={"user": "alice", "role": "manager"})
    gw.ok("POST", "/projects/lab/access", 201, json={"user": "bob", "role": "viewer"})


def test_pending_running_cancelled_tagged_and_viewed(gw, portal, new_page):
    world(gw)
    page = new_page(portal)
    login_from_directory(page, "alice")

    # Pending: Slurm's reason in plain words, and when it expects the job to start.
    later = gw.ok("POST", "/jobs/sbatch", 201, json={
        "script": "#!/bin/bash\n#SBATCH --begin=now+1hour\ntrue\n", "license": "test-lab",
        "project": "lab", "experiment": "run1"})
    page.goto(f"/jobs/{later['id']}")
    expect(page.locator("#job-status")).to_have_text("Pending")
    expect(page.locator("#job-reason")).to_contain_text("its start time has not come yet",
                                                        timeout=30_000)
    expect(page.locator("#job-expected")).to_contain_text("Slurm expects it to start around")
    shot(page, "job-pending")
    gw.ok("POST", f"/jobs/{later['id']}/cancel", 202)

    # Running: the start time and the usage appear and grow without a reload.
    tpl = gw.template(name="slow", environment="base", script="echo started; sleep 120\n")
    job = gw.run(tpl["id"], project="lab", experiment="run1")
    page.goto(f"/jobs/{job['id']}")
    page.evaluate("window.__noReload = true")
    expect(page.locator("#job-status")).to_have_text("Running", timeout=60_000)
    expect(page.locator("#job-started")).not_to_have_text("—")
    expect(page.locator("#job-ended")).to_have_text("—")
    expect(page.locator("#job-cpu")).not_to_have_text("0.0000", timeout=30_000)
    first = page.locator("#job-cpu").inner_text()
    expect(page.locator("#job-cpu")).not_to_have_text(first, timeout=30_000)
    assert page.evaluate("window.__noReload") is True
    shot(page, "job-running")

    # Tags: added, renamed from the chip's pencil, the × inside the chip.
    page.get_by_label("New tag").fill("reference")
    page.get_by_role("button", name="Add tag").click()
    chip = page.locator("#tag-list .tag", has_text="reference")
    expect(chip.get_by_role("button", name="Remove tag reference")).to_be_visible()
    chip.get_by_role("button", name="Rename tag reference").click()
    expect(page.get_by_label("New name")).to_be_focused()
    page.get_by_label("New name").fill("baseline")
    page.get_by_role("button", name="Rename", exact=True).click()
    expect(page.locator("#tag-list")).to_contain_text("baseline")
    expect(page.locator("#tag-list")).not_to_contain_text("reference")
    chip = page.locator("#tag-list .tag", has_text="baseline")
    outer, remove = chip.bounding_box(), chip.get_by_role("button", name="Remove tag baseline").bounding_box()
    assert outer["x"] <= remove["x"] and remove["x"] + remove["width"] <= outer["x"] + outer["width"]
    assert outer["y"] <= remove["y"] and remove["y"] + remove["height"] <= outer["y"] + outer["height"]
    page.get_by_label("Add a comment").fill(REMARK)
    page.get_by_role("button", name="Comment").click()
    expect(page.locator(".comment")).to_contain_text(REMARK)
    expect(page.locator(".comment")).not_to_contain_text("edited")
    shot(page, "job-notes")

    # Cancel asks first; "No" keeps the job; "Yes" cancels it, and the page says who did.
    page.get_by_role("button", name="Cancel job").click()
    dialog = page.get_by_role("dialog", name=f"Cancel job {job['id']}?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("link", name="No, keep it").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#job-status")).to_have_text("Running")
    page.get_by_role("button", name="Cancel job").click()
    dialog.get_by_role("button", name="Yes, cancel the job").click()
    expect(page.locator("#job-status")).to_have_text("Failed", timeout=60_000)
    # The job ran as the job user (the admin ran it): Slurm names that uid; the page
    # names who pressed the button.
    expect(page.locator("#job-reason")).to_have_text("cancelled by alice")
    expect(page.locator("#job-ended")).not_to_have_text("—")
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    assert gw.ok("GET", f"/jobs/{job['id']}")["cancelled_by"] == "alice"

    # A Viewer of the data: the job, its status and tags; no comment, nothing to change.
    viewer = new_page(portal)
    login_from_directory(viewer, "bob")
    viewer.goto("/jobs?scope=all")
    expect(viewer.locator(f"tr[data-job='{job['id']}']")).to_be_visible()
    viewer.goto(f"/jobs/{job['id']}")
    expect(viewer.locator("#job-status")).to_have_text("Failed")
    expect(viewer.locator("#tag-list")).to_contain_text("baseline")
    expect(viewer.locator("#read-only")).to_be_visible()
    expect(viewer.locator("body")).not_to_contain_text(REMARK)
    expect(viewer.locator("#comments")).to_have_count(0)
    for name in ("Add tag", "Comment", "Create link", "Cancel job", "Remove tag baseline"):
        expect(viewer.get_by_role("button", name=name)).to_have_count(0)
    viewer.get_by_role("tab", name="Log").click()
    expect(viewer.locator("#log")).to_contain_text("started")
    shot(viewer, "job-viewer")


def test_the_sponsor_manages_a_licences_members(gw, portal, new_page):
    world(gw)
    page = new_page(portal)
    login_from_directory(page, "alice")  # other-lab's sponsor in the config
    page.goto("/licenses/other-lab")
    table = page.locator("#access-table")
    expect(table.locator("tr", has_text="team bio-team")).to_contain_text("site configuration")
    expect(table.locator("tr", has_text="alice")).to_contain_text("sponsor")
    expect(page.locator("#no-usage")).to_be_visible()
    expect(page.locator("#usage-chart")).to_contain_text("1 h")
    page.get_by_label("Person").select_option("bob")
    page.get_by_label("Role").select_option("member")
    page.get_by_role("button", name="Grant").click()
    expect(table.locator("tr", has_text="bob")).to_contain_text("granted")
    shot(page, "license-access")
    table.get_by_role("button", name="Remove bob").click()
    expect(table).not_to_contain_text("bob")
    expect(table.get_by_role("button", name="Remove alice")).to_have_count(0)  # the config's
