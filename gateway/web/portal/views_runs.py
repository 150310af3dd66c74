"""Run Job in three steps: data path, parameters, settings; then preview or submit.

The page is one form with a fieldset per step, so it works without JavaScript (all
three steps shown, every problem next to its field after a submit). The wizard script
shows one step at a time and asks ``run/check`` before CONTINUE, so the messages are
the server's own, in the same words.
"""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for

from ... import access, job_templates, jobs, licenses, notifications, runs, sweeps
from ...charging import license_usage
from ...errors import GatewayError
from ...inputs import InputType
from ...models import Experiment, Project
from . import portal
from .common import ctx, login_required, me


def _experiments():
    """Experiments the person may run jobs on, as "project/experiment"."""
    query = Experiment.select(Experiment, Project).join(Project).order_by(Project.name, Experiment.name)
    return [f"{exp.project.name}/{exp.name}" for exp in access.where_may(me(), "experiment.run_on", query)]


def _body_from_form(form, version) -> dict:
    project, _, experiment = form.get("experiment", "").partition("/")
    inputs = {}
    for spec in version.inputs:
        key = f"input-{spec['name']}"
        many = form.get(f"many-{spec['name']}", "").strip()
        if many:
            # "Run over many values": the run becomes a sweep, one task per value.
            inputs[spec["name"]] = sweeps.parse_many(spec, many)
        elif spec["type"] == InputType.BOOLEAN:
            inputs[spec["name"]] = bool(form.get(key))
        elif key in form:
            inputs[spec["name"]] = form.get(key)
    body = {"project": project, "experiment": experiment, "inputs": inputs,
            "machine_type": form.get("machine_type", ""), "license": form.get("license", ""),
            "version": version.version}
    if sweeps.is_sweep(body):
        body["throttle"] = form.get("throttle") or None
    for key in ("software_disk_gb", "time_limit_minutes"):
        if form.get(key):
            body[key] = form.get(key)
    tags = [t.strip() for t in form.get("tags", "").split(",") if t.strip()]
    if tags:
        body["tags"] = tags
    if form.get("notify"):
        body["notify"] = form.get("notify")
    return body


# Which step of the wizard shows a field, so a problem opens the step it belongs to.
SETTINGS_FIELDS = ("machine_type", "license", "software_disk_gb", "time_limit_minutes", "tags", "throttle")


def step_of(field: str | None, data_input: str | None) -> int:
    if field in ("project", "experiment") or (data_input and field == f"inputs.{data_input}"):
        return 1
    if field and field.startswith("inputs"):
        return 2
    # Settings, and what is about the run as a whole (Slurm refused it), are on the last step.
    return 3 if field in SETTINGS_FIELDS or field is None else 1


def _as_shown(problems: list) -> list:
    """The portal asks for project and experiment in one select: one problem for it."""
    shown, fields = [], set()
    for p in problems:
        field = "experiment" if p.field == "project" else p.field
        if field not in fields:
            fields.add(field)
            shown.append(type(p)(p.message, field))
    return shown


def _data_input(version) -> str | None:
    """The first Path input is the data path, asked for in the first step."""
    return next((s["name"] for s in version.inputs if s["type"] == InputType.PATH), None)


@portal.post("/templates/<int:template_id>/run/check")
@login_required
def check_run(template_id):
    """The run form's problems, all of them, for the wizard's CONTINUE."""
    tpl = job_templates.get_template(ctx(), me(), template_id)
    access.require(me(), "template.run", tpl, "template")
    version = job_templates.get_version(tpl, request.form.get("version") or None)
    body = _body_from_form(request.form, version)
    tasks = 1
    if sweeps.is_sweep(body):
        try:
            tasks = len(sweeps.plan_sweep(ctx(), me(), tpl, body)[2])
            problems = []
        except GatewayError as e:
            problems, tasks = getattr(e, "problems", [e]), None
    else:
        problems = runs.check(ctx(), me(), tpl, body)
    data_input = _data_input(version)
    return jsonify({"tasks": tasks, "problems": [
        {"field": p.field, "message": p.message, "step": step_of(p.field, data_input)}
        for p in _as_shown(problems)]})


