"""The README's first command, as a new person would use it: `scripts/up` brings the
gateway up with demo data, its printed token works, and alice (from the directory)
logs in through the API and through the portal in chromium. Run on Debian 12 by
scripts/test and on Debian 13 by scripts/test-debian13, so both stay true."""
from __future__ import annotations

import json
import pwd
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
UP = str(ROOT / "scripts" / "up")
PORT = 18080  # not the README's 8080, which a developer's own `scripts/up` may hold


@pytest.fixture
def up():
    proc = subprocess.run([UP, "--port", str(PORT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    try:
        yield proc.stdout
    finally:
        subprocess.run([UP, "--stop"], capture_output=True, timeout=60)


def _api(path: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}/api/v1{path}",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_scripts_up_then_alice_logs_in_by_api_and_portal(up, new_page):
    assert f"The gateway is up at http://127.0.0.1:{PORT}" in up
    token = re.search(r"^\s+(gw_\S+)$", up, re.M).group(1)
    status, licenses = _api("/licenses", token)
    assert status == 200 and "demo-lab" in {lic["name"] for lic in licenses}
    status, templates = _api("/templates", token)
    assert status == 200 and templates, templates

    # The directory over StartTLS to an IP address (the dev config's ldap://127.0.0.1).
    status, me = _api("/auth/token", body={"username": "alice", "password": "alice-pw"})
    assert status == 201, me
    status, me = _api("/me", me["token"])
    assert status == 200 and me["username"] == "alice" and me["source"] == "ldap"
    status, err = _api("/auth/token", body={"username": "alice", "password": "nope"})
    assert status == 401 and err["field"] == "password"

    page = new_page(f"http://127.0.0.1:{PORT}")
    page.goto("/login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-pw")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/jobs$"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.goto("/templates")
    expect(page.get_by_text("line-count").first).to_be_visible()

    # The gateway it started runs as the service user, and keeps its state private.
    pid = Path("/var/lib/gateway-dev/gateway/gateway.pid").read_text().strip()
    status = Path(f"/proc/{pid}/status").read_text()
    euid = int(re.search(r"^Uid:\s+\d+\s+(\d+)", status, re.M).group(1))
    assert euid == pwd.getpwnam("gateway").pw_uid
    state = Path("/var/lib/gateway-dev/gateway")
    for private in ("gateway.db", "secret_key", "gateway.log", "store"):
        assert (state / private).stat().st_mode & 0o077 == 0, private
    # alice's associations with her licences came from the gateway (the dev setup makes
    # none); carol, dave and erin are not in xray-lab's team, so Slurm refuses them.
    assocs = subprocess.run(["sacctmgr", "-n", "-P", "show", "assoc", "format=user,account"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert {"alice|demo_lab", "alice|xray_lab"} <= set(assocs), assocs
    assert not {"carol|xray_lab", "dave|xray_lab", "erin|xray_lab"} & set(assocs), assocs
