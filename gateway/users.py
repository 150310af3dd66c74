"""Local user accounts and API tokens (stored hashed, shown once)."""
from __future__ import annotations

import re

from .db import iso, utcnow
from .errors import Conflict, NotFound, Unauthorized, ValidationError
from .models import ApiToken, User
from .tokens import hash_token, new_token
from .validation import by_id

USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,63}$")
TOKEN_PREFIX = "gw_"


def unix_user_for(config, user: User) -> str:
    """The Unix user a person's jobs run as: themselves (their LDAP uid) when the site
    submits as the user and they have a Unix identity, else the configured job user."""
    if config.slurm.submit_as_user and user.uid_number is not None:
        return user.username
    return config.slurm.job_user


def add_user(username: str, is_admin: bool = False, display_name: str = "") -> User:
    if not USERNAME_RE.match(username or ""):
        raise ValidationError("must be lower-case letters, digits, '_', '.', '-' (max 64)", "username")
    if User.select().where(User.username == username).exists():
        raise Conflict(f"user {username!r} already exists", "username")
    return User.create(username=username, is_admin=is_admin, display_name=display_name)


def get_user(username: str) -> User:
    user = User.get_or_none(User.username == username)
    if user is None:
        raise NotFound(f"no user {username!r}", "username")
    return user


def create_token(user: User, name: str = "") -> str:
    """Create an API token for ``user`` and return it; only its hash is stored."""
    token = new_token(TOKEN_PREFIX)
    ApiToken.create(user=user, name=name, token_hash=hash_token(token))
    return token


def list_tokens(user: User) -> list[ApiToken]:
    return list(user.tokens.order_by(ApiToken.id))


def revoke_token(user: User, token_id) -> None:
    row = by_id(ApiToken, token_id, ApiToken.user == user)
    if row is None:
        raise NotFound(f"you have no token {token_id}", "token")
    if row.revoked_at is None:
        ApiToken.update(revoked_at=utcnow()).where(ApiToken.id == row.id).execute()


def token_dict(t: ApiToken) -> dict:
    return {"id": t.id, "name": t.name, "created_at": iso(t.created_at),
            "last_used_at": iso(t.last_used_at), "revoked_at": iso(t.revoked_at)}


def user_for_token(token: str) -> User:
    if not token:
        raise Unauthorized("missing bearer token")
    row = (ApiToken.select(ApiToken, User).join(User)
           .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_null())
           .first())
    if row is None:
        raise Unauthorized("invalid or revoked token")
    now = utcnow()
    # Writing on every request would serialise readers on SQLite; a minute's precision is plenty.
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        ApiToken.update(last_used_at=now).where(ApiToken.id == row.id).execute()
    return row.user
