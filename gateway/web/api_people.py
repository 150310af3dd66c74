"""API for people: login, tokens, teams, and Manage Access on every kind of object."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from .. import data, environments, grants, job_templates, licenses, notifications, teams, users
from ..auth.login import login
from ..models import User
from .common import (
    authenticated,
    body,
    client_address,
    created,
    ctx,
    optional_body,
    sign_in,
    sign_out,
    user,
)

people = Blueprint("api_people", __name__, url_prefix="/api/v1")


def _me(u: User) -> dict:
    return {"username": u.username, "display_name": u.display_name, "email": u.email,
            "is_admin": u.is_admin, "source": u.source, "uid_number": u.uid_number,
            "teams": sorted(teams.team_names(u))}


@people.post("/auth/login")
def session_login():
    """Username and password (LDAP or local) -> a session cookie (the portal's way in)."""
    payload = body()
    u = login(ctx(), payload.get("username"), payload.get("password"), client_address())
    sign_in(u)
    return jsonify(_me(u))


@people.get("/me/notifications")
@authenticated
def my_notifications():
    return jsonify(notifications.settings_dict(user()))


@people.put("/me/notifications")
@authenticated
def set_my_notifications():
    return jsonify(notifications.set_settings(ctx(), user(), body()))


@people.post("/auth/logout")
def session_logout():
    sign_out()
    return jsonify({"ok": True})


@people.post("/auth/token")
def token_login():
    """Username and password -> a new API token (what `gateway login` uses)."""
    payload = body()
    u = login(ctx(), payload.get("username"), payload.get("password"), client_address())
    name = payload.get("name") if isinstance(payload.get("name"), str) else "login"
    return created({"token": users.create_token(u, name[:100]), "user": _me(u)})


@people.get("/me")
@authenticated
def me():
    return jsonify(_me(user()))


@people.get("/tokens")
@authenticated
def list_tokens():
    return jsonify([users.token_dict(t) for t in users.list_tokens(user())])


@people.post("/tokens")
@authenticated
def create_token():
    payload = optional_body()
    name = payload.get("name") if isinstance(payload.get("name"), str) else ""
    token = users.create_token(user(), name[:100])
    return created({"token": token, **users.token_dict(users.list_tokens(user())[-1])})


@people.delete("/tokens/<token_id>")
@authenticated
def revoke_token(token_id):
    users.revoke_token(user(), token_id)
    return jsonify({"ok": True})


@people.get("/teams")
@authenticated
def list_teams():
    return jsonify([teams.team_dict(t) for t in teams.list_teams(user())])


# --- Manage Access: GET lists, POST {user|team, role} grants, DELETE {user|team} revokes --

def _access(obj):
    if request.method == "GET":
        return jsonify(grants.list_access(user(), obj))
    payload = body() if request.method == "POST" else (optional_body() or dict(request.args))
    if request.method == "POST":
        return created(grants.grant(ctx(), user(), obj, payload))
    grants.revoke(ctx(), user(), obj, payload)
    return jsonify({"ok": True})


METHODS = ["GET", "POST", "DELETE"]


@people.route("/templates/<ref>/access", methods=METHODS)
@authenticated
def template_access(ref):
    return _access(job_templates.find_template(ctx(), user(), ref))


@people.route("/projects/<project>/access", methods=METHODS)
@authenticated
def project_access(project):
    return _access(data.get_project(ctx(), user(), project))


@people.route("/projects/<project>/experiments/<experiment>/access", methods=METHODS)
@authenticated
def experiment_access(project, experiment):
    return _access(data.get_experiment(ctx(), user(), project, experiment))


@people.route("/environments/<name>/access", methods=METHODS)
@authenticated
def environment_access(name):
    return _access(environments.get_environment(ctx(), user(), name))


@people.route("/licenses/<name>/access", methods=METHODS)
@authenticated
def license_access(name):
    return _access(licenses.get_license(ctx(), user(), name))
