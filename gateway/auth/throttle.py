"""Failed logins are throttled per username and per client address.

Kept in the database, so every gunicorn worker and every gateway sharing the database
counts the same failures. A username that failed too often is refused for a while
whatever the password, so a guesser learns nothing more; a client address that failed
too often (many usernames) is refused as well. A successful login clears its
username's count.
"""
from __future__ import annotations

import math
from datetime import timedelta

from ..db import utcnow
from ..errors import TooManyRequests
from ..models import LoginFailure

WINDOW = timedelta(minutes=5)
LIMITS = {"user": 5, "addr": 20}  # failures per WINDOW


def _keys(username: str, address: str | None) -> list[str]:
    keys = [f"user:{username.strip().lower()[:64]}"]
    if address:
        keys.append(f"addr:{address[:64]}")
    return keys


def check(username: str, address: str | None) -> None:
    """Raise TooManyRequests (with the seconds to wait) if a key is over its limit."""
    now = utcnow()
    for key in _keys(username, address):
        limit = LIMITS[key.split(":", 1)[0]]
        recent = (LoginFailure.select(LoginFailure.at).where(LoginFailure.key == key,
                                                              LoginFailure.at > now - WINDOW)
                  .order_by(LoginFailure.at.desc()).limit(limit))
        times = [r.at for r in recent]
        if len(times) >= limit:
            wait = math.ceil((times[-1] + WINDOW - now).total_seconds())
            what = "this username" if key.startswith("user:") else "this address"
            raise TooManyRequests(f"too many failed logins for {what}: try again in {max(1, wait)} s",
                                  "username", retry_after=max(1, wait))


def failed(username: str, address: str | None) -> None:
    now = utcnow()
    LoginFailure.delete().where(LoginFailure.at < now - WINDOW).execute()
    LoginFailure.insert_many([{"key": k, "at": now} for k in _keys(username, address)]).execute()


def succeeded(username: str) -> None:
    LoginFailure.delete().where(LoginFailure.key == _keys(username, None)[0]).execute()
