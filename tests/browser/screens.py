"""Shared bits of the browser tests: where chromium is, and the docs screenshots."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shot(page, name: str) -> None:
    """A screenshot of a main page: into docs/ with GATEWAY_SCREENSHOTS=1 (to refresh
    the README's pictures), else into a temporary folder."""
    target = DOCS if os.environ.get("GATEWAY_SCREENSHOTS") else Path(tempfile.gettempdir()) / "gateway-shots"
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"), full_page=True)
