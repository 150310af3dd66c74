"""My Job Templates, Create/Edit Job Template, the Template Card, versions and access."""
from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable

from flask import Response, abort, flash, redirect, render_template, request, url_for

from ... import access, environments, job_templates
from ...errors import GatewayError, ValidationError
from ...inputs import TYPES, InputType, check_inputs, check_outputs
from ...models import Job, TemplateVersion
from ..common import accepts_upload
from . import portal
from .common import access_section, change_access, ctx, login_required, me

# One control of one row: inputs-3-default. The number is bounded so a hostile form
# cannot make int() work on a huge string; rows keep the order of their numbers, and a
# number missing (a row removed in the browser) is no gap in the template.
ROW = re.compile(r"^(inputs|outputs)-(\d{1,9})-(\w+)$", re.ASCII)
TOP_FIELDS = ("name", "description", "language", "script", "environment", "environment_version",
              "python_executable")
# What each control is called in plain words, for the messages beside it.
SAYS = {"name": "the name", "type": "the type", "default": "the default",
        "description": "the description", "choices": "the choices", "advanced": "advanced",
        "script": "the script", "language": "the language", "environment": "the environment",
        "environment_version": "the environment version",
        "python_executable": "the Python interpreter", "files": "the support files",
        "inputs": "the inputs", "outputs": "the outputs"}
ROW_WORD = {"inputs": "Input", "outputs": "Output"}
SUMMARY_DESCRIPTION = 60  # characters of a description shown in its row (the script cuts alike)


def _rows(form, kind: str) -> list[dict]:
    """The rows of one kind as the form sent them, in the order of their numbers."""
    rows: dict[int, dict] = {}
    for key in form:
        m = ROW.match(key)
        if m and m.group(1) == kind:
            rows.setdefault(int(m.group(2)), {})[m.group(3)] = form.get(key)
    return [rows[i] for i in sorted(rows)]


def _input_row(row: dict) -> dict:
    """One input as the form shows it: the name after DC_, the choices as typed."""
    name = (row.get("name") or "").strip()
    return {"name": name.removeprefix("DC_"), "type": row.get("type") or InputType.STRING.value,
            "default": row.get("default") or "", "description": row.get("description") or "",
            "advanced": bool(row.get("advanced")), "choices": row.get("choices") or ""}


def _output_row(row: dict) -> dict:
    name = (row.get("name") or "").strip()
    return {"name": name.removeprefix("OUT_"), "description": row.get("description") or ""}


def _filled(row: dict) -> bool:
    """Whether a row holds anything typed: a row left blank is no row (the type alone
    does not count, so clearing a row's text is how to remove it without JavaScript)."""
    return bool(row.get("advanced")) or any(
        str(row.get(k) or "").strip() for k in ("name", "default", "description", "choices"))


def form_values(form, keep_blank: bool = False) -> dict:
    """The form as typed, to build the body from and to show again: blank rows dropped
    (kept with ``keep_blank``, when the form is shown again to add a row)."""
    values = {k: form.get(k, "") for k in TOP_FIELDS}
    values["script"] = values["script"].replace("\r\n", "\n")
    values["inputs"] = [r for r in map(_input_row, _rows(form, "inputs")) if keep_blank or _filled(r)]
    values["outputs"] = [r for r in map(_output_row, _rows(form, "outputs")) if keep_blank or _filled(r)]
    values["remove_files"] = form.getlist("remove_files")
    return values


def _input_body(row: dict) -> dict:
    kind = row["type"]
    return {
        "name": f"DC_{row['name']}", "type": kind,
        "default": None if row["default"] == "" else row["default"],
        "description": row["description"], "advanced": row["advanced"],
        "choices": [c.strip() for c in row["choices"].split(",") if c.strip()]
        if kind == InputType.CHOICE else [],
    }


def _body(values: dict) -> dict:
    body = {k: values[k] for k in TOP_FIELDS}
    body["inputs"] = [_input_body(r) for r in values["inputs"]]
    body["outputs"] = [{"name": f"OUT_{r['name']}", "description": r["description"]}
                       for r in values["outputs"]]
    body["remove_files"] = values["remove_files"]
    return body


