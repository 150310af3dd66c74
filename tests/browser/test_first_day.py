"""A new person's first day, through the portal alone, in a real browser on the real
Slurm: from an empty gateway, carol (from the directory) creates a project and an
experiment, uploads a folder of data with a progress bar, creates an environment and a
template with five inputs (one advanced, two Paths) and two outputs, runs it through
the three-step wizard with BROWSE, watches it wait (with the reason), run (usage
growing) and complete, opens its row in the Jobs table to see its outputs, and grants
her colleagues' team Viewer access. bob, of that team, then sees the job and its tags
but not its comments."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from screens import login_from_directory, shot

from tests.conftest import hand_to_service, sign_in_from_directory

pytestmark = pytest.mark.parametrize("gw", ["sqlite"], indirect=True)

SCRIPT = """echo "label: $DC_LABEL, mode: $DC_MODE, threshold: $DC_THRESHOLD"
ls "$DC_SCANS" | wc -l > "$JOB_OUTPUT_DIR/count.txt"
head -n 1 "$DC_REFERENCE" > "$JOB_OUTPUT_DIR/reference.txt"
for i in $(seq 1 10); do echo "step $i"; sleep 1; done
OUT_COUNT=$(cat "$JOB_OUTPUT_DIR/count.txt")
OUT_MODE=$DC_MODE
"""
BIG_MB = 24  # large enough that the upload's progress is seen between 0 and 100 %

# Records every value the overall upload bar takes, from the page's own frames.
WATCH_PROGRESS = """() => {
  window.__progress = [];
  const look = () => {
    const bar = document.getElementById("upload-overall");
    if (bar && !bar.closest("[hidden]")) window.__progress.push([bar.value, bar.max]);
    requestAnimationFrame(look);
  };
  look();
}"""


def slow_network(page, bytes_per_second: int | None = 20 << 20):
    """Upload at a fast network's pace (loopback would send the big file before a frame
    is drawn); None: as fast as it goes."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": bytes_per_second or -1})




