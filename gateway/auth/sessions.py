"""Browser sessions that the server can end.

The signed session cookie carries a random session id; only its SHA-256 is kept in the
database. Logout deletes it, so the cookie, or a copy of it, stops working at once
(a signed cookie alone would stay valid until the secret changes).
"""
from __future__ import annotations

from datetime import timedelta

from ..db import utcnow
from ..models import User, WebSession
from ..tokens import hash_token, new_token

LIFETIME = timedelta(hours=12)


def start(user: User) -> str:
    now = utcnow()
    WebSession.delete().where(WebSession.expires_at < now).execute()
    sid = new_token()
    WebSession.create(sid_hash=hash_token(sid), user=user, created_at=now, expires_at=now + LIFETIME)
    return sid


def valid(sid, user_id: int) -> bool:
    if not isinstance(sid, str) or not sid:
        return False
    row = WebSession.get_or_none(WebSession.sid_hash == hash_token(sid))
    return row is not None and row.user_id == user_id and row.expires_at > utcnow()


def end(sid) -> None:
    if isinstance(sid, str) and sid:
        WebSession.delete().where(WebSession.sid_hash == hash_token(sid)).execute()
