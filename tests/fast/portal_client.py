"""A signed-in browser for the fast tier's portal tests: the Flask test client with a
session and its CSRF token, and the two requests every page test makes."""
from __future__ import annotations

import re

from gateway.auth.login import set_local_password


def session(gw, user, password="a-long-password"):
    set_local_password(user, password)
    client = gw.app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": user.username, "password": password, "csrf_token": token})
    assert r.status_code == 302, r.get_data(as_text=True)
    # A login starts a new session, with a new CSRF secret: the login page's token is
    # spent, the pages after it carry the new one.
    page = client.get("/tokens").get_data(as_text=True)
    fresh = re.search(r'name="csrf-token" content="([^"]+)"|name="csrf_token" value="([^"]+)"', page)
    assert fresh and (fresh.group(1) or fresh.group(2)) != token
    return client, fresh.group(1) or fresh.group(2)


def get_page(client, path: str, expect: int = 200) -> str:
    """The page at ``path`` as text, after checking its status."""
    r = client.get(path)
    assert r.status_code == expect, (path, r.status_code, r.get_data(as_text=True)[:800])
    return r.get_data(as_text=True)


def post(client, token: str | None, path: str, data: dict, expect: int = 302, **kwargs):
    """A form post with the session's CSRF token (``token`` None: without one)."""
    r = client.post(path, data={**data, "csrf_token": token} if token else data, **kwargs)
    assert r.status_code == expect, (path, r.status_code, r.get_data(as_text=True)[:800])
    return r
