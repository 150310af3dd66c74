"""Software environments: list, create, add versions, make public, Manage Access."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from ... import access
from ... import environments as envs
from ...errors import GatewayError
from ...models import Environment
from . import portal
from .common import access_section, change_access, ctx, login_required, me


def _lines(text: str | None) -> str:
    """A textarea's text as set-up lines: browsers send CRLF line ends, which bash
    would read as part of each command."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n")


def _errors(error: GatewayError | None) -> dict:
    return {error.field or "_": error.message} if error else {}


def _list_page(values: dict | None = None, error: GatewayError | None = None, status: int = 200):
    rows = []
    for env in envs.list_environments(ctx(), me()):
        versions = env.version_rows
        rows.append({"name": env.name, "description": env.description, "public": env.public,
                     "owner": env.owner.username, "versions": len(versions),
                     "latest": versions[-1].version if versions else None})
    return render_template("environments.html", rows=rows, v=values or {}, errors=_errors(error)), status


@portal.get("/environments")
@login_required
def environments():
    return _list_page()


@portal.post("/environments")
@login_required
def create_environment():
    form = request.form
    values = {"name": form.get("name", "").strip(), "description": form.get("description", ""),
              "setup": _lines(form.get("setup")), "public": bool(form.get("public"))}
    body = {k: values[k] for k in ("name", "description", "public")}
    # Set-up lines make the first version; without them the environment starts empty
    # and its first version is added on its page.
    if values["setup"].strip():
        body.update(version=envs.FIRST_VERSION, setup=values["setup"])
    try:
        env = envs.create_environment(ctx(), me(), body)
    except GatewayError as e:
        return _list_page(values, e, e.status)
    flash(f"Environment {env.name} created.")
    return redirect(url_for("portal.environment", name=env.name))


def _env_page(env: Environment, values: dict | None = None, error: GatewayError | None = None,
              status: int = 200):
    d = envs.environment_dict(env)
    user = me()
    can_edit = access.can(user, "environment.edit", env)
    return render_template(
        "environment.html", env=env, d=d, versions=list(reversed(d["versions"])),
        can_edit=can_edit, errors=_errors(error),
        v=values or _next_version_values(d["versions"]), **access_section(env, "environment")), status


def _next_version_values(versions: list[dict]) -> dict:
    """The Add version form to start from: the next label, and the latest version's
    set-up lines (a new version is most often a small change to the last one)."""
    return {"version": envs.suggest_next_version([x["version"] for x in versions]),
            "setup": versions[-1]["setup"] if versions else ""}


@portal.get("/environments/<name>")
@login_required
def environment(name):
    return _env_page(envs.get_environment(ctx(), me(), name))


@portal.post("/environments/<name>/versions")
@login_required
def add_environment_version(name):
    env = envs.get_environment(ctx(), me(), name)
    # Someone who may not add versions is refused before the form is read (403).
    access.require(me(), "environment.edit", env, "environment")
    values = {"version": request.form.get("version", "").strip(), "setup": _lines(request.form.get("setup"))}
    try:
        ev = envs.add_version(ctx(), me(), env, values)
    except GatewayError as e:  # a bad label or set-up lines, or a label already taken
        return _env_page(env, values, e, e.status)
    flash(f"Version {ev.version} added.")
    return redirect(url_for("portal.environment", name=env.name) + f"#version-{ev.version}")


@portal.post("/environments/<name>/settings")
@login_required
def environment_settings(name):
    """Make public / Make private."""
    env = envs.get_environment(ctx(), me(), name)
    access.require(me(), "environment.edit", env, "environment")
    public = request.form.get("public") == "true"
    try:
        envs.update_settings(ctx(), me(), env, {"public": public})
    except GatewayError as e:
        flash(f"Not changed: {e.message}")
    else:
        flash(f"Environment {env.name} is now {'public' if public else 'private'}.")
    return redirect(url_for("portal.environment", name=env.name))


@portal.post("/environments/<name>/access")
@login_required
def environment_access(name):
    env = envs.get_environment(ctx(), me(), name)
    change_access(env, request.form)
    return redirect(url_for("portal.environment", name=env.name) + "#access")
