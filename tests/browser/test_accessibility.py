"""The main pages in a real browser checked by axe-core (the accessibility engine
browsers' own tools use): no serious or critical violations; and on a laptop screen
(1024 px wide) no page needs sideways scrolling."""
from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from screens import login
from test_portal import world

from gateway.auth.login import set_local_password

pytestmark = pytest.mark.parametrize("gw", ["sqlite"], indirect=True)

SERIOUS = {"serious", "critical"}


def main_pages(gw) -> list[str]:
    """A world with something on every page: a template with a run, a project's data,
    an environment, a licence."""
    world(gw)
    tpl = gw.template(name="a11y", script='echo "$DC_N"\nOUT_N=$DC_N\n', outputs=[{"name": "OUT_N"}],
                      inputs=[{"name": "DC_DATA", "type": "path", "default": "raw"},
                              {"name": "DC_N", "type": "integer", "default": 2},
                              {"name": "DC_MODE", "type": "choice", "choices": ["a", "b"], "default": "a",
                               "advanced": True}])
    gw.ok("POST", f"/templates/{tpl['id']}/access", 201, json={"user": "alice", "role": "member"})
    job = gw.run(tpl["id"], project="lab", experiment="run1")
    gw.wait(job["id"])
    t = tpl["id"]
    return ["/jobs", "/jobs?scope=all", f"/jobs/{job['id']}", "/templates", f"/templates/{t}",
            "/templates/new", f"/templates/{t}/edit", f"/templates/{t}/run", "/projects", "/projects/lab",
            "/projects/lab/experiments/run1", "/projects/lab/experiments/run1?path=raw", "/environments",
            "/environments/base", "/licenses", "/licenses/test-lab", "/licenses/tiny-lab", "/tokens"]


def serious_violations(page) -> list[str]:
    results = Axe().run(page)
    assert results.response["testEngine"]["name"] == "axe-core"  # it did run, on this page
    assert results.response["url"] == page.url
    found = []
    for v in results.response["violations"]:
        if v.get("impact") in SERIOUS:
            targets = [", ".join(n["target"]) for n in v["nodes"]][:5]
            found.append(f"{page.url}: {v['id']} ({v['impact']}): {v['help']} at {targets}")
    return found


def test_main_pages_have_no_serious_accessibility_violations(gw, portal, new_page):
    pages = main_pages(gw)
    page = new_page(portal)
    page.goto("/login")
    found = serious_violations(page)
    set_local_password(gw.admin, "admin-password-1")  # the owner of everything in `world`
    login(page, "admin", "admin-password-1")
    expect(page.locator("header nav")).to_be_visible()
    for path in pages:
        page.goto(path)
        expect(page.locator("main h1").first).to_be_visible()
        found += serious_violations(page)
    assert not found, "\n".join(found)


def test_main_pages_fit_a_laptop_screen(gw, portal, new_page):
    pages = main_pages(gw)
    page = new_page(portal)
    page.set_viewport_size({"width": 1024, "height": 700})
    login(page, "alice", "alice-pw")
    wide = []
    for path in pages:
        page.goto(path)
        expect(page.locator("main h1").first).to_be_visible()
        excess = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if excess > 0:
            wide.append(f"{path}: {excess} px too wide")
    assert not wide, wide