@portal.route("/templates/<int:template_id>/run", methods=["GET", "POST"])
@login_required
def run_job(template_id):
    tpl = job_templates.get_template(ctx(), me(), template_id)
    access.require(me(), "template.run", tpl, "template")
    version = job_templates.get_version(tpl, request.values.get("version") or None)
    values: dict = {}
    if request.method == "GET" and request.args.get("from_job"):
        # Run again: the same inputs and settings as an earlier job.
        old = jobs.get_job(ctx(), me(), request.args["from_job"])
        values = {"experiment": f"{old.project.name}/{old.experiment.name}" if old.experiment_id else "",
                  "inputs": old.inputs, "machine_type": old.machine_type, "license": old.license,
                  "software_disk_gb": old.software_disk_gb, "time_limit_minutes": old.time_limit_minutes}
    preview = tasks = None
    problems: list[GatewayError] = []
    step = 1
    if request.method == "POST":
        body = _body_from_form(request.form, version)
        values = {**body, "experiment": request.form.get("experiment", ""),
                  "tags": request.form.get("tags", ""),
                  "show_advanced": bool(request.form.get("show_advanced")),
                  "many": {s["name"]: request.form.get(f"many-{s['name']}", "") for s in version.inputs},
                  "throttle": request.form.get("throttle")}
        step = 3
        try:
            if sweeps.is_sweep(body):
                if request.form.get("action") == "preview":
                    preview = sweeps.preview(ctx(), me(), tpl, body)
                    tasks = preview["tasks"]
                else:
                    sweep = sweeps.submit_sweep(ctx(), me(), tpl, body)
                    flash(f"Sweep {sweep.id} submitted: {len(sweep.jobs)} tasks as Slurm array "
                          f"{', '.join(sweep.array_job_ids)}.")
                    return redirect(url_for("portal.sweep", sweep_id=sweep.id))
            elif request.form.get("action") == "preview":
                preview = runs.preview(ctx(), me(), tpl, body)
            else:
                job = runs.submit(ctx(), me(), tpl, body)
                flash(f"Job {job.id} submitted (Slurm job {job.slurm_job_id}).")
                return redirect(url_for("portal.job", job_id=job.id))
        except GatewayError as e:
            problems = _as_shown(getattr(e, "problems", [e]))
    usage = license_usage()
    lics = [(lic, usage.get(lic.name, (0, 0))) for lic in licenses.list_licenses(ctx(), me())
            if access.can(me(), "license.charge", lic)]
    data_input = _data_input(version)
    by_field = {p.field or "_": p.message for p in problems}
    if problems:
        step = min(step_of(p.field, data_input) for p in problems)
    # An advanced input with a problem, or run over many values, is shown whether or
    # not advanced ones were asked for.
    show_advanced = bool(values.get("show_advanced")) or any(
        f"inputs.{s['name']}" in by_field or (values.get("many") or {}).get(s["name"])
        for s in version.inputs if s.get("advanced"))
    return render_template(
        "run.html", tpl=tpl, version=version, v=values, problems=problems, by_field=by_field,
        step=step, show_advanced=show_advanced, preview=preview, tasks=tasks, input_type=InputType,
        default_throttle=ctx().config.slurm.default_sweep_throttle,
        versions=list(range(tpl.latest_version, 0, -1)),
        experiments=_experiments(), machine_types=list(ctx().config.machine_types.values()),
        notify_default=notifications.preference(me()).on_job_end,
        licenses=lics, data_input=data_input,
        max_minutes=ctx().config.slurm.max_time_minutes,
        default_minutes=ctx().config.slurm.default_time_minutes,
    ), (400 if problems else 200)
