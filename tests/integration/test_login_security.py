"""Logging in and staying logged in, against the real directory: guessing is throttled,
the answer never tells an unknown person from a wrong password, logout ends the
session on the server, cookies and pages carry the browser protections."""
from __future__ import annotations

import re
from dataclasses import replace

import pytest

from gateway.auth import throttle


@pytest.fixture
def gw(gw):
    from gateway.models import User

    User.delete().where(User.username.in_(["alice", "bob"])).execute()  # the directory's own
    return gw


def login(client, username, password, path="/api/v1/auth/login"):
    return client.post(path, json={"username": username, "password": password})


def test_an_unknown_person_and_a_wrong_password_get_the_same_answer(gw):
    c = gw.app.test_client()
    unknown, wrong = login(c, "nobody-here", "x-pw"), login(c, "alice", "x-pw")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json == wrong.json == {"error": "invalid username or password", "field": "password"}


def test_guessing_one_persons_password_is_throttled(gw):
    c = gw.app.test_client()
    for _ in range(throttle.LIMITS["user"]):
        assert login(c, "alice", "guess").status_code == 401
    r = login(c, "alice", "alice-pw")  # even the right password, for now
    assert r.status_code == 429 and r.json["field"] == "username"
    assert 0 < int(r.headers["Retry-After"]) <= throttle.WINDOW.total_seconds()
    assert login(c, "alice", "alice-pw", path="/api/v1/auth/token").status_code == 429
    assert login(c, "bob", "bob-pw").status_code == 200  # others are not locked out
    # The portal's form is the same door.
    form = c.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form).group(1)
    page = c.post("/login", data={"username": "alice", "password": "alice-pw", "csrf_token": token})
    assert page.status_code == 429 and "Retry-After" in page.headers


def test_a_success_clears_the_count(gw):
    c = gw.app.test_client()
    for _ in range(2):
        for _ in range(throttle.LIMITS["user"] - 1):
            assert login(c, "carol", "guess").status_code == 401
        assert login(c, "carol", "carol-pw").status_code == 200


def test_trying_many_usernames_from_one_address_is_throttled(gw):
    c = gw.app.test_client()
    for i in range(throttle.LIMITS["addr"]):
        assert login(c, f"user{i}", "guess").status_code == 401
    r = login(c, "dave", "dave-pw")
    assert r.status_code == 429 and "address" in r.json["error"]
    other = gw.app.test_client()
    r = other.post("/api/v1/auth/login", json={"username": "dave", "password": "dave-pw"},
                   environ_base={"REMOTE_ADDR": "127.0.0.2"})
    assert r.status_code == 200


def test_logout_ends_the_session_for_every_copy_of_the_cookie(gw):
    c = gw.app.test_client()
    assert login(c, "alice", "alice-pw").status_code == 200
    cookie = c.get_cookie("session")
    thief = gw.app.test_client()
    thief.set_cookie("session", cookie.value)
    assert thief.get("/api/v1/me").json["username"] == "alice"
    assert c.post("/api/v1/auth/logout").status_code == 200
    assert c.get("/api/v1/me").status_code == 401
    assert thief.get("/api/v1/me").status_code == 401  # the copied cookie is dead too
    assert thief.get("/jobs").status_code in (302, 401)


def test_session_cookies_and_security_headers(gw):
    c = gw.app.test_client()
    r = login(c, "alice", "alice-pw")
    set_cookie = r.headers["Set-Cookie"]
    assert "SameSite=Lax" in set_cookie and "HttpOnly" in set_cookie and "Secure" not in set_cookie
    for response in (r, c.get("/jobs"), c.get("/api/v1/me"), c.get("/login")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    page_csp = c.get("/jobs").headers["Content-Security-Policy"]
    assert "script-src 'self'" in page_csp and "unsafe-inline" not in page_csp


def test_cookies_are_secure_behind_https(gw):
    from gateway import create_app

    app = create_app(replace(gw.config, public_url="https://gateway.example.org"), context=gw.ctx)
    r = login(app.test_client(), "alice", "alice-pw")
    assert "Secure" in r.headers["Set-Cookie"]


def test_an_empty_authorization_header_does_not_skip_the_csrf_check(gw):
    c = gw.app.test_client()
    assert login(c, "alice", "alice-pw").status_code == 200
    r = c.post("/api/v1/tokens", json={"name": "sneaky"}, headers={"Authorization": ""})
    assert r.status_code == 403 and "CSRF" in r.json["error"]
    r = c.post("/api/v1/tokens", json={"name": "sneaky"}, headers={"Authorization": "   "})
    assert r.status_code in (401, 403)
    assert c.get("/api/v1/tokens").json == []


def test_a_cookie_forged_with_the_secret_key_is_not_a_session(gw):
    """Had a job leaked the secret key, a cookie signed with it claiming to be the admin
    would have been the admin. Sessions now live on the server too: a validly signed
    cookie whose session the server never started is nobody."""
    app = gw.app
    serializer = app.session_interface.get_signing_serializer(app)
    for claim in ({"_user_id": str(gw.admin.id), "_fresh": True},
                  {"_user_id": str(gw.admin.id), "_fresh": True, "sid": "made-up-session-id"}):
        forged = serializer.dumps(claim)
        c = gw.app.test_client()
        c.set_cookie("session", forged)
        assert c.get("/api/v1/me").status_code == 401
        assert c.get("/jobs").status_code == 302  # to the login page
    # The same signing with a real login's session id is accepted (the check is the sid).
    c = gw.app.test_client()
    assert login(c, "alice", "alice-pw").status_code == 200
    assert c.get("/api/v1/me").json["username"] == "alice"
