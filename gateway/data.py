"""Projects and experiments as folders under the data root, and safe paths inside them.

Layout: ``<data_root>/projects/<project>/<experiment>/`` with a ``Processed/`` folder
per experiment. Every path a person sends is resolved (symlinks included) and must
stay inside the experiment it names.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import BinaryIO

from peewee import fn

from . import access, disk_access, job_files
from .config import Config
from .context import Context
from .db import iso
from .errors import Conflict, NotFound, PayloadTooLarge, UnsafeJobFile, ValidationError
from .job_paths import OUTPUT, JobPaths
from .models import Experiment, Project, User
from .validation import check_name, require_dict

PROCESSED = "Processed"
# What an upload is written as until it is complete (then renamed to its own name).
UPLOAD_SUFFIX = ".upload"
# What a finished job's outputs are copied to Processed/ as, until the copy is complete.
PARTIAL_SUFFIX = ".partial"
# Names a person gives (uploads, new folders) hold no control characters: a newline or an
# escape in a file name breaks every listing and script that prints it.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# The folder helpers take the config alone: disk_access, which keeps these folders'
# access in line, has no more than that.
def project_dir(config: Config, project: str) -> Path:
    return config.data_root / "projects" / project


def experiment_dir(config: Config, exp: Experiment) -> Path:
    return project_dir(config, exp.project.name) / exp.name


def create_project(ctx: Context, user: User, body: dict) -> Project:
    require_dict(body)
    name = check_name(body.get("name"), "name")
    existing = Project.get_or_none(Project.name == name)
    if existing is not None:
        raise access.name_taken(user, existing, "project", name)
    project = Project.create(name=name, owner=user)
    disk_access.prepare_data_root(ctx.config)
    project_dir(ctx.config, name).mkdir(mode=0o700, exist_ok=True)
    disk_access.sync_project(ctx.config, project)
    return project


def get_project(ctx: Context, user: User, name: str) -> Project:
    project = Project.get_or_none(Project.name == name)
    if project is None or not access.can(user, "project.view", project):
        raise NotFound(f"project {name!r} not found", "project")
    return project


def list_projects(ctx: Context, user: User) -> list[Project]:
    """The projects ``user`` may see, with their owners: one query, filtered in SQL."""
    return list(access.where_may(user, "project.view", Project.select(Project, User)
                                 .join(User, on=(Project.owner == User.id)).order_by(Project.name)))


def experiment_counts(ctx: Context, user: User) -> dict[int, int]:
    """project id -> how many of its experiments ``user`` may see: one query."""
    query = (Experiment.select(Experiment.project, fn.COUNT(Experiment.id))
             .group_by(Experiment.project))
    return dict(access.where_may(user, "experiment.view", query).tuples())


def experiments_shared_alone(ctx: Context, user: User) -> list[Experiment]:
    """The experiments ``user`` may see in projects they may not (an experiment shared
    with them on its own), with their projects: one query."""
    visible = access.where_may(user, "project.view", Project.select(Project.id))
    return list(access.where_may(user, "experiment.view", Experiment.select(Experiment, Project)
                                 .join(Project).where(Project.id.not_in(visible))
                                 .order_by(Project.name, Experiment.name)))


def create_experiment(ctx: Context, user: User, project: Project, body: dict) -> Experiment:
    require_dict(body)
    access.require(user, "project.edit", project, "project")
    name = check_name(body.get("name"), "name")
    if Experiment.select().where(Experiment.project == project, Experiment.name == name).exists():
        raise Conflict(f"experiment {name!r} already exists in {project.name!r}", "name")
    exp = Experiment.create(project=project, name=name, owner=user)
    project_dir(ctx.config, project.name).mkdir(mode=0o700, parents=True, exist_ok=True)
    experiment_dir(ctx.config, exp).mkdir(mode=0o700, exist_ok=True)
    (experiment_dir(ctx.config, exp) / PROCESSED).mkdir(mode=0o755, exist_ok=True)
    disk_access.sync_project(ctx.config, project)
    return exp


def get_experiment(ctx: Context, user: User, project: str, name: str,
                   field: str = "experiment") -> Experiment:
    exp = (Experiment.select(Experiment, Project).join(Project)
           .where(Project.name == project, Experiment.name == name).first())
    if exp is None or not access.can(user, "experiment.view", exp):
        raise NotFound(f"experiment {project}/{name} not found", field)
    return exp


def list_experiments(ctx: Context, user: User, project: Project) -> list[Experiment]:
    """The experiments of ``project`` that ``user`` may see, with their owners: one
    query, filtered in SQL."""
    rows = list(access.where_may(user, "experiment.view", Experiment.select(Experiment, User)
                                 .join(User, on=(Experiment.owner == User.id))
                                 .where(Experiment.project == project).order_by(Experiment.name)))
    for e in rows:
        e.project = project
    return rows


def resolve_inside(base: Path, relative: str, field: str, must_exist: bool = True) -> Path:
    """``base / relative``, refused if it leaves ``base`` (via ``..`` or a symlink)."""
    if not isinstance(relative, str):
        raise ValidationError("must be a string", field)
    if "\0" in relative:
        raise ValidationError("must not contain NUL bytes", field)
    rel = relative.strip().lstrip("/") if relative.strip() not in ("", "/", ".") else ""
    root = base.resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise ValidationError(f"{relative!r} is outside the experiment", field)
    if must_exist and not target.exists():
        raise ValidationError(f"{relative!r} does not exist in the experiment", field)
    return target


def list_files(ctx: Context, user: User, exp: Experiment, path: str = "") -> list[dict]:
    access.require(user, "experiment.read_data", exp, "experiment")
    root = experiment_dir(ctx.config, exp).resolve()
    target = resolve_inside(root, path or "", "path")
    if not target.is_dir():
        raise ValidationError(f"{path!r} is not a folder", "path")
    entries = []
    for entry in sorted(os.scandir(target), key=lambda e: (not e.is_dir(), e.name)):
        try:
            st = entry.stat()
        except OSError:
            continue  # a dangling symlink: nothing a person can open
        full = Path(entry.path).resolve()
        if full != root and root not in full.parents:
            continue  # symlinks out of the experiment are not shown
        if _in_progress(entry.name):
            continue  # an upload or a job's copy still being written: shown once complete
        entries.append({
            "name": entry.name,
            "path": str(Path(entry.path).relative_to(root)),
            "type": "dir" if entry.is_dir() else "file",
            "size": st.st_size if not entry.is_dir() else None,
        })
    return entries


def _in_progress(name: str) -> bool:
    return name.startswith(".") and name.endswith((UPLOAD_SUFFIX, PARTIAL_SUFFIX))


def _relative(path: str) -> None:
    """Refuse an absolute path: whoever sends "/etc/x" means a place outside the experiment."""
    if path.strip().startswith("/"):
        raise ValidationError("must be a path inside the experiment (without a leading '/')", "path")


def _new_place(root: Path, path: str) -> Path:
    """Where a person may put something new: inside the experiment (``root``, resolved),
    not the experiment itself, not in or under Processed (jobs write it), under a name
    without control characters."""
    _relative(path)
    if _CONTROL.search(path):
        raise ValidationError("must not contain control characters (newlines, tabs, escapes)", "path")
    target = resolve_inside(root, path, "path", must_exist=False)
    if target == root:
        raise ValidationError("must name something inside the experiment", "path")
    if (root / PROCESSED).resolve() in [target, *target.parents]:
        raise ValidationError("the Processed folder is written by jobs only", "path")
    return target


def make_folder(ctx: Context, user: User, exp: Experiment, path: str) -> dict:
    """Make the folder ``path`` (and any missing folder above it) inside the experiment."""
    access.require(user, "experiment.write_data", exp, "experiment")
    if not isinstance(path, str) or not path.strip().strip("/"):
        raise ValidationError("must name a folder", "path")
    if any(part in ("", ".", "..") for part in path.strip().strip("/").split("/")):
        raise ValidationError("each part of a folder's path must be a name (not empty, '.' or '..')",
                              "path")
    root = experiment_dir(ctx.config, exp).resolve()
    target = _new_place(root, path.strip())
    if os.path.lexists(target):
        raise Conflict(f"{target.relative_to(root).as_posix()!r} already exists", "path")
    parts = target.relative_to(root).parts
    # As for uploads: made from the experiment folder down without following a link.
    try:
        os.close(job_files.open_folder(root, parts, create=True))
    except OSError as e:
        raise ValidationError(f"{path!r}: a part of it is not a folder", "path") from e
    return {"path": "/".join(parts)}


def open_file(ctx: Context, user: User, exp: Experiment, path: str) -> BinaryIO:
    """One file of the experiment, open for reading (the caller closes it): reached
    from the experiment folder without following any link, a regular file only."""
    access.require(user, "experiment.read_data", exp, "experiment")
    if not isinstance(path, str) or not path.strip().strip("/"):
        raise ValidationError("must name a file", "path")
    _relative(path)
    root = experiment_dir(ctx.config, exp).resolve()
    target = resolve_inside(root, path, "path", must_exist=False)
    if not target.exists():
        raise NotFound(f"{path!r} does not exist in the experiment", "path")
    if target.is_dir():
        raise ValidationError(f"{path!r} is a folder: choose a file", "path")
    try:
        return job_files.open_file(root, target.relative_to(root).as_posix())
    except UnsafeJobFile:
        raise NotFound(f"{path!r} is not a file that can be downloaded", "path") from None


def folder_path(ctx: Context, exp: Experiment, path: str) -> str:
    """``path`` as the folder it names, relative to the experiment ("" for its top):
    for showing where a person is."""
    root = experiment_dir(ctx.config, exp).resolve()
    rel = resolve_inside(root, path or "", "path").relative_to(root).as_posix()
    return "" if rel == "." else rel


def in_processed(path: str) -> bool:
    """Whether the folder ``path`` (as folder_path gives it) is Processed or inside it."""
    return path == PROCESSED or path.startswith(PROCESSED + "/")


def write_file(ctx: Context, user: User, exp: Experiment, path: str, stream: BinaryIO) -> dict:
    """Store an uploaded file at ``path`` inside the experiment (raw data upload), up
    to the upload limit."""
    access.require(user, "experiment.write_data", exp, "experiment")
    max_bytes = ctx.max_upload_bytes
    root = experiment_dir(ctx.config, exp).resolve()
    if not isinstance(path, str) or not path or path.endswith("/"):
        raise ValidationError("must name a file", "path")
    target = _new_place(root, path)
    if target.is_dir():
        raise ValidationError(f"{path!r} is a folder", "path")
    # Members' jobs write here too: from the experiment folder down, no link is
    # followed, so a folder swapped for a link while this runs cannot send the upload
    # into the gateway's own state (the blob store, another experiment).
    *folders, name = target.relative_to(root).parts
    tmp, size = f".{name}{UPLOAD_SUFFIX}", 0
    try:
        dfd = job_files.open_folder(root, folders, create=True)
    except OSError as e:
        raise ValidationError(f"{path!r}: a part of it is not a folder", "path") from e
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dfd)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
                     dir_fd=dfd)
        with open(fd, "wb") as f:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"larger than {max_bytes // 2**20} MB", "path")
                f.write(chunk)
        try:
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except IsADirectoryError as e:
            raise ValidationError(f"{path!r} is a folder", "path") from e
    finally:
        # Too large, a client that went away, a full disk: no half file stays behind.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dfd)
        os.close(dfd)
    return {"path": str(target.relative_to(root)), "size": size}


def copy_to_processed(ctx: Context, exp: Experiment, folder_name: str, paths: JobPaths,
                      listing: job_files.Listing) -> tuple[Path, list[str]]:
    """Copy a finished job's listed output files to ``<experiment>/Processed/<folder_name>/``.

    Only regular files, each re-opened without following links (the job's output
    folder is hostile input; links are not copied). Idempotent: a second copy (poller
    re-run) replaces the first instead of nesting. The copy is the gateway's, readable
    by the experiment's Members' jobs, written by none. Returns the folder and what was
    skipped.
    """
    dest = experiment_dir(ctx.config, exp) / PROCESSED / folder_name
    tmp = dest.with_name(f".{folder_name}{PARTIAL_SUFFIX}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    skipped = job_files.copy_files(paths.base, OUTPUT, listing, tmp)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest, skipped


def project_dict(p: Project) -> dict:
    return {"name": p.name, "owner": p.owner.username, "created_at": iso(p.created_at)}


def experiment_dict(e: Experiment) -> dict:
    return {"name": e.name, "project": e.project.name, "owner": e.owner.username,
            "created_at": iso(e.created_at)}
