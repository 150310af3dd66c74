"""Create/Edit Job Template in a real browser: inputs and outputs added and removed in
place, an input's settings in its dialog (opened by the pencil, closed by Done or
Escape, focus back on the pencil), the environment version list narrowed to the chosen
environment, and one version per save."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from screens import login, shot
from test_portal import world

pytestmark = pytest.mark.parametrize("gw", ["sqlite"], indirect=True)

SCRIPT = 'echo "$DC_LABEL $DC_N $DC_MODE"\nls "$DC_DATA" "$DC_REF"\nOUT_COUNT=1\nOUT_NOTE=done\n'


def visible_versions(page) -> list[str]:
    return page.locator("#environment_version option:not([hidden])").all_text_contents()


def name_of(page, kind: str, n: int):
    word, prefix = ("Input", "DC_") if kind == "inputs" else ("Output", "OUT_")
    return page.get_by_label(f"{word} {n} name (after {prefix})", exact=True)


def add_input(page, n: int, name: str, kind: str = "string", default: str = "") -> None:
    page.get_by_role("button", name="Add input", exact=True).click()
    expect(name_of(page, "inputs", n)).to_be_focused()  # the new row's name, ready to type
    name_of(page, "inputs", n).fill(name)
    page.get_by_label(f"Input {n} type", exact=True).select_option(kind)
    if default:
        page.get_by_label(f"Input {n} default", exact=True).fill(default)


def test_create_with_five_inputs_and_two_outputs_then_edit_once(gw, portal, new_page):
    world(gw)
    gw.environment("other", public=True)
    gw.ok("POST", "/environments/other/versions", 201, json={"version": "2", "setup": "true"})
    page = new_page(portal)
    login(page, "alice", "alice-pw")
    page.get_by_role("link", name="Create Job Template").first.click()
    expect(page.locator("h1")).to_have_text("Create Job Template")
    # With the script running, rows are added in place: the server's "Add another" is gone.
    expect(page.get_by_role("button", name="Add another input")).to_have_count(0)
    expect(page.locator("#inputs > li")).to_have_count(1)
    expect(page.locator("#outputs > li")).to_have_count(1)

    page.get_by_label("Bash").check()
    page.get_by_label("Name", exact=True).fill("five-inputs")
    page.get_by_label("Description", exact=True).fill("Five inputs, two outputs")
    page.get_by_label("Script", exact=True).fill(SCRIPT)

    # The version list shows the chosen environment's versions, from "latest" again.
    page.get_by_label("Environment", exact=True).select_option("other")
    assert visible_versions(page) == ["latest", "other · 1", "other · 2"]
    page.get_by_label("Environment version").select_option("2")
    page.get_by_label("Environment", exact=True).select_option("base")
    expect(page.get_by_label("Environment version")).to_have_value("")
    assert visible_versions(page) == ["latest", "base · 1"]
    page.get_by_label("Environment version").select_option("1")

    # Inputs: the blank first row, then rows added in place; an extra one removed again.
    name_of(page, "inputs", 1).fill("LABEL")
    add_input(page, 2, "N", "integer", "3")
    add_input(page, 3, "EXTRA")
    add_input(page, 4, "MODE", "choice", "fast")
    add_input(page, 5, "DATA", "path")
    add_input(page, 6, "REF", "path", "refs")

    # MODE's settings, in its dialog: choices show for a choice input only.
    pencil = page.get_by_role("button", name="Settings of input 4", exact=True)
    pencil.click()
    dialog = page.get_by_role("dialog", name="Input DC_MODE settings")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Input 4 choices (comma-separated)").fill("fast, slow")
    dialog.get_by_label("Input 4 description").fill("How hard to try <b>bold</b>")
    shot(page, "template-form")
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    expect(pencil).to_be_focused()
    expect(page.locator("#inputs-3-summary")).to_have_text(
        "choices: fast, slow · How hard to try <b>bold</b>")
    page.get_by_role("button", name="Settings of input 2", exact=True).click()
    expect(page.get_by_role("dialog", name="Input DC_N settings")
           .get_by_label("Input 2 choices (comma-separated)")).to_be_hidden()
    page.keyboard.press("Escape")

    # REF is advanced: set in its dialog, closed with Escape.
    pencil = page.get_by_role("button", name="Settings of input 6", exact=True)
    pencil.click()
    dialog = page.get_by_role("dialog", name="Input DC_REF settings")
    dialog.get_by_label("Input 6 is advanced").check()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(pencil).to_be_focused()
    expect(page.locator("#inputs-5-summary")).to_have_text("advanced")

    # The extra row goes; the rows after it take its number, their settings with them.
    page.get_by_role("button", name="Remove input 3", exact=True).click()
    expect(page.locator("#inputs > li")).to_have_count(5)
    expect(page.locator("#param-status")).to_have_text("Input 3 (EXTRA) removed.")
    expect(name_of(page, "inputs", 3)).to_have_value("MODE")
    expect(page.get_by_role("button", name="Remove input 3", exact=True)).to_be_focused()
    page.get_by_role("button", name="Settings of input 3", exact=True).click()
    dialog = page.get_by_role("dialog", name="Input DC_MODE settings")
    expect(dialog.get_by_label("Input 3 choices (comma-separated)")).to_have_value("fast, slow")
    dialog.get_by_role("button", name="Done").click()
    expect(name_of(page, "inputs", 5)).to_have_value("REF")
    expect(page.get_by_label("Input 6 name (after DC_)", exact=True)).to_have_count(0)

    # Outputs: the blank first row, one added, one more added and removed.
    name_of(page, "outputs", 1).fill("COUNT")
    page.get_by_label("Output 1 description", exact=True).fill("how many")
    for n, name in ((2, "NOTE"), (3, "GONE")):
        page.get_by_role("button", name="Add output", exact=True).click()
        name_of(page, "outputs", n).fill(name)
    page.get_by_role("button", name="Remove output 3", exact=True).click()
    expect(page.locator("#outputs > li")).to_have_count(2)
    expect(page.get_by_role("button", name="Remove output 2", exact=True)).to_be_focused()

    page.get_by_role("button", name="Create template").click()
    expect(page).to_have_url(re.compile(r"/templates/\d+$"))
    template_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("h1")).to_contain_text("five-inputs")
    inputs = page.locator("table", has=page.locator("th", has_text="Advanced")).locator("tbody tr")
    expect(inputs).to_have_count(5)
    expect(inputs.nth(2)).to_contain_text("DC_MODE")
    expect(inputs.nth(2)).to_contain_text("How hard to try <b>bold</b>")  # as text
    expect(page.locator("h2:text-is('Outputs') + ul > li")).to_have_count(2)
    d = gw.ok("GET", f"/templates/{template_id}")
    assert [i["name"] for i in d["inputs"]] == ["DC_LABEL", "DC_N", "DC_MODE", "DC_DATA", "DC_REF"]
    assert [i["type"] for i in d["inputs"]] == ["string", "integer", "choice", "path", "path"]
    assert [i["advanced"] for i in d["inputs"]] == [False, False, False, False, True]
    assert d["inputs"][2]["choices"] == ["fast", "slow"] and d["inputs"][1]["default"] == "3"
    assert [o["name"] for o in d["outputs"]] == ["OUT_COUNT", "OUT_NOTE"]
    assert (d["environment"], d["environment_version"], d["latest_version"]) == ("base", "1", 1)

    # Edit once: one new version, whatever changed.
    page.get_by_role("link", name="EDIT TEMPLATE").click()
    expect(page.locator("#inputs > li")).to_have_count(5)
    expect(page.locator("#inputs-4-summary")).to_have_text("advanced")
    assert visible_versions(page) == ["latest", "base · 1"]
    expect(page.get_by_label("Environment version")).to_have_value("1")
    page.get_by_label("Input 2 default", exact=True).fill("4")
    page.get_by_role("button", name="Remove output 2", exact=True).click()
    page.get_by_role("button", name="Save new version").click()
    expect(page).to_have_url(re.compile(rf"/templates/{template_id}$"))
    expect(page.locator("p.flash")).to_have_text("Saved as version 2.")
    expect(page.locator("#versions")).to_contain_text("version 2")
    expect(page.locator("#versions")).not_to_contain_text("version 3")
    d = gw.ok("GET", f"/templates/{template_id}")
    assert [v["version"] for v in d["versions"]] == [1, 2]
    assert d["inputs"][1]["default"] == "4" and [o["name"] for o in d["outputs"]] == ["OUT_COUNT"]


def test_refused_setting_opens_its_dialog_and_the_summary_counts(gw, portal, new_page):
    world(gw)
    page = new_page(portal)
    login(page, "alice", "alice-pw")
    page.goto("/templates/new")
    page.get_by_label("Name", exact=True).fill("refused")
    page.get_by_label("Script", exact=True).fill("true\n")
    name_of(page, "inputs", 1).fill("MODE")
    page.get_by_label("Input 1 type", exact=True).select_option("choice")  # and no choices
    page.get_by_role("button", name="Add input", exact=True).click()
    page.get_by_label("Input 2 default", exact=True).fill("something")  # but no name
    page.get_by_role("button", name="Create template").click()
    expect(page.locator("#form-problems")).to_contain_text("2 problems")
    dialog = page.get_by_role("dialog", name="Input DC_MODE settings")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#err-inputs-0-choices")).to_have_text("List the choices, separated by commas.")
    expect(dialog.get_by_label("Input 1 choices (comma-separated)")).to_have_attribute(
        "aria-describedby", "err-inputs-0-choices")
    dialog.get_by_label("Input 1 choices (comma-separated)").fill("a, b")
    dialog.get_by_label("Input 1 choices (comma-separated)").press("Enter")  # closes it, saves nothing
    expect(dialog).to_be_hidden()
    expect(page.locator("#inputs-0-summary")).to_have_text("choices: a, b")
    expect(page.locator("#err-inputs-1-name")).to_have_text("Give this input a name, or remove the row.")
    expect(name_of(page, "inputs", 2)).to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Remove input 2", exact=True).click()
    page.get_by_role("button", name="Create template").click()
    expect(page).to_have_url(re.compile(r"/templates/\d+$"))


def test_the_form_works_without_javascript(gw, portal, browser):
    world(gw)
    context = browser.new_context(base_url=portal, java_script_enabled=False)
    try:
        page = context.new_page()
        login(page, "alice", "alice-pw")
        page.goto("/templates/new")
        # Settings show under their row; rows are added by the server.
        expect(page.get_by_label("Input 1 description", exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="Settings of input 1")).to_be_hidden()
        page.get_by_label("Name", exact=True).fill("no-script")
        page.get_by_label("Script", exact=True).fill("true\n")
        name_of(page, "inputs", 1).fill("A")
        page.get_by_role("button", name="Add another input").click()
        name_of(page, "inputs", 2).fill("B")
        page.get_by_label("Input 2 is advanced").check()
        page.get_by_role("button", name="Create template").click()
        expect(page).to_have_url(re.compile(r"/templates/\d+$"))
        d = gw.ok("GET", f"/templates/{page.url.rsplit('/', 1)[1]}")
        assert [(i["name"], i["advanced"]) for i in d["inputs"]] == [("DC_A", False), ("DC_B", True)]
    finally:
        context.close()
