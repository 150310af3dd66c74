"""Projects and the data browser in a real browser, through the portal only: a directory
person creates a project and an experiment, uploads a folder (one file large enough to
watch its progress bar move), recovers from a failed upload with Retry, drops a file
onto the listing, makes a folder, downloads a file, browses with the picker dialog and
gives a team Viewer access; a person of that team sees the experiment read-only."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from screens import login, shot
from test_accessibility import serious_violations

from gateway.access import ACTIONS, Role
from tests.conftest import hand_to_service, sign_in_from_directory

pytestmark = pytest.mark.parametrize("gw", ["sqlite"], indirect=True)

BIG = 30 * 2**20  # large enough that its upload takes several progress steps

# Records what the page's uploader reports, for the assertions below.
LISTEN = """() => {
  window.__progress = []; window.__done = [];
  document.addEventListener("databrowser:upload-progress", e => window.__progress.push(e.detail));
  document.addEventListener("databrowser:uploads-done", e => window.__done.push(e.detail));
}"""


def a_folder_of_data(base: Path) -> tuple[Path, dict[str, bytes]]:
    folder = base / "detector"
    (folder / "frames").mkdir(parents=True)
    files = {"detector/notes.txt": b"beam on at 09:00\n", "detector/frames/f1.dat": os.urandom(4096),
             "detector/frames/f2.dat": os.urandom(100), "detector/frames/big.bin": os.urandom(BIG)}
    for rel, content in files.items():
        (base / rel).write_bytes(content)
    return folder, files


def uploads_done(page, count: int) -> dict:
    page.wait_for_function("n => window.__done.length >= n", arg=count, timeout=120_000)
    return page.evaluate("n => window.__done[n - 1]", count)


def test_projects_experiment_upload_browse_share(gw, portal, new_page, tmp_path):
    sign_in_from_directory(gw, "alice", "carol")  # their teams (carol's bio-team) exist from now on
    hand_to_service(gw.base)  # what that made here, as root (the data root), is the server's
    page = new_page(portal)
    login(page, "alice", "alice-pw")

    # A project and an experiment, from the empty Projects page.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Projects").click()
    expect(page.locator("#no-projects")).to_be_visible()
    page.get_by_label("Project name").fill("beamline")
    page.get_by_role("button", name="Create project").click()
    expect(page.locator("h1")).to_have_text("beamline")
    expect(page.locator("#no-experiments")).to_be_visible()
    page.get_by_label("Experiment name").fill("scan-7")
    page.get_by_role("button", name="Create experiment").click()
    expect(page.locator("h1")).to_contain_text("scan-7")
    expect(page.locator('#listing tr[data-path="Processed"]')).to_contain_text("read-only")
    expect(page.locator("#upload-limit")).to_contain_text("MB per file")
    experiment_url = page.url

    # A whole folder, one file at a time, each with its progress bar and one overall.
    folder, files = a_folder_of_data(tmp_path)
    page.evaluate(LISTEN)
    # Loopback would send 30 MB before the bar is drawn: upload at a fast network's pace.
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": 20 * 2**20})
    page.get_by_label("Upload a folder").set_input_files(str(folder))
    expect(page.get_by_label("Uploading detector/frames/big.bin")).to_be_visible()
    expect(page.get_by_label("Uploading all files")).to_be_visible()
    done = uploads_done(page, 1)
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    assert sorted(done["uploaded"]) == sorted(files) and done["failed"] == []
    big_steps = [p for p in page.evaluate("window.__progress") if p["path"] == "detector/frames/big.bin"]
    assert any(0 < p["value"] < p["max"] for p in big_steps), big_steps
    expect(page.locator("#upload-summary")).to_have_text("4 of 4 files uploaded.")
    overall = page.evaluate("[document.getElementById('upload-overall').value,"
                            " document.getElementById('upload-overall').max]")
    assert overall[0] == overall[1] == sum(len(c) for c in files.values())
    # The listing refreshed by itself.
    expect(page.locator('#listing tr[data-path="detector"]')).to_be_visible()
    shot(page, "data-browser")

    # Into the folders (the URL says where: reload and Back keep it).
    page.locator("#listing").get_by_role("link", name="detector").click()
    expect(page).to_have_url(re.compile(r"\?path=detector$"))
    page.locator("#listing").get_by_role("link", name="frames").click()
    expect(page).to_have_url(re.compile(r"\?path=detector/frames$"))
    expect(page.locator('#listing tr[data-path="detector/frames/big.bin"]')).to_contain_text("30.0 MiB")
    expect(page.locator('#listing tr[data-path="detector/frames/f1.dat"]')).to_contain_text("4.0 KiB")
    page.reload()
    expect(page.locator("#folder-crumbs [aria-current=location]")).to_have_text("frames")
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?path=detector$"))
    page.go_forward()

    with page.expect_download() as download:
        page.get_by_role("link", name="Download f1.dat").click()
    assert Path(download.value.path()).read_bytes() == files["detector/frames/f1.dat"]

    # A new folder, where the person is.
    page.get_by_label("Folder name").fill("day 2")
    page.get_by_role("button", name="Create folder").click()
    expect(page.locator(".flash")).to_have_text("Folder detector/frames/day 2 created.")
    expect(page.locator('#listing tr[data-path="detector/frames/day 2"]')).to_be_visible()

    # An upload that fails says why in plain words and can be sent again.
    attempts = []

    def drop_first(route):
        attempts.append(route.request.url)
        if len(attempts) == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/files/detector/frames/again.txt", drop_first)
    page.evaluate(LISTEN)
    page.get_by_label("Upload files").set_input_files(
        [{"name": "again.txt", "mimeType": "text/plain", "buffer": b"second try\n"}])
    failed = uploads_done(page, 1)
    assert failed["failed"] == ["again.txt"]
    item = page.locator("#upload-list li", has_text="again.txt")
    expect(item).to_contain_text("not uploaded: the connection to the gateway was lost")
    item.get_by_role("button", name="Retry again.txt").click()
    assert uploads_done(page, 2)["uploaded"] == ["again.txt"]
    expect(item).to_contain_text("uploaded")
    expect(page.locator('#listing tr[data-path="detector/frames/again.txt"]')).to_contain_text("11 bytes")
    page.unroute("**/files/detector/frames/again.txt")

    # Dropping a file onto the listing uploads it too.
    page.evaluate("""() => {
      const dt = new DataTransfer();
      dt.items.add(new File(["dropped\\n"], "dropped.txt", {type: "text/plain"}));
      const zone = document.getElementById("drop-zone");
      zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
      zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""")
    assert uploads_done(page, 3)["uploaded"] == ["dropped.txt"]
    expect(page.locator('#listing tr[data-path="detector/frames/dropped.txt"]')).to_be_visible()

    # The picker: Escape closes it; a folder chosen in it is opened.
    page.get_by_role("button", name="Go to folder…").click()
    dialog = page.get_by_role("dialog", name="Go to a folder of scan-7")
    expect(dialog.get_by_role("button", name="Choose big.bin")).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("button", name="Go to folder…")).to_be_focused()
    page.get_by_role("button", name="Go to folder…").click()
    dialog.get_by_role("button", name="Up one folder").click()
    dialog.get_by_role("button", name="Up one folder").click()
    expect(dialog.get_by_role("button", name="Open folder Processed")).to_be_visible()
    dialog.get_by_role("button", name="Open folder detector").click()
    expect(dialog.get_by_role("button", name="Choose notes.txt")).to_be_visible()
    assert not serious_violations(page)  # the dialog open over a page with finished uploads
    dialog.get_by_role("button", name="Choose this folder").click()
    expect(page).to_have_url(re.compile(r"\?path=detector$"))
    expect(dialog).to_have_count(0)

    # Manage Access: carol's team becomes a Viewer of the experiment.
    page.goto(experiment_url)
    page.locator("#grant-team").select_option("bio-team")
    page.locator("#grant-role").select_option("viewer")
    page.get_by_role("button", name="Grant").click()
    expect(page.locator("#access-table tr", has_text="team bio-team")).to_contain_text("viewer")

    # carol sees the experiment, and nothing to upload or make with.
    other = new_page(portal)
    login(other, "carol", "carol-pw")
    other.goto("/projects")
    other.get_by_role("link", name="scan-7").click()
    expect(other.locator("h1")).to_contain_text("scan-7")
    expect(other.locator("#access-table")).to_contain_text("team bio-team")
    expect(other.get_by_label("Upload files")).to_have_count(0)
    expect(other.get_by_label("Folder name")).to_have_count(0)
    expect(other.get_by_role("button", name="Grant")).to_have_count(0)
    if ACTIONS["experiment.read_data"] <= Role.VIEWER:
        expect(other.locator('#listing tr[data-path="detector"]')).to_be_visible()
    else:
        expect(other.locator("#no-data-access")).to_be_visible()