def scans_folder(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.txt").write_text("reference line\nsecond\n")
    (folder / "b.txt").write_text("b\n")
    (folder / "big.bin").write_bytes(b"\0" * (BIG_MB << 20))
    return folder


def fill_input(page, n, name, kind, default=None):
    page.get_by_label(f"Input {n} name (after DC_)").fill(name)
    page.get_by_label(f"Input {n} type").select_option(kind)
    if default is not None:
        page.get_by_label(f"Input {n} default").fill(default)


def open_settings(page, n):
    page.get_by_role("button", name=f"Settings of input {n}", exact=True).click()
    return page.get_by_role("dialog")


def test_a_new_person_gets_going_from_the_browser_alone(gw, portal, new_page, tmp_path):
    # bob has been here before (his team is known); he sees nothing of carol's yet.
    sign_in_from_directory(gw, "bob")
    hand_to_service(gw.base)  # what that sign-in made, as the served gateway's own
    bob = new_page(portal)
    login_from_directory(bob, "bob")
    expect(bob.locator("#jobs tbody")).not_to_contain_text("count-scans")

    page = new_page(portal)
    login_from_directory(page, "carol")

    # A project and an experiment, from an empty Projects page.
    page.get_by_role("link", name="Projects", exact=True).click()
    expect(page.locator("#no-projects")).to_be_visible()
    page.get_by_label("Project name").fill("beamline")
    page.get_by_role("button", name="Create project").click()
    expect(page.locator("h1")).to_contain_text("beamline")
    page.get_by_label("Experiment name").fill("day1")
    page.get_by_role("button", name="Create experiment").click()
    expect(page.locator("h1")).to_contain_text("day1")

    # A folder of data, the big file's progress seen between 0 and done.
    page.evaluate(WATCH_PROGRESS)
    slow_network(page)
    page.get_by_label("Upload a folder").set_input_files(str(scans_folder(tmp_path)))
    expect(page.locator("#upload-summary")).to_contain_text("3 of 3 files uploaded", timeout=120_000)
    slow_network(page, None)
    seen = page.evaluate("window.__progress")
    assert any(0 < value < top for value, top in seen), seen[-5:]
    listing = page.locator("#listing")
    listing.get_by_role("link", name="scans").click()
    expect(listing).to_contain_text("big.bin")
    expect(listing).to_contain_text(f"{BIG_MB}.0 MiB")
    shot(page, "data-browser")

    # An environment for the template.
    page.get_by_role("link", name="Environments", exact=True).click()
    page.get_by_label("Environment name").fill("xray-tools")
    page.get_by_label("Description").fill("What the beamline's jobs need")
    page.get_by_label("Set-up lines of the first version").fill("export XRAY_TOOLS=1\n")
    page.get_by_role("button", name="Create environment").click()
    expect(page.locator("p.flash")).to_have_text("Environment xray-tools created.")

    # The template: five inputs (two Paths, one advanced) and two outputs.
    page.get_by_role("link", name="Create Job Template").click()
    page.get_by_label("Name", exact=True).fill("count-scans")
    page.get_by_label("Environment", exact=True).select_option("xray-tools")
    page.get_by_label("Script", exact=True).fill(SCRIPT)
    fill_input(page, 1, "SCANS", "path", "scans")
    for n, (name, kind, default) in enumerate([("LABEL", "string", None), ("THRESHOLD", "integer", "2"),
                                               ("MODE", "choice", "fast"), ("REFERENCE", "path", None)],
                                              start=2):
        page.get_by_role("button", name="Add input", exact=True).click()
        fill_input(page, n, name, kind, default)
    dialog = open_settings(page, 4)
    dialog.get_by_label("Input 4 choices (comma-separated)").fill("fast, exact")
    dialog.get_by_role("button", name="Done").click()
    dialog = open_settings(page, 5)
    dialog.get_by_label("Input 5 is advanced").check()
    dialog.get_by_label("Input 5 description").fill("One scan to compare with")
    dialog.get_by_role("button", name="Done").click()
    expect(page.locator("#inputs-4-summary")).to_contain_text("advanced")
    page.get_by_label("Output 1 name (after OUT_)").fill("COUNT")
    page.get_by_role("button", name="Add output", exact=True).click()
    page.get_by_label("Output 2 name (after OUT_)").fill("MODE")
    page.get_by_role("button", name="Create template").click()
    expect(page.locator("h1")).to_contain_text("count-scans")

    # Run it through the wizard; the cluster is busy with someone else's job meanwhile.
    page.get_by_role("link", name="RUN JOB").click()
    expect(page.locator("#input-DC_SCANS")).to_have_value("scans")  # the default
    page.get_by_role("button", name="Browse the experiment for DC_SCANS").click()
    page.get_by_role("dialog").get_by_role("button", name="Choose folder scans").click()
    page.get_by_role("button", name="CONTINUE").click()
    page.get_by_label(re.compile("^DC_LABEL")).fill("first light")
    # A wrong value is shown next to its field, in words, and the wizard stays here.
    page.get_by_label(re.compile("^DC_THRESHOLD")).fill("lots")
    page.get_by_role("button", name="CONTINUE").click()
    expect(page.locator("[data-error-for='inputs.DC_THRESHOLD']")).to_contain_text("whole number")
    page.get_by_label(re.compile("^DC_THRESHOLD")).fill("3")
    expect(page.locator("[data-error-for='inputs.DC_THRESHOLD']")).to_be_hidden()  # being fixed
    page.get_by_label("show advanced").check()
    page.get_by_role("button", name="Browse the experiment for DC_REFERENCE").click()
    picker = page.get_by_role("dialog")
    picker.get_by_role("button", name="Open folder scans").click()
    picker.get_by_role("button", name="Choose a.txt").click()
    expect(page.locator("#input-DC_REFERENCE")).to_have_value("scans/a.txt")
    shot(page, "run-wizard")
    page.get_by_role("button", name="CONTINUE").click()
    page.get_by_label("License (who is charged)").select_option("other-lab")
    blocker = gw.ok("POST", "/jobs/sbatch", 201, json={
        "script": "#!/bin/bash\n#SBATCH --exclusive\nsleep 12\n", "license": "test-lab"})
    gw.wait(blocker["id"], timeout=60, until=lambda j: j["status"] == "Running")
    page.get_by_role("button", name="Submit job").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    job_id = int(page.url.rsplit("/", 1)[1])

    # Pending, and why; then running with its usage growing; then completed.
    expect(page.locator("#job-status")).to_have_text("Pending")
    expect(page.locator("#job-reason")).to_contain_text(
        re.compile("not enough CPUs, memory or GPUs are free yet|other jobs are ahead of it"), timeout=30_000)
    expect(page.locator("#job-status")).to_have_text("Running", timeout=90_000)
    expect(page.locator("#job-cpu")).not_to_have_text("0.0000", timeout=30_000)
    first = page.locator("#job-cpu").inner_text()
    expect(page.locator("#job-cpu")).not_to_have_text(first, timeout=30_000)
    page.get_by_label("New tag").fill("first-light")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator("#tag-list")).to_contain_text("first-light")
    page.get_by_label("Add a comment").fill("the beam was unstable before 10:00")
    page.get_by_role("button", name="Comment", exact=True).click()
    expect(page.locator(".comment")).to_contain_text("the beam was unstable")
    expect(page.locator("#job-status")).to_have_text("Completed", timeout=90_000)

    # Its row in the Jobs table opens in place on its outputs.
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_role("button", name=f"Outputs of job {job_id}").click()
    more = page.locator(f"#job-more-{job_id}")
    expect(more.get_by_role("link", name="count.txt")).to_be_visible()
    expect(more.locator("tr", has_text="OUT_COUNT")).to_contain_text("3")
    expect(more.locator("tr", has_text="OUT_MODE")).to_contain_text("fast")

    # The team sees the experiment's jobs: Viewer, granted from the experiment's page.
    page.get_by_role("link", name="Projects", exact=True).click()
    page.get_by_role("link", name="beamline").click()
    page.get_by_role("link", name="day1").click()
    page.get_by_label("or team").select_option("xray-team")
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Grant").click()
    expect(page.locator("#access-table")).to_contain_text("team xray-team")

    bob.goto("/jobs?scope=all")
    expect(bob.locator(f"tr[data-job='{job_id}']")).to_be_visible()
    bob.goto(f"/jobs/{job_id}")
    expect(bob.locator("#job-status")).to_have_text("Completed")
    expect(bob.locator("#tag-list")).to_contain_text("first-light")
    expect(bob.get_by_text("the beam was unstable")).to_have_count(0)
    expect(bob.locator("#comments")).to_have_count(0)
    expect(bob.get_by_label("New tag")).to_have_count(0)
    expect(bob.get_by_role("button", name="Cancel job")).to_have_count(0)
