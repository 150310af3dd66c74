"""Reading jobs: listing, details, log, output files; and cancelling."""
from __future__ import annotations

import os
from pathlib import Path

from peewee import JOIN

from . import access
from .charging import hours
from .context import Context
from .data import resolve_inside
from .db import iso
from .errors import Conflict, NotFound, ValidationError
from .models import Job, Project, Tag, Template, TemplateVersion, User
from .sbatch_directives import parse_directives
from .slurm.states import FINAL_STATUSES, STATUSES
from .validation import by_id

MAX_PER_PAGE = 500
LOG_CHUNK = 1 << 20


def get_job(user: User, job_id) -> Job:
    job = by_id(Job, job_id)
    if job is None or not access.can(user, "job.view", job):
        raise NotFound(f"job {job_id} not found", "job")
    return job


def list_jobs(user: User, status: str | None = None, template: str | None = None,
              project: str | None = None, tag: str | None = None, page: int = 1,
              per_page: int = 50) -> tuple[list[Job], int]:
    query = access.visible_jobs(user, Job.select())
    if tag:
        query = query.where(Job.id.in_(Tag.select(Tag.job).where(Tag.name == tag)))
    if status:
        if status not in STATUSES:
            raise ValidationError(f"must be one of {list(STATUSES)}", "status")
        query = query.where(Job.status == status)
    if template:
        tpl = Template.get_or_none(Template.id == int(template)) if template.isdigit() else \
            Template.get_or_none(Template.name == template)
        query = query.where(Job.template == (tpl.id if tpl else -1))
    if project:
        proj = Project.get_or_none(Project.name == project)
        query = query.where(Job.project == (proj.id if proj else -1))
    if page < 1:
        raise ValidationError("must be at least 1", "page")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValidationError(f"must be between 1 and {MAX_PER_PAGE}", "per_page")
    total = query.count()
    # Who ran it and which version: joined here, so a page is one query, not one per row.
    rows = list(query.select(Job, User, TemplateVersion).join(User).switch(Job)
                .join(TemplateVersion, JOIN.LEFT_OUTER).order_by(Job.id.desc()).paginate(page, per_page))
    return rows, total


def job_dir(ctx: Context, job: Job) -> Path:
    return ctx.config.jobs_root / str(job.id)


def log_path(ctx: Context, job: Job) -> Path | None:
    """Where Slurm writes the job's log. Plain sbatch scripts may name their own file."""
    default = job_dir(ctx, job) / "run" / "job.log"
    if job.kind != "sbatch":
        return default
    script = job_dir(ctx, job) / "job.sbatch"
    pattern = parse_directives(script.read_text()).get("output") if script.exists() else None
    if not pattern:
        return default
    for key, value in (("%j", job.slurm_job_id or ""), ("%A", job.slurm_job_id or ""),
                       ("%x", job.name), ("%u", job.user.username), ("%%", "%")):
        pattern = pattern.replace(key, value)
    return None if "%" in pattern or not pattern.startswith("/") else Path(pattern)


def read_log(ctx: Context, job: Job, offset: int = 0) -> tuple[bytes, int]:
    """Bytes of the log from ``offset`` (for tailing) and the offset to ask for next."""
    if offset < 0:
        raise ValidationError("must not be negative", "offset")
    path = log_path(ctx, job)
    if path is None or not path.exists():
        return b"", offset
    with open(path, "rb") as f:
        f.seek(offset)
        chunk = f.read(LOG_CHUNK)
    return chunk, offset + len(chunk)


def output_file(ctx: Context, job: Job, relative: str) -> Path:
    base = job_dir(ctx, job) / "output"
    target = resolve_inside(base, relative, "path")
    if not target.is_file():
        raise NotFound(f"{relative!r} is not an output file of job {job.id}", "path")
    return target


def list_output_files(ctx: Context, job: Job) -> list[dict]:
    base = (job_dir(ctx, job) / "output").resolve()
    files = []
    for root, _dirs, names in os.walk(base):
        for name in names:
            p = Path(root) / name
            if p.is_symlink() or not p.is_file():
                continue
            files.append({"path": str(p.relative_to(base)), "size": p.stat().st_size})
    return sorted(files, key=lambda f: f["path"])


def cancel(ctx: Context, user: User, job: Job) -> Job:
    access.require(user, "job.cancel", job, "job")
    if job.status in FINAL_STATUSES:
        raise Conflict(f"job {job.id} has already ended ({job.status})", "job")
    if not job.slurm_job_id:
        raise Conflict(f"job {job.id} has no Slurm job yet", "job")
    ctx.slurm.cancel(job.slurm_job_id, user=job.unix_user or None)
    return job


def job_dict(job: Job) -> dict:
    return {
        "id": job.id, "kind": job.kind, "name": job.name,
        "template_id": job.template_id,
        "template_version": job.template_version.version if job.template_version_id else None,
        "user": job.user.username,
        "project": job.project.name if job.project_id else None,
        "experiment": job.experiment.name if job.experiment_id else None,
        "status": job.status, "slurm_job_id": job.slurm_job_id, "slurm_state": job.slurm_state,
        "reason": job.reason, "exit_code": job.exit_code,
        "inputs": job.inputs, "output_variables": job.output_variables,
        "output_files": job.output_files,
        "machine_type": job.machine_type, "partition": job.partition,
        "software_disk_gb": job.software_disk_gb, "time_limit_minutes": job.time_limit_minutes,
        "license": job.license, "slurm_account": job.slurm_account,
        "alloc_cpus": job.alloc_cpus, "alloc_gpus": job.alloc_gpus,
        "elapsed_seconds": job.elapsed_seconds,
        "cpu_seconds": job.cpu_seconds, "gpu_seconds": job.gpu_seconds,
        "cpu_hours": hours(job.cpu_seconds), "gpu_hours": hours(job.gpu_seconds),
        "submitted_at": iso(job.submitted_at), "started_at": iso(job.started_at),
        "ended_at": iso(job.ended_at), "finalized": job.finalized,
        "unix_user": job.unix_user or None,
        "tags": [t.name for t in job.tags.order_by(Tag.name)],
    }