def body_from_form(form) -> dict:
    """The template form as the service's JSON body (the same one the API takes)."""
    return _body(form_values(form))


def _field_key(field: str | None) -> str | None:
    """'inputs[0].default' -> 'inputs-0-default' (the form's own field names)."""
    if not field:
        return None
    return re.sub(r"\[(\d+)\]\.", r"-\1-", field)


def _plain(key: str, message: str) -> str:
    """A service's message as a sentence beside its control: "must be a whole number"
    on inputs-2-default reads "The default must be a whole number."."""
    m = ROW.match(key)
    what = SAYS.get(m.group(3) if m else key)
    if what and message.split(" ", 1)[0] in ("must", "is", "are", "only"):
        message = f"{what} {message}"
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", ")", "?")) else f"{message}."


def _errors_of(error: GatewayError) -> dict[str, str]:
    """Form key -> plain message, for every problem the service reported (one, or all
    of them when it collects them)."""
    errors: dict[str, str] = {}
    for problem in getattr(error, "problems", None) or [error]:
        key = _field_key(problem.field) or "_"
        errors.setdefault(key, _plain(key, problem.message))
    return errors


def _row_problems(values: dict) -> dict[str, str]:
    """Each row's own problems, all at once, before the service is asked: a row with
    something in it but no name, and what the service would refuse in that row alone
    (so a bad default in row 2 and a bad name in row 5 show together)."""
    errors: dict[str, str] = {}
    body = _body(values)
    for kind, check in (("inputs", check_inputs), ("outputs", check_outputs)):
        word = ROW_WORD[kind].lower()
        for n, (row, item) in enumerate(zip(values[kind], body[kind], strict=True)):
            if not row["name"]:
                errors[f"{kind}-{n}-name"] = f"Give this {word} a name, or remove the row."
                continue
            if kind == "inputs" and row["type"] == InputType.CHOICE and not item["choices"]:
                errors[f"{kind}-{n}-choices"] = "List the choices, separated by commas."
                continue
            try:
                check([item])
            except ValidationError as e:
                key = _field_key((e.field or kind).replace(f"{kind}[0]", f"{kind}[{n}]"))
                errors[key] = _plain(key, e.message)
    return errors


def _summary(row: dict) -> str:
    """What an input's settings dialog holds, in a few words for its row (the script
    writes the same after the dialog closes)."""
    parts = ["advanced"] if row["advanced"] else []
    choices = _input_body(row)["choices"]
    if choices:
        parts.append(f"choices: {', '.join(choices)}")
    text = " ".join(row["description"].split())
    if text:
        cut = len(text) > SUMMARY_DESCRIPTION
        parts.append(text[:SUMMARY_DESCRIPTION].rstrip() + "…" if cut else text)
    return " · ".join(parts) or "no description"


def _values_of_template(tpl) -> dict:
    """A saved template as the form shows it."""
    d = job_templates.template_dict(tpl, user=me())
    values = {k: d.get(k) or "" for k in TOP_FIELDS}
    values["inputs"] = [{
        "name": spec["name"].removeprefix("DC_"), "type": spec["type"],
        "default": "" if spec.get("default") is None else str(spec["default"]),
        "description": spec.get("description") or "", "advanced": bool(spec.get("advanced")),
        "choices": ", ".join(spec.get("choices") or []),
    } for spec in d["inputs"]]
    values["outputs"] = [{"name": o["name"].removeprefix("OUT_"), "description": o.get("description") or ""}
                         for o in d["outputs"]]
    values["remove_files"] = []
    return values


def _uploads():
    return [(f.filename, f.read()) for f in request.files.getlist("files") if f and f.filename]


