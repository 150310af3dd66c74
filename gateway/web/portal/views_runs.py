"""Run Job in three steps: data path, parameters, settings; then preview or submit."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from ... import access, job_templates, jobs, licenses, runs
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
        if spec["type"] == InputType.BOOLEAN:
            inputs[spec["name"]] = bool(form.get(key))
        elif key in form:
            inputs[spec["name"]] = form.get(key)
    body = {"project": project, "experiment": experiment, "inputs": inputs,
            "machine_type": form.get("machine_type", ""), "license": form.get("license", ""),
            "version": version.version}
    for key in ("software_disk_gb", "time_limit_minutes"):
        if form.get(key):
            body[key] = form.get(key)
    tags = [t.strip() for t in form.get("tags", "").split(",") if t.strip()]
    if tags:
        body["tags"] = tags
    return body


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
    error = preview = None
    if request.method == "POST":
        body = _body_from_form(request.form, version)
        values = {**body, "experiment": request.form.get("experiment", ""),
                  "tags": request.form.get("tags", "")}
        try:
            if request.form.get("action") == "preview":
                preview = runs.preview(ctx(), me(), tpl, body)
            else:
                job = runs.submit(ctx(), me(), tpl, body)
                flash(f"Job {job.id} submitted (Slurm job {job.slurm_job_id}).")
                return redirect(url_for("portal.job", job_id=job.id))
        except GatewayError as e:
            error = e
    usage = license_usage()
    lics = [(lic, usage.get(lic.name, (0, 0))) for lic in licenses.list_licenses(ctx(), me())
            if access.can(me(), "license.charge", lic)]
    path_inputs = [s for s in version.inputs if s["type"] == InputType.PATH]
    return render_template(
        "run.html", tpl=tpl, version=version, v=values, error=error, preview=preview, input_type=InputType,
        experiments=_experiments(), machine_types=list(ctx().config.machine_types.values()),
        licenses=lics, data_input=path_inputs[0]["name"] if path_inputs else None,
        max_minutes=ctx().config.slurm.max_time_minutes,
        default_minutes=ctx().config.slurm.default_time_minutes,
    ), (400 if error else 200)
