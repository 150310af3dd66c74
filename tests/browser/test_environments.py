"""Environments in a real browser: a directory person creates one with set-up lines,
adds a version, sees the lines highlighted as bash, makes it public and grants a team
access; a member of that team then finds it, without the owner's controls."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from screens import login, shot

from tests.conftest import sign_in_from_directory

pytestmark = pytest.mark.parametrize("gw", ["sqlite"], indirect=True)

FIRST = 'module load samtools/1.19\nexport SAMTOOLS_THREADS=4\necho "using $SAMTOOLS_THREADS threads"'
SECOND = ('module load samtools/1.20\nexport SAMTOOLS_THREADS=8\n'
          'if [ -d "$HOME/refs" ]; then export REFS="$HOME/refs"; fi  # local references')


def test_create_version_highlight_publish_share(gw, portal, new_page):
    sign_in_from_directory(gw, "alice", "bob")  # both in xray-team
    page = new_page(portal)
    login(page, "alice", "alice-pw")
    page.get_by_role("link", name="Environments").click()
    expect(page).to_have_url(re.compile(r"/environments$"))
    expect(page.locator("#environments-empty")).to_be_visible()

    page.get_by_label("Environment name").fill("samtools")
    page.get_by_label("Description").fill("Sequence alignment tools <b>1.19</b>")
    page.get_by_label("Set-up lines of the first version").fill(FIRST)
    page.get_by_role("button", name="Create environment").click()
    expect(page).to_have_url(re.compile(r"/environments/samtools$"))
    expect(page.locator("p.flash")).to_have_text("Environment samtools created.")
    expect(page.locator("#environment-description")).to_have_text("Sequence alignment tools <b>1.19</b>")
    expect(page.locator("#environment-visibility")).to_have_text("private")

    # A second version, from the form's suggested label and the last version's lines.
    expect(page.get_by_label("Version", exact=True)).to_have_value("2")
    expect(page.get_by_label("Set-up lines", exact=True)).to_have_value(FIRST)
    page.get_by_label("Set-up lines", exact=True).fill(SECOND)
    page.get_by_role("button", name="Add version").click()
    expect(page).to_have_url(re.compile(r"/environments/samtools#version-2$"))
    expect(page.locator("p.flash")).to_have_text("Version 2 added.")
    sections = page.locator("#versions section.env-version")
    expect(sections).to_have_count(2)
    expect(sections.first).to_have_attribute("id", "version-2")  # newest first

    # Highlighted by highlight.js: the code element gets its class and token spans, and
    # its text is still exactly the set-up lines.
    for section, lines in (("#version-2", SECOND), ("#version-1", FIRST)):
        code = page.locator(f"{section} pre code.language-bash")
        expect(code).to_have_class(re.compile(r"\bhljs\b"))
        assert code.locator("span[class^='hljs-']").count() >= 3
        assert code.text_content() == lines
    expect(page.locator("#version-2 .hljs-comment")).to_have_text("# local references")
    expect(page.locator("#version-2 .hljs-string").first).to_be_visible()

    page.get_by_role("button", name="Make public").click()
    expect(page.locator("p.flash")).to_have_text("Environment samtools is now public.")
    expect(page.locator("#environment-visibility")).to_have_text("public")
    expect(page.get_by_role("button", name="Make private")).to_be_visible()

    page.get_by_label("or team").select_option("xray-team")
    page.get_by_label("Role").select_option("manager")
    page.get_by_role("button", name="Grant").click()
    expect(page.locator("p.flash")).to_have_text("Access granted.")
    expect(page.locator("#access-table")).to_contain_text("team xray-team")
    shot(page, "environment")

    page.goto("/environments")
    row = page.locator("#environments tbody tr", has_text="samtools")
    expect(row).to_contain_text("public")
    expect(row.locator("td").nth(3)).to_have_text("2")
    expect(row.locator("td").nth(4)).to_have_text("2")

    # bob, of xray-team, now manages it: he finds it and may add versions and share it.
    other = new_page(portal)
    login(other, "bob", "bob-pw")
    other.goto("/environments")
    other.get_by_role("link", name="samtools").click()
    expect(other.locator("#version-2 pre code.hljs")).to_be_visible()
    expect(other.get_by_role("button", name="Add version")).to_be_visible()
    expect(other.locator("#grant-form")).to_be_visible()
