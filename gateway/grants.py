"""Manage Access: grant and revoke roles on an object to people and teams."""
from __future__ import annotations

from peewee import JOIN

from . import access, fences, licenses, teams
from .access import ROLE_NAMES
from .context import Context
from .db import database, iso
from .errors import ValidationError
from .models import Grant, Team, User
from .validation import require_dict


def _principal(body: dict) -> tuple[User | None, Team | None]:
    user_name, team_name = body.get("user"), body.get("team")
    if bool(user_name) == bool(team_name):
        raise ValidationError("give exactly one of 'user' or 'team'", "user")
    if user_name:
        if not isinstance(user_name, str):
            raise ValidationError("must be a user name", "user")
        user = User.get_or_none(User.username == user_name)
        if user is None:
            raise ValidationError(f"unknown user {user_name!r}", "user")
        return user, None
    if not isinstance(team_name, str):
        raise ValidationError("must be a team name", "team")
    team = teams.find_team(team_name)
    if team is None:
        raise ValidationError(f"unknown team {team_name!r}", "team")
    return None, team


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _grant_query(kind: str, key: str, user: User | None, team: Team | None):
    return Grant.select().where(
        Grant.kind == kind, Grant.object_key == key,
        (Grant.user == user) if user else Grant.user.is_null(),
        (Grant.team == team) if team else Grant.team.is_null())


def list_access(actor: User, obj) -> list[dict]:
    kind = access.KIND_OF[type(obj).__name__]
    access.require(actor, f"{kind}.view", obj, kind)
    rows = (Grant.select(Grant, User, Team).join(User, on=(Grant.user == User.id), join_type=JOIN.LEFT_OUTER)
            .switch(Grant).join(Team, on=(Grant.team == Team.id), join_type=JOIN.LEFT_OUTER)
            .where(Grant.kind == kind, Grant.object_key == access.object_key(obj))
            .order_by(Grant.id))
    out = []
    owner = getattr(obj, "owner", None)
    if owner is not None:
        out.append({"user": owner.username, "team": None, "role": "owner", "source": "creator"})
    if kind == "license":  # its sponsor and members, as the site config names them
        out += licenses.config_access(obj)
    for g in rows:
        out.append({"user": g.user.username if g.user_id else None,
                    "team": g.team.name if g.team_id else None, "role": g.role,
                    "source": "grant", "created_at": iso(g.created_at)})
    return out


def grant(ctx: Context, actor: User, obj, body: dict) -> dict:
    require_dict(body)
    kind = access.KIND_OF[type(obj).__name__]
    access.require(actor, f"{kind}.manage_access", obj, kind)
    role_name = body.get("role")
    if role_name not in ROLE_NAMES:
        raise ValidationError(f"must be one of {list(ROLE_NAMES)}", "role")
    access.require(actor, access.granting(kind, role_name), obj, kind, "role")
    user, team = _principal(body)
    key = access.object_key(obj)
    with database.atomic():
        existing = _grant_query(kind, key, user, team).first()
        if existing is not None:  # changing a role is taking the old one away too
            access.require(actor, access.granting(kind, existing.role), obj, kind, "role")
        if existing is None:
            Grant.create(kind=kind, object_key=key, user=user, team=team, role=role_name,
                         granted_by=actor)
        else:
            Grant.update(role=role_name, granted_by=actor).where(Grant.id == existing.id).execute()
    access.forget_grants(actor)
    _follow(ctx, obj, kind)
    return {"user": user.username if user else None, "team": team.name if team else None,
            "role": role_name}


def revoke(ctx: Context, actor: User, obj, body: dict) -> None:
    require_dict(body)
    kind = access.KIND_OF[type(obj).__name__]
    access.require(actor, f"{kind}.manage_access", obj, kind)
    try:
        user, team = _principal(body)
    except ValidationError:
        if kind == "license" and bool(body.get("user")) != bool(body.get("team")):
            # someone the config names may never have signed in
            licenses.refuse_config_revoke(obj, _text(body.get("user")), _text(body.get("team")))
        raise
    existing = _grant_query(kind, access.object_key(obj), user, team).first()
    if existing is None and kind == "license":  # the role comes from the config only
        licenses.refuse_config_revoke(obj, user and user.username, team and team.name)
    if existing is None:
        raise ValidationError("has no grant on this object", "user" if user else "team")
    access.require(actor, access.granting(kind, existing.role), obj, kind, "role")
    existing.delete_instance()
    access.forget_grants(actor)
    _follow(ctx, obj, kind)


def _follow(ctx: Context, obj, kind: str) -> None:
    """Data on disk follows grants on a project or experiment (that project's folders
    only), licences in Slurm grants on a licence; templates and environments live only
    in the gateway."""
    if kind in ("project", "experiment"):
        fences.follow(ctx, slurm=False, project=obj if kind == "project" else obj.project)
    elif kind == "license":
        fences.follow(ctx, disk=False)
