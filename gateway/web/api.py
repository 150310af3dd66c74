"""The JSON REST API, /api/v1. Thin: parse, call a service, serialise."""
from __future__ import annotations

from pathlib import PurePosixPath

from flask import Blueprint, Response, jsonify, request, send_file

from .. import (
    budgets,
    data,
    efficiency,
    environments,
    job_templates,
    jobs,
    licenses,
    runs,
    script_arrays,
    sweeps,
)
from ..models import Sweep
from ..validation import get_int
from .common import (
    accepts_upload,
    authenticated,
    body,
    created,
    ctx,
    log_response,
    output_file_response,
    user,
)

api = Blueprint("api", __name__, url_prefix="/api/v1")


# --- settings ---------------------------------------------------------------

@api.get("/machine-types")
@authenticated
def machine_types():
    return jsonify([mt.to_dict() for mt in ctx().config.machine_types.values()])


@api.get("/licenses")
@authenticated
def list_licenses():
    return jsonify(licenses.license_dicts(ctx(), licenses.list_licenses(ctx(), user())))


@api.get("/licenses/<name>")
@authenticated
def get_license(name):
    return jsonify(licenses.license_dicts(ctx(), [licenses.get_license(ctx(), user(), name)])[0])


@api.get("/licenses/<name>/budget")
@authenticated
def get_license_budget(name):
    return jsonify(budgets.get_budget(ctx(), user(), licenses.get_license(ctx(), user(), name)))


@api.put("/licenses/<name>/budget")
@authenticated
def set_license_budget(name):
    return jsonify(budgets.set_budget(ctx(), user(), licenses.get_license(ctx(), user(), name), body()))


@api.get("/licenses/<name>/usage")
@authenticated
def license_usage_report(name):
    return jsonify(licenses.usage_report(ctx(), user(), name))


# --- environments -----------------------------------------------------------

@api.post("/environments")
@authenticated
def create_environment():
    env = environments.create_environment(ctx(), user(), body())
    return created(environments.environment_dict(env))


@api.get("/environments")
@authenticated
def list_environments():
    return jsonify([environments.environment_dict(e) for e in environments.list_environments(ctx(), user())])


@api.get("/environments/<name>")
@authenticated
def get_environment(name):
    return jsonify(environments.environment_dict(environments.get_environment(ctx(), user(), name)))


@api.patch("/environments/<name>")
@authenticated
def update_environment_settings(name):
    env = environments.get_environment(ctx(), user(), name)
    return jsonify(environments.environment_dict(environments.update_settings(ctx(), user(), env, body())))


@api.post("/environments/<name>/versions")
@authenticated
def add_environment_version(name):
    env = environments.get_environment(ctx(), user(), name)
    return created(environments.version_dict(environments.add_version(ctx(), user(), env, body())))


@api.get("/environments/<name>/versions")
@authenticated
def list_environment_versions(name):
    env = environments.get_environment(ctx(), user(), name)
    return jsonify(environments.environment_dict(env)["versions"])


# --- templates --------------------------------------------------------------

@api.post("/templates")
@authenticated
def create_template():
    tpl = job_templates.create_template(ctx(), user(), body())
    return created(job_templates.template_dict(tpl, user=user()))


@api.get("/templates")
@authenticated
def list_templates():
    me = user()
    return jsonify([job_templates.template_dict(t, user=me) for t in job_templates.list_templates(ctx(), me)])


@api.get("/templates/<ref>")
@authenticated
def get_template(ref):
    tpl = job_templates.find_template(ctx(), user(), ref)
    version = job_templates.get_version(tpl, request.args.get("version"))
    return jsonify(job_templates.template_dict(tpl, version, user=user()))


@api.patch("/templates/<ref>")
@authenticated
def update_template_settings(ref):
    tpl = job_templates.find_template(ctx(), user(), ref)
    tpl = job_templates.update_settings(ctx(), user(), tpl, body())
    return jsonify(job_templates.template_dict(tpl, user=user()))


