"""Projects and experiments: list, create, open; the data browser; Manage Access.

The experiment page works without JavaScript: folders are links (``?path=a/b``), files
download through the API, new folders and uploads (files only) are plain forms.
static/data_browser.js adds folder uploads, drag and drop and progress bars on top,
uploading one file at a time through the same API.
"""
from __future__ import annotations

from pathlib import PurePosixPath

from flask import flash, redirect, render_template, request, url_for

from ... import access, data
from ...errors import Conflict, GatewayError, ValidationError
from ...models import Experiment, Project
from ...validation import NAME_RULE
from ..common import accepts_upload
from . import portal
from .common import access_section, change_access, ctx, login_required, me

SIZE_UNITS = ("KiB", "MiB", "GiB", "TiB")


@portal.app_template_filter("filesize")
def human_size(size: int | None) -> str:
    """A size in bytes as people read it: '512 bytes', '1.5 KiB', '30.0 MiB' (the same
    units as data_browser.js)."""
    if size is None:
        return "—"
    if size < 1024:
        return f"{size} byte{'' if size == 1 else 's'}"
    value, i = size / 1024, 0
    while value >= 1024 and i < len(SIZE_UNITS) - 1:
        value, i = value / 1024, i + 1
    return f"{value:.1f} {SIZE_UNITS[i]}"




def _form_errors(e: GatewayError, form_field: str) -> dict:
    """A service error as the form shows it: next to the one field the form has."""
    return {form_field: e.message}


# --- projects -----------------------------------------------------------------

def _projects_page(errors: dict | None = None, name: str = "", status: int = 200):
    return render_template(
        "projects.html", projects=data.list_projects(ctx(), me()),
        counts=data.experiment_counts(ctx(), me()), shared=data.experiments_shared_alone(ctx(), me()),
        errors=errors or {}, name=name, name_rule=NAME_RULE), status


@portal.get("/projects")
@login_required
def projects():
    return _projects_page()


@portal.post("/projects")
@login_required
def create_project():
    name = request.form.get("name", "").strip()
    try:
        project = data.create_project(ctx(), me(), {"name": name})
    except (ValidationError, Conflict) as e:
        return _projects_page(_form_errors(e, "name"), name, e.status)
    flash(f"Project {project.name} created.")
    return redirect(url_for("portal.project", project=project.name))


def _project_page(project: Project, errors: dict | None = None, name: str = "", status: int = 200):
    return render_template(
        "project.html", project=project, experiments=data.list_experiments(ctx(), me(), project),
        can_edit=access.can(me(), "project.edit", project), errors=errors or {}, name=name,
        name_rule=NAME_RULE, **access_section(project, "project")), status


@portal.get("/projects/<project>")
@login_required
def project(project):
    return _project_page(data.get_project(ctx(), me(), project))


@portal.post("/projects/<project>/experiments")
@login_required
def create_experiment(project):
    proj = data.get_project(ctx(), me(), project)
    name = request.form.get("name", "").strip()
    try:
        exp = data.create_experiment(ctx(), me(), proj, {"name": name})
    except (ValidationError, Conflict) as e:
        return _project_page(proj, _form_errors(e, "name"), name, e.status)
    flash(f"Experiment {exp.name} created.")
    return redirect(url_for("portal.experiment", project=proj.name, experiment=exp.name))


@portal.post("/projects/<project>/access")
@login_required
def project_access(project):
    proj = data.get_project(ctx(), me(), project)
    change_access(proj, request.form)
    return redirect(url_for("portal.project", project=proj.name) + "#access")


# --- an experiment and its data ----------------------------------------------------

def _crumbs(here: str) -> list[dict]:
    """The folders from the experiment's top down to ``here``, for the breadcrumb."""
    parts = [p for p in here.split("/") if p]
    return [{"name": part, "path": "/".join(parts[:i + 1])} for i, part in enumerate(parts)]


