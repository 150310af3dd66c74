"""The Jobs table in a real browser, with jobs run on the real Slurm: a row's "+" opens
its outputs in place (and fills in by itself when the job ends), the eye opens Job
Details, "My jobs" / "All I can see", and filters that a reload and Back keep."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from screens import login, shot
from test_portal import world

pytestmark = pytest.mark.parametrize("gw", ["sqlite"], indirect=True)

SCRIPT = ('mkdir -p "$JOB_OUTPUT_DIR/plots"\n'
          'echo "$DC_WORD" > "$JOB_OUTPUT_DIR/plots/word file.txt"\n'
          'sleep 4\n'
          'OUT_ANSWER="$DC_WORD-42"\n')


def test_expand_outputs_switch_whose_jobs_and_keep_filters(gw, portal, new_page):
    world(gw)
    tpl = gw.template(name="answer", script=SCRIPT, outputs=[{"name": "OUT_ANSWER"}],
                      inputs=[{"name": "DC_WORD", "type": "string", "default": "hello"}])
    gw.ok("POST", f"/templates/{tpl['id']}/access", 201, json={"user": "alice", "role": "member"})
    alice_token = gw.client.post("/api/v1/auth/token",
                                 json={"username": "alice", "password": "alice-pw"}).json["token"]
    # The admin's job on the project alice is a Member of, and one of alice's own.
    theirs = gw.run(tpl["id"], project="lab", experiment="run1", inputs={"DC_WORD": "admin"})["id"]
    mine = gw.run(tpl["id"], project="lab", experiment="run1", inputs={"DC_WORD": "alice"},
                  token=alice_token)["id"]

    page = new_page(portal)
    login(page, "alice", "alice-pw")
    expect(page).to_have_url(re.compile(r"/jobs$"))
    # Her own jobs by default.
    expect(page.get_by_role("link", name="My jobs", exact=True)).to_have_attribute("aria-current", "true")
    expect(page.locator(f"tr[data-job='{mine}']")).to_be_visible()
    expect(page.locator(f"tr[data-job='{theirs}']")).to_have_count(0)
    expect(page.locator(f"tr[data-job='{mine}'] .place")).to_have_text("lab / run1")

    # "+" opens the row below in place; opened early, it shows the outputs once the job ends.
    plus = page.get_by_role("button", name=f"Outputs of job {mine}")
    expect(plus).to_have_attribute("aria-expanded", "false")
    plus.click()
    expect(plus).to_have_attribute("aria-expanded", "true")
    more = page.locator(f"#job-more-{mine}")
    expect(more).to_be_visible()
    file_link = more.get_by_role("link", name="plots/word file.txt")
    expect(file_link).to_be_visible(timeout=90_000)
    expect(page.locator(f"tr[data-job='{mine}'] .badge")).to_have_text("Completed")
    expect(page.locator(f"tr[data-job='{mine}'] .ended")).to_have_text(re.compile(r"UTC$"))
    expect(more.locator("tr", has_text="OUT_ANSWER")).to_contain_text("alice-42")
    shot(page, "jobs-expanded")
    with page.expect_download() as download:
        file_link.click()
    assert open(download.value.path()).read().strip() == "alice"
    plus.click()
    expect(plus).to_have_attribute("aria-expanded", "false")
    expect(more).to_be_hidden()

    # The eye opens Job Details.
    page.get_by_role("link", name=f"Details of job {mine}").click()
    expect(page).to_have_url(re.compile(rf"/jobs/{mine}$"))
    expect(page.locator("h1")).to_contain_text(f"Job {mine}")
    page.go_back()

    # All she can see: the admin's job on her project too.
    gw.wait(theirs)
    page.get_by_role("link", name="All I can see").click()
    expect(page).to_have_url(re.compile(r"/jobs\?scope=all$"))
    expect(page.locator(f"tr[data-job='{theirs}']")).to_be_visible()
    expect(page.locator(f"tr[data-job='{mine}']")).to_be_visible()

    # Filters go into the URL; a reload keeps them, and the scope, and what they show.
    page.get_by_label("Search", exact=True).fill("admin")
    page.get_by_label("Status", exact=True).select_option("Completed")
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(page).to_have_url(re.compile(r"scope=all.*text=admin|text=admin.*scope=all"))
    expect(page).to_have_url(re.compile(r"status=Completed"))
    for _ in range(2):
        expect(page.locator(f"tr[data-job='{theirs}']")).to_be_visible()
        expect(page.locator(f"tr[data-job='{mine}']")).to_have_count(0)
        expect(page.get_by_label("Search", exact=True)).to_have_value("admin")
        expect(page.get_by_label("Status", exact=True)).to_have_value("Completed")
        expect(page.get_by_role("link", name="All I can see")).to_have_attribute("aria-current", "true")
        page.reload()
    # Someone else's job on her data: its outputs open for her too.
    page.get_by_role("button", name=f"Outputs of job {theirs}").click()
    expect(page.locator(f"#job-more-{theirs} tr", has_text="OUT_ANSWER")).to_contain_text("admin-42")
    shot(page, "jobs-filtered")

    # Back: the table before the filters; and her own jobs again, the filters kept.
    page.go_back()
    expect(page).to_have_url(re.compile(r"/jobs\?scope=all$"))
    expect(page.locator(f"tr[data-job='{mine}']")).to_be_visible()
    expect(page.get_by_label("Status", exact=True)).to_have_value("")  # the URL's, not the last typed
    page.get_by_label("Search", exact=True).fill("answer")
    page.get_by_role("button", name="Filter", exact=True).click()
    page.get_by_role("link", name="My jobs", exact=True).click()
    expect(page).to_have_url(re.compile(r"/jobs\?text=answer$"))
    expect(page.locator(f"tr[data-job='{mine}']")).to_be_visible()
    expect(page.locator(f"tr[data-job='{theirs}']")).to_have_count(0)
    expect(page.get_by_label("Search", exact=True)).to_have_value("answer")