def _problem_links(errors: dict[str, str]) -> list[dict]:
    """The summary's list: each problem with the control it is about and a label."""
    links = []
    for key, message in errors.items():
        m = ROW.match(key)
        if m:
            part = SAYS.get(m.group(3), m.group(3)).removeprefix("the ")
            label = f"{ROW_WORD[m.group(1)]} {int(m.group(2)) + 1} {part}"
        elif key == "_":
            label = ""
        else:
            label = SAYS.get(key, key).removeprefix("the ")
            label = label[:1].upper() + label[1:]
        # Controls are named as their keys; the language is a pair of radios.
        target = {"language": "step-language", "_": ""}.get(key, key)
        links.append({"key": key, "target": target, "label": label, "message": message})
    return links


def _form_page(template, values, errors: dict[str, str] | None = None, status: int = 200,
               notice: str = ""):
    errors = errors or {}
    envs = environments.list_environments(ctx(), me())
    env_versions = {e.name: [v["version"] for v in environments.environment_dict(e)["versions"]]
                    for e in envs}
    inputs = [*values.get("inputs", [])] or [_input_row({})]
    outputs = [*values.get("outputs", [])] or [_output_row({})]
    for row in inputs:
        row["summary"] = _summary(row)
    files = job_templates.get_version(template).files if template else []
    return render_template("template_form.html", tpl=template, v=values, errors=errors,
                           problems=_problem_links(errors), notice=notice,
                           input_rows=inputs, output_rows=outputs,
                           blank_input={**_input_row({}), "summary": _summary(_input_row({}))},
                           files=files, removing=set(values.get("remove_files") or []),
                           envs=envs, env_versions=env_versions,
                           types=TYPES, input_type=InputType), status


def _submit(template, save: Callable[[dict], Response]):
    """A POST of the form. "Add another input/output" (the form without JavaScript)
    shows it again with one more blank row and saves nothing; otherwise the rows are
    checked, then ``save(body)`` makes the template or version and gives the response."""
    add = request.form.get("add_row")
    values = form_values(request.form, keep_blank=add in ("inputs", "outputs"))
    chose_files = any(f and f.filename for f in request.files.getlist("files"))
    again = "Choose the support files again: a page shown again cannot keep them." if chose_files else ""
    if add in ("inputs", "outputs"):
        values[add].append(_input_row({}) if add == "inputs" else _output_row({}))
        return _form_page(template, values, notice=again)
    errors = _row_problems(values)
    if not errors:
        try:
            return save(_body(values))
        except GatewayError as e:
            errors = _errors_of(e)
    return _form_page(template, values, errors, 400, notice=again)


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
        return _form_page(None, {"language": request.args.get("language", "bash")})

    def save(body):
        tpl = job_templates.create_template(ctx(), me(), body, _uploads())
        flash(f"Job Template {tpl.name} created (unvalidated until its first successful job).")
        return redirect(url_for("portal.template_card", template_id=tpl.id))
    return _submit(None, save)


@portal.route("/templates/<int:template_id>/edit", methods=["GET", "POST"])
@accepts_upload
@login_required
def edit_template(template_id):
    tpl = job_templates.get_template(ctx(), me(), template_id)
    access.require(me(), "template.edit", tpl, "template")
    if request.method == "GET":
        return _form_page(tpl, _values_of_template(tpl))

    def save(body):
        # One save is one version: the new support files and the removed ones go with it.
        tv = job_templates.update_template(ctx(), me(), tpl, {**body, "name": tpl.name}, _uploads())
        flash(f"Saved as version {tv.version}.")
        return redirect(url_for("portal.template_card", template_id=tpl.id))
    return _submit(tpl, save)


@portal.get("/templates/<int:template_id>")
@login_required
def template_card(template_id):
    tpl = job_templates.get_template(ctx(), me(), template_id)
    d = job_templates.template_dict(tpl, user=me())
    runs = (access.visible_jobs(me(), Job.select().where(Job.template == tpl))
            .order_by(Job.id.desc()).limit(20))
    return render_template(
        "template_card.html", tpl=tpl, d=d, runs=list(runs),
        can_edit=access.can(me(), "template.edit", tpl), can_run=access.can(me(), "template.run", tpl),
        **access_section(tpl, "template"))


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
