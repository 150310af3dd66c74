"""Helpers for portal views: sign-in requirement, the current user, Manage Access forms."""
from __future__ import annotations

from functools import wraps

from flask import current_app, flash, redirect, request, url_for
from flask_login import current_user

from ... import access, grants
from ...errors import GatewayError
from ...models import Team, User


def ctx():
    return current_app.extensions["gateway"]


def me():
    return current_user._get_current_object()


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("portal.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)
    return wrapper


def access_section(obj, kind: str) -> dict:
    """What the shared Manage Access section (templates/_access.html) needs for ``obj``
    of ``kind`` ("template", "project", ...): its rows, and for whoever may manage it
    the people, teams and roles to choose from."""
    can_manage = access.can(me(), f"{kind}.manage_access", obj)
    return {"can_manage": can_manage, "access_rows": grants.list_access(me(), obj),
            "users": [u.username for u in User.select(User.username).order_by(User.username)]
            if can_manage else [],
            "teams": [t.name for t in Team.select(Team.name).order_by(Team.name)] if can_manage else [],
            "roles": list(access.ROLE_NAMES)}


def change_access(obj, form) -> None:
    """Apply a Manage Access form (grant or remove a person's or a team's role) to
    ``obj``; the outcome is flashed, a refusal included."""
    who = {"user": form.get("user")} if form.get("user") else {"team": form.get("team")}
    try:
        if form.get("action") == "revoke":
            grants.revoke(ctx(), me(), obj, who)
            flash("Access removed.")
        else:
            grants.grant(ctx(), me(), obj, {**who, "role": form.get("role")})
            flash("Access granted.")
    except GatewayError as e:
        flash(f"Not changed: {e.message}")
