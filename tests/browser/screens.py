"""Shared bits of the browser tests: where chromium is, signing in, and the docs screenshots."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shot(page, name: str) -> None:
    """A screenshot of a main page: into docs/ with GATEWAY_SCREENSHOTS=1 (to refresh
    the README's pictures), else into a temporary folder."""
    target = DOCS if os.environ.get("GATEWAY_SCREENSHOTS") else Path(tempfile.gettempdir()) / "gateway-shots"
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"), full_page=True)


def login(page, username: str, password: str) -> None:
    """Sign in through the login page (the outcome is the caller's to check)."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def login_from_directory(page, username: str) -> None:
    """Sign in as a person of the dev directory (password NAME-pw); lands on Jobs."""
    login(page, username, f"{username}-pw")
    expect(page).to_have_url(re.compile(r"/jobs"))