@api.put("/templates/<ref>")
@authenticated
def update_template(ref):
    tpl = job_templates.find_template(ctx(), user(), ref)
    tv = job_templates.update_template(ctx(), user(), tpl, body())
    return jsonify(job_templates.template_dict(tpl, tv, user=user()))


@api.post("/templates/<ref>/files")
@authenticated
@accepts_upload
def add_template_files(ref):
    tpl = job_templates.find_template(ctx(), user(), ref)
    uploads = [(f.filename, f.read()) for f in request.files.getlist("files")]
    uploads += [(f.filename, f.read()) for key, f in request.files.items(multi=True) if key != "files"]
    tv = job_templates.add_files(ctx(), user(), tpl, uploads)
    return created(job_templates.template_dict(tpl, tv, user=user()))


@api.post("/templates/<ref>/preview")
@authenticated
def preview_run(ref):
    tpl = job_templates.find_template(ctx(), user(), ref)
    given = body()
    shown = (sweeps.preview if sweeps.is_sweep(given) else runs.preview)(ctx(), user(), tpl, given)
    return jsonify(shown)


@api.post("/templates/<ref>/runs")
@authenticated
def run_template(ref):
    tpl = job_templates.find_template(ctx(), user(), ref)
    return created(jobs.job_dict(runs.submit(ctx(), user(), tpl, body())))


@api.post("/templates/<ref>/sweeps")
@authenticated
def sweep_template(ref):
    tpl = job_templates.find_template(ctx(), user(), ref)
    return created(sweeps.submitted_dict(sweeps.submit_sweep(ctx(), user(), tpl, body())))


# --- sweeps -----------------------------------------------------------------

@api.get("/sweeps/<sweep_id>")
@authenticated
def get_sweep(sweep_id):
    sweep = sweeps.get_sweep(ctx(), user(), sweep_id)
    limit, offset = sweeps.task_page(ctx(), dict(request.args))
    return jsonify(sweeps.sweep_dict(sweep, limit=limit, offset=offset))


