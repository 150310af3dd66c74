"""One login path for the API, the CLI and the portal: LDAP first, then local accounts."""
from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

from .. import fences, teams
from ..context import Context
from ..db import database, utcnow
from ..errors import Unauthorized, ValidationError
from ..models import User
from . import throttle
from .ldap import BAD_CREDENTIALS, CREDENTIALS_FIELD, LdapPerson, authenticate


def set_local_password(user: User, password: str) -> None:
    if not isinstance(password, str) or len(password) < 8:
        raise ValidationError("must be at least 8 characters", "password")
    user.password_hash = generate_password_hash(password)
    user.save()


def _sync_ldap_user(person: LdapPerson) -> tuple[User, bool]:
    """Create or refresh the gateway user and their LDAP teams (exactly the directory's);
    says whether what they may reach could have changed (new, other teams, other uid)."""
    with database.atomic():
        user = User.get_or_none(User.username == person.username)
        changed = user is None or user.uid_number != person.uid_number
        if user is None:
            user = User.create(username=person.username, source="ldap")
        elif user.source != "ldap":
            raise Unauthorized(f"{person.username!r} is a local account; log in with its local password",
                               "username")
        user.display_name = person.display_name
        user.email = person.email
        user.uid_number, user.gid_number = person.uid_number, person.gid_number
        user.last_login_at = utcnow()
        user.save()
        changed = teams.sync_ldap_teams(user, person.groups) or changed
    return user, changed


def _check(ctx: Context, username: str, password: str) -> User:
    config = ctx.config
    local = User.get_or_none(User.username == username.strip())
    if local is not None and local.source == "local":
        if local.password_hash and check_password_hash(local.password_hash, password):
            User.update(last_login_at=utcnow()).where(User.id == local.id).execute()
            return local
        raise Unauthorized(BAD_CREDENTIALS, CREDENTIALS_FIELD)
    if not config.ldap.enabled:
        raise Unauthorized(BAD_CREDENTIALS, CREDENTIALS_FIELD)
    user, changed = _sync_ldap_user(authenticate(config.ldap, username, password))
    if changed:
        fences.follow(ctx)
    return user


def login(ctx: Context, username, password, address: str | None = None) -> User:
    """Check credentials; return the user. Errors name the field; nothing is half-done.

    An unknown person and a wrong password get the same answer. Failures are counted
    per username and per client ``address``; past the limit every attempt is refused
    with 429 for a while, before the directory is even asked.
    """
    if not isinstance(username, str) or not username.strip():
        raise Unauthorized("a username is required", "username")
    if not isinstance(password, str) or password == "":
        raise Unauthorized("a password is required", "password")
    throttle.check(username, address)
    try:
        user = _check(ctx, username, password)
    except Unauthorized as e:
        if e.message == BAD_CREDENTIALS:
            throttle.failed(username, address)
        raise
    throttle.succeeded(username)
    return user
