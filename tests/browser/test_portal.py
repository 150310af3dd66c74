"""The portal in a real browser: a scientist's whole path through it, from login to a
shared result, with the job running on the real Slurm."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from screens import login, shot

from tests.conftest import sign_in_from_directory

pytestmark = pytest.mark.parametrize("gw", ["sqlite"], indirect=True)




def world(gw):
    """admin (local) sets up data and access; alice and bob come from the directory."""
    sign_in_from_directory(gw, "alice", "bob")
    gw.environment("base", public=True)
    gw.experiment("lab", "run1")
    gw.ok("PUT", "/projects/lab/experiments/run1/files/raw/a.txt", 201, data=b"1\n2\n3\n")
    gw.ok("PUT", "/projects/lab/experiments/run1/files/raw/b.txt", 201, data=b"4\n")
    gw.ok("POST", "/projects/lab/access", 201, json={"user": "alice", "role": "member"})
    gw.ok("POST", "/licenses/test-lab/access", 201, json={"user": "alice", "role": "member"})


def test_login_errors_and_logout(gw, portal, new_page):
    world(gw)
    page = new_page(portal)
    login(page, "alice", "wrong")
    expect(page.locator("#login-error")).to_have_text("invalid username or password")
    login(page, "alice", "alice-pw")
    expect(page).to_have_url(re.compile(r"/jobs$"))
    shot(page, "jobs-empty")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto("/templates")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_create_run_follow_share(gw, portal, new_page, tmp_path):
    world(gw)
    page = new_page(portal)
    login(page, "alice", "alice-pw")

    # Create Job Template: language, details, script, inputs, outputs, support file.
    page.get_by_role("link", name="Create Job Template").first.click()
    page.get_by_label("Bash").check()
    page.get_by_label("Name", exact=True).fill("count-lines")
    page.get_by_label("Description", exact=True).fill("Counts lines in a data folder")
    page.get_by_label("Script", exact=True).fill(
        'cat "$JOB_TEMPLATE_DIR/banner.txt"\n'
        'echo "label: $DC_LABEL"\n'
        'cat "$DC_DATA"/* | wc -l > "$JOB_OUTPUT_DIR/count.txt"\n'
        'sleep 3\n'
        'OUT_COUNT=$(cat "$JOB_OUTPUT_DIR/count.txt")\n')
    page.get_by_label("Input 1 name (after DC_)").fill("DATA")
    page.get_by_label("Input 1 type").select_option("path")
    page.get_by_role("button", name="Add input").click()
    page.get_by_label("Input 2 name (after DC_)").fill("LABEL")
    page.get_by_label("Input 2 default").fill("default label")
    page.get_by_role("button", name="Settings of input 2").click()
    page.get_by_label("Input 2 is advanced").check()
    page.get_by_role("button", name="Done").click()
    page.get_by_label("Output 1 name (after OUT_)").fill("COUNT")
    banner = tmp_path / "banner.txt"
    banner.write_text("== support file ==\n")
    page.get_by_label("Add files").set_input_files(str(banner))
    # A bad default is shown next to its field, and nothing is saved.
    page.get_by_role("button", name="Add input").click()
    page.get_by_label("Input 3 name (after DC_)").fill("N")
    page.get_by_label("Input 3 type").select_option("integer")
    page.get_by_label("Input 3 default").fill("many")
    page.get_by_role("button", name="Create template").click()
    expect(page.locator("#err-inputs-2-default")).to_contain_text("whole number")
    page.get_by_label("Input 3 name (after DC_)").fill("")
    page.get_by_label("Input 3 default").fill("")
    page.get_by_label("Add files").set_input_files(str(banner))
    page.get_by_role("button", name="Create template").click()
    expect(page.locator("h1")).to_contain_text("count-lines")
    expect(page.locator("h1 .badge")).to_have_text("unvalidated")
    shot(page, "template-card")

    # Run Job, the wizard: browse the data, CONTINUE; show advanced and change it,
    # CONTINUE; settings, preview, submit.
    page.get_by_role("link", name="RUN JOB").click()
    page.get_by_role("button", name="Browse the experiment for DC_DATA").click()
    page.get_by_role("dialog").get_by_role("button", name="Choose folder raw").click()
    expect(page.locator("#input-DC_DATA")).to_have_value("raw")
    page.get_by_role("button", name="CONTINUE").click()
    expect(page.locator("#input-DC_LABEL")).to_be_hidden()
    page.get_by_label("show advanced").check()
    page.locator("#input-DC_LABEL").fill("from the browser")
    page.get_by_role("button", name="CONTINUE").click()
    page.get_by_label("Machine type").select_option("double")
    page.get_by_label("License (who is charged)").select_option("test-lab")
    page.get_by_role("button", name="Preview sbatch script").click()
    expect(page.locator("#preview")).to_contain_text("#SBATCH --cpus-per-task=2")
    expect(page.locator("#preview")).to_contain_text("export DC_LABEL='from the browser'")
    shot(page, "run-job")
    page.get_by_role("button", name="Submit job").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    job_id = int(page.url.rsplit("/", 1)[1])

    # The status reaches Completed without a reload.
    page.evaluate("window.__noReload = true")
    expect(page.locator("#job-status")).to_have_text("Completed", timeout=90_000)
    assert page.evaluate("window.__noReload") is True
    page.get_by_role("tab", name="Log").click()
    expect(page.locator("#log")).to_contain_text("== support file ==")
    expect(page.locator("#log")).to_contain_text("label: from the browser")
    page.get_by_role("tab", name="Output variables").click()
    expect(page.locator("#panel-outputs")).to_contain_text("OUT_COUNT")
    expect(page.locator("#panel-outputs")).to_contain_text("4")
    page.get_by_role("tab", name="Inputs").click()
    expect(page.locator("#panel-inputs")).to_contain_text("from the browser")
    page.get_by_role("tab", name="Output files").click()
    with page.expect_download() as dl:
        page.get_by_role("link", name="count.txt").click()
    assert open(dl.value.path()).read().strip() == "4"
    shot(page, "job-details")

    # Tags and comments.
    page.get_by_label("New tag").fill("reference")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator("#tag-list")).to_contain_text("reference")
    page.get_by_label("Add a comment").fill("Counts look right.")
    page.get_by_role("button", name="Comment").click()
    expect(page.locator(".comment")).to_contain_text("Counts look right.")

    # A public link, opened by someone without an account.
    page.get_by_role("button", name="Create link").click()
    share_url = page.locator("#share-url").get_attribute("href")
    anon = new_page(portal)
    anon.goto(share_url)
    expect(anon.locator("h1")).to_contain_text(f"Job {job_id}")
    expect(anon.locator("body")).to_contain_text("OUT_COUNT")
    expect(anon.get_by_role("link", name="count.txt")).to_be_visible()
    expect(anon.locator("nav")).to_have_count(0)  # no menus, nothing else reachable

    # The jobs table shows it, with the tag; the template is validated now.
    page.goto("/jobs")
    row = page.locator(f"tr[data-job='{job_id}']")
    expect(row.locator(".badge")).to_have_text("Completed")
    expect(row).to_contain_text("reference")
    page.goto("/templates")
    expect(page.locator("#templates")).to_contain_text("validated")

    # Usage chart of the licence.
    page.goto("/licenses/test-lab")
    expect(page.locator("#usage-chart rect").first).to_be_visible()
    shot(page, "license-usage")


def test_viewer_cannot_run_and_member_sees_jobs_live(gw, portal, new_page):
    world(gw)
    tpl = gw.template(name="slow", environment="base", script="echo start; sleep 6; echo end\n")
    gw.ok("POST", f"/templates/{tpl['id']}/access", 201, json={"user": "bob", "role": "viewer"})
    page = new_page(portal)
    login(page, "bob", "bob-pw")
    page.goto(f"/templates/{tpl['id']}")
    expect(page.locator("h1")).to_contain_text("slow")
    expect(page.get_by_role("link", name="RUN JOB")).to_have_count(0)
    expect(page.locator("#config-hidden")).to_be_visible()
    page.goto(f"/templates/{tpl['id']}/run")
    expect(page.locator("h1")).to_have_text("Not allowed")

    # alice (Member of the project) watches the admin's job go from Pending to Completed.
    job = gw.run("slow", project="lab", experiment="run1")
    alice = new_page(portal)
    login(alice, "alice", "alice-pw")
    alice.goto("/jobs?scope=all")  # not her job: the table shows her own by default
    row = alice.locator(f"tr[data-job='{job['id']}']")
    expect(row.locator(".badge")).to_have_text(re.compile("Pending|Running"))
    expect(row.locator(".badge")).to_have_text("Completed", timeout=90_000)