def _experiment_page(exp: Experiment, path: str, errors: dict | None = None,
                     folder_name: str = "", status: int = 200):
    errors = dict(errors or {})
    can_read = access.can(me(), "experiment.read_data", exp)
    here, entries = "", []
    if can_read:
        try:
            here = data.folder_path(ctx(), exp, path)
            entries = data.list_files(ctx(), me(), exp, here)
        except ValidationError as e:
            # A folder that went away (or never was): say so above the top folder's listing.
            errors["path"], status = e.message, 404
            here, entries = "", data.list_files(ctx(), me(), exp, "")
    in_processed = data.in_processed(here)
    can_write = access.can(me(), "experiment.write_data", exp)
    files_url = url_for("api.list_experiment_files", project=exp.project.name, experiment=exp.name)
    return render_template(
        "experiment.html", exp=exp, here=here, crumbs=_crumbs(here), entries=entries,
        parent="/".join(here.split("/")[:-1]) if here else None,
        can_read=can_read, can_write=can_write and not in_processed, in_processed=in_processed,
        can_view_project=access.can(me(), "project.view", exp.project),
        processed=data.PROCESSED, files_url=files_url, max_bytes=ctx().max_upload_bytes,
        max_mb=ctx().max_upload_bytes // 2**20, errors=errors, folder_name=folder_name,
        **access_section(exp, "experiment")), status


def _experiment(project: str, experiment: str) -> Experiment:
    return data.get_experiment(ctx(), me(), project, experiment)


def _back_to(exp: Experiment, here: str):
    return redirect(url_for("portal.experiment", project=exp.project.name, experiment=exp.name,
                            **({"path": here} if here else {})))


@portal.get("/projects/<project>/experiments/<experiment>")
@login_required
def experiment(project, experiment):
    return _experiment_page(_experiment(project, experiment), request.args.get("path", ""))


def _inside(here: str, name: str) -> str:
    return f"{here.strip('/')}/{name}" if here.strip("/") else name


@portal.post("/projects/<project>/experiments/<experiment>/folders")
@login_required
def experiment_folder(project, experiment):
    """New folder: ``name`` inside the folder shown (``path``)."""
    exp = _experiment(project, experiment)
    here, name = request.form.get("path", ""), request.form.get("name", "").strip()
    if not name:
        return _experiment_page(exp, here, {"name": "give the new folder a name"}, name, 400)
    try:
        made = data.make_folder(ctx(), me(), exp, _inside(here, name))
    except (ValidationError, Conflict) as e:
        return _experiment_page(exp, here, _form_errors(e, "name"), name, e.status)
    flash(f"Folder {made['path']} created.")
    return _back_to(exp, here)


@portal.post("/projects/<project>/experiments/<experiment>/upload")
@accepts_upload
@login_required
def experiment_upload(project, experiment):
    """The upload without JavaScript: the chosen files, into the folder shown."""
    exp = _experiment(project, experiment)
    access.require(me(), "experiment.write_data", exp, "experiment")
    here = request.form.get("path", "")
    files = [f for f in request.files.getlist("files") if f and f.filename]
    if not files:
        flash("Nothing uploaded: choose one or more files first.")
        return _back_to(exp, here)
    stored, refused = [], []
    for f in files:
        # A browser sends a file's own name; anything more (a folder, "..") is not kept.
        name = PurePosixPath(f.filename).name
        try:
            stored.append(data.write_file(ctx(), me(), exp, _inside(here, name), f.stream)["path"])
        except GatewayError as e:
            refused.append(f"{name}: {e.message}")
    if stored:
        flash(f"Uploaded {len(stored)} file{'s' if len(stored) != 1 else ''}: {', '.join(stored)}.")
    for why in refused:
        flash(f"Not uploaded: {why}")
    return _back_to(exp, here)


@portal.post("/projects/<project>/experiments/<experiment>/access")
@login_required
def experiment_access(project, experiment):
    exp = _experiment(project, experiment)
    change_access(exp, request.form)
    return redirect(url_for("portal.experiment", project=exp.project.name, experiment=exp.name) + "#access")
