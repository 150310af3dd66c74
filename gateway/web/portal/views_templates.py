"""My Job Templates, Create/Edit Job Template, the Template Card, versions and access."""
from __future__ import annotations

import difflib
import json
import re

from flask import abort, flash, redirect, render_template, request, url_for

from ... import access, environments, grants, job_templates
from ...errors import GatewayError
from ...inputs import TYPES, InputType
from ...models import Job, Team, TemplateVersion, User
from ..common import accepts_upload
from . import portal
from .common import change_access, ctx, login_required, me

ROW = re.compile(r"^(inputs|outputs)-(\d+)-(\w+)$")


def _rows(form, kind: str) -> list[dict]:
    rows: dict[int, dict] = {}
    for key in form:
        m = ROW.match(key)
        if m and m.group(1) == kind:
            rows.setdefault(int(m.group(2)), {})[m.group(3)] = form.get(key)
    return [rows[i] for i in sorted(rows)]


def body_from_form(form) -> dict:
    """The template form as the service's JSON body (the same one the API takes)."""
    inputs = []
    for row in _rows(form, "inputs"):
        name = (row.get("name") or "").strip()
        if not name:
            continue
        kind = row.get("type") or InputType.STRING.value
        default = row.get("default", "")
        inputs.append({
            "name": name if name.startswith("DC_") else f"DC_{name}", "type": kind,
            "default": None if default == "" else default,
            "description": row.get("description", ""), "advanced": bool(row.get("advanced")),
            "choices": [c.strip() for c in (row.get("choices") or "").split(",") if c.strip()]
            if kind == InputType.CHOICE else [],
        })
    outputs = []
    for row in _rows(form, "outputs"):
        name = (row.get("name") or "").strip()
        if name:
            outputs.append({"name": name if name.startswith("OUT_") else f"OUT_{name}",
                            "description": row.get("description", "")})
    body = {k: form.get(k, "") for k in ("name", "description", "language", "script", "environment",
                                         "environment_version", "python_executable")}
    body["script"] = body["script"].replace("\r\n", "\n")
    body["inputs"], body["outputs"] = inputs, outputs
    body["remove_files"] = form.getlist("remove_files")
    return body


def _field_key(field: str | None) -> str | None:
    """'inputs[0].default' -> 'inputs-0-default' (the form's own field names)."""
    if not field:
        return None
    return re.sub(r"\[(\d+)\]\.", r"-\1-", field)


def _uploads():
    return [(f.filename, f.read()) for f in request.files.getlist("files") if f and f.filename]


def _form_page(template, values, error=None, status=200):
    envs = environments.list_environments(ctx(), me())
    env_versions = {e.name: [v["version"] for v in environments.environment_dict(e)["versions"]]
                    for e in envs}
    errors = {_field_key(error.field) or "_": error.message} if error else {}
    return render_template("template_form.html", tpl=template, v=values, errors=errors,
                           envs=envs, env_versions=env_versions,
                           types=TYPES, input_type=InputType), status


@portal.get("/templates")
@login_required
def templates():
    q = request.args.get("q", "").strip().lower()
    status = request.args.get("status", "")
    rows = []
    for t in job_templates.list_templates(ctx(), me()):
        if q and q not in t.name.lower() and q not in t.description.lower():
            continue
        if status and t.status != status:
            continue
        rows.append(job_templates.template_dict(t, user=me()))
    return render_template("templates.html", rows=rows, q=q, status=status)


@portal.route("/templates/new", methods=["GET", "POST"])
@accepts_upload
@login_required
def new_template():
    if request.method == "GET":
        return _form_page(None, {"language": request.args.get("language", "bash"),
                                 "inputs": [], "outputs": []})
    body = body_from_form(request.form)
    try:
        tpl = job_templates.create_template(ctx(), me(), body, _uploads())
    except GatewayError as e:
        return _form_page(None, body, e, 400)
    flash(f"Job Template {tpl.name} created (unvalidated until its first successful job).")
    return redirect(url_for("portal.template_card", template_id=tpl.id))


@portal.route("/templates/<int:template_id>/edit", methods=["GET", "POST"])
@accepts_upload
@login_required
def edit_template(template_id):
    tpl = job_templates.get_template(ctx(), me(), template_id)
    access.require(me(), "template.edit", tpl, "template")
    if request.method == "GET":
        d = job_templates.template_dict(tpl, user=me())
        return _form_page(tpl, d)
    body = body_from_form(request.form)
    body["name"] = tpl.name
    try:
        tv = job_templates.update_template(ctx(), me(), tpl, body, _uploads())
    except GatewayError as e:
        return _form_page(tpl, {**body, "files": job_templates.get_version(tpl).files}, e, 400)
    flash(f"Saved as version {tv.version}.")
    return redirect(url_for("portal.template_card", template_id=tpl.id))


@portal.get("/templates/<int:template_id>")
@login_required
def template_card(template_id):
    tpl = job_templates.get_template(ctx(), me(), template_id)
    d = job_templates.template_dict(tpl, user=me())
    runs = (access.visible_jobs(me(), Job.select().where(Job.template == tpl))
            .order_by(Job.id.desc()).limit(20))
    can_manage = access.can(me(), "template.manage_access", tpl)
    return render_template(
        "template_card.html", tpl=tpl, d=d, runs=list(runs),
        can_edit=access.can(me(), "template.edit", tpl), can_run=access.can(me(), "template.run", tpl),
        can_manage=can_manage, access_rows=grants.list_access(me(), tpl),
        users=[u.username for u in User.select(User.username).order_by(User.username)] if can_manage else [],
        teams=[t.name for t in Team.select(Team.name).order_by(Team.name)] if can_manage else [],
        roles=list(access.ROLE_NAMES))


def _version_text(tv: TemplateVersion) -> list[str]:
    d = job_templates.version_dict(tv)
    head = {k: d[k] for k in ("language", "environment", "environment_version", "python_executable")}
    return (json.dumps(head, indent=1).splitlines() + ["--- script ---"] + d["script"].splitlines()
            + ["--- inputs ---"] + json.dumps(d["inputs"], indent=1).splitlines()
            + ["--- outputs ---"] + json.dumps(d["outputs"], indent=1).splitlines()
            + ["--- files ---"] + [f"{f['name']} {f['size']} bytes {f['sha256'][:12]}" for f in d["files"]])


@portal.get("/templates/<int:template_id>/versions/<int:version>")
@login_required
def template_version(template_id, version):
    tpl = job_templates.get_template(ctx(), me(), template_id)
    if not access.can(me(), "template.view_config", tpl):
        abort(403)
    tv = job_templates.get_version(tpl, version)
    diff = []
    if version > 1:
        prev = job_templates.get_version(tpl, version - 1)
        diff = list(difflib.unified_diff(_version_text(prev), _version_text(tv),
                                         f"version {version - 1}", f"version {version}", lineterm=""))
    return render_template("template_version.html", tpl=tpl, d=job_templates.version_dict(tv), diff=diff)


@portal.post("/templates/<int:template_id>/access")
@login_required
def template_access(template_id):
    tpl = job_templates.get_template(ctx(), me(), template_id)
    form = request.form
    if form.get("action") != "settings":
        change_access(tpl, form)
    else:
        try:
            job_templates.update_settings(ctx(), me(), tpl, {"public": bool(form.get("public")),
                                                             "open_source": bool(form.get("open_source"))})
            flash("Sharing settings saved.")
        except GatewayError as e:
            flash(f"Not changed: {e.message}")
    return redirect(url_for("portal.template_card", template_id=tpl.id) + "#access")