@api.get("/sweeps/<sweep_id>/results.csv")
@authenticated
def sweep_results(sweep_id):
    sweep = sweeps.get_sweep(ctx(), user(), sweep_id)
    return Response(sweeps.results_csv(sweep), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="sweep-{sweep.id}-results.csv"'})


@api.post("/sweeps/<sweep_id>/cancel")
@authenticated
def cancel_sweep(sweep_id):
    sweep = sweeps.cancel_sweep(ctx(), user(), sweeps.get_sweep(ctx(), user(), sweep_id))
    return jsonify(sweeps.sweep_dict(sweep)), 202


@api.post("/sweeps/<sweep_id>/rerun-failed")
@authenticated
def rerun_failed_tasks(sweep_id):
    sweep = sweeps.rerun_failed(ctx(), user(), sweeps.get_sweep(ctx(), user(), sweep_id))
    return created(sweeps.submitted_dict(sweep))


# --- jobs -------------------------------------------------------------------

@api.get("/jobs")
@authenticated
def list_jobs():
    args = request.args
    page = get_int(dict(args), "page", default=1, minimum=1)
    per_page = get_int(dict(args), "per_page", default=50, minimum=1, maximum=jobs.MAX_PER_PAGE)
    before = get_int(dict(args), "before", minimum=1)
    rows, total = jobs.list_jobs(ctx(), user(), status=args.get("status"), template=args.get("template"),
                                 project=args.get("project"), tag=args.get("tag"), page=page,
                                 per_page=per_page, mine=args.get("mine") in ("1", "true"),
                                 sweep=args.get("sweep"), before=before)
    # next_before: the cursor of the next page (?before=), however deep; None at the end.
    return jsonify({"jobs": [jobs.job_dict(j) for j in rows], "page": page,
                    "per_page": per_page, "total": total,
                    "next_before": rows[-1].id if len(rows) == per_page else None})


@api.post("/jobs/sbatch")
@authenticated
def submit_sbatch():
    made = script_arrays.submit_sbatch(ctx(), user(), body())
    # An array script is a sweep of its tasks, answered as a sweep is.
    return created(sweeps.submitted_dict(made) if isinstance(made, Sweep) else jobs.job_dict(made))


@api.get("/jobs/<job_id>")
@authenticated
def get_job(job_id):
    return jsonify(jobs.job_dict(jobs.get_job(ctx(), user(), job_id)))


@api.get("/jobs/<job_id>/script")
@authenticated
def get_job_script(job_id):
    job = jobs.get_job(ctx(), user(), job_id)
    return Response(jobs.read_script(ctx(), user(), job), mimetype="text/plain")


@api.get("/jobs/<job_id>/log")
@authenticated
def get_job_log(job_id):
    return log_response(jobs.get_job(ctx(), user(), job_id))


@api.get("/jobs/<job_id>/files/<path:relative>")
@authenticated
def get_job_file(job_id, relative):
    job = jobs.get_job(ctx(), user(), job_id)
    return output_file_response(job, relative)


@api.post("/jobs/<job_id>/cancel")
@authenticated
def cancel_job(job_id):
    job = jobs.cancel(ctx(), user(), jobs.get_job(ctx(), user(), job_id))
    return jsonify(jobs.job_dict(job)), 202


@api.post("/jobs/<job_id>/rerun-with-more")
@authenticated
def rerun_job_with_more(job_id):
    job = jobs.get_job(ctx(), user(), job_id)
    return created(jobs.job_dict(efficiency.run_again_with_more(ctx(), user(), job)))


# --- projects and data ------------------------------------------------------

@api.post("/projects")
@authenticated
def create_project():
    return created(data.project_dict(data.create_project(ctx(), user(), body())))


@api.get("/projects")
@authenticated
def list_projects():
    return jsonify([data.project_dict(p) for p in data.list_projects(ctx(), user())])


@api.post("/projects/<project>/experiments")
@authenticated
def create_experiment(project):
    proj = data.get_project(ctx(), user(), project)
    return created(data.experiment_dict(data.create_experiment(ctx(), user(), proj, body())))


@api.get("/projects/<project>/experiments")
@authenticated
def list_experiments(project):
    proj = data.get_project(ctx(), user(), project)
    return jsonify([data.experiment_dict(e) for e in data.list_experiments(ctx(), user(), proj)])


@api.get("/projects/<project>/experiments/<experiment>/files")
@authenticated
def list_experiment_files(project, experiment):
    exp = data.get_experiment(ctx(), user(), project, experiment)
    return jsonify(data.list_files(ctx(), user(), exp, request.args.get("path", "")))


@api.put("/projects/<project>/experiments/<experiment>/files/<path:relative>")
@authenticated
@accepts_upload
def upload_experiment_file(project, experiment, relative):
    exp = data.get_experiment(ctx(), user(), project, experiment)
    return created(data.write_file(ctx(), user(), exp, relative, request.stream))


@api.get("/projects/<project>/experiments/<experiment>/files/<path:relative>")
@authenticated
def download_experiment_file(project, experiment, relative):
    """One file of the experiment as a download (never shown as a page)."""
    exp = data.get_experiment(ctx(), user(), project, experiment)
    f = data.open_file(ctx(), user(), exp, relative)
    return send_file(f, as_attachment=True, download_name=PurePosixPath(relative).name,
                     mimetype="application/octet-stream")


@api.post("/projects/<project>/experiments/<experiment>/folders")
@authenticated
def make_experiment_folder(project, experiment):
    exp = data.get_experiment(ctx(), user(), project, experiment)
    return created(data.make_folder(ctx(), user(), exp, body().get("path")))
