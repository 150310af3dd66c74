"""A real browser (Debian's chromium, driven by Playwright) against `gateway serve` with
its poller, on loopback, with the dev cluster and the directory behind it."""
from __future__ import annotations

import os

import pytest
from screens import CHROMIUM

from tests.conftest import served


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"chromium is not installed at {CHROMIUM} (scripts/install installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"])
        yield b
        b.close()


@pytest.fixture
def portal(gw):
    """The gateway of the `gw` fixture served with its poller, so pages update by themselves."""
    with served(gw, poller=True) as url:
        yield url


@pytest.fixture
def new_page(browser):
    """Pages in fresh browser contexts; any Content-Security-Policy violation a page
    reports (an inline script or style the portal's CSP blocks) fails the test."""
    contexts, violations = [], []

    def watch(msg):
        if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
            violations.append(msg.text)

    def make(base_url: str):
        ctx = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
        ctx.set_default_timeout(20_000)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("console", watch)
        return page

    yield make
    for c in contexts:
        c.close()
    assert not violations, violations
