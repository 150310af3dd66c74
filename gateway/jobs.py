"""Reading jobs: listing, details, log, output files; and cancelling."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from peewee import JOIN

from . import access, job_files
from .charging import hours
from .context import Context
from .db import iso
from .errors import Conflict, Forbidden, NotFound, ValidationError
from .job_paths import LOG, OUTPUT, JobPaths
from .models import Job, Project, Tag, Template, TemplateVersion, User
from .slurm.states import FINAL_STATUSES, STATUSES
from .validation import by_id, parse_id

MAX_PER_PAGE = 500
LOG_CHUNK = 1 << 20
MAX_PAGE = 10**7


def get_job(user: User, job_id) -> Job:
    job = by_id(Job, job_id)
    if job is None or not access.can(user, "job.view", job):
        raise NotFound(f"job {job_id} not found", "job")
    return job


def list_jobs(user: User, status: str | None = None, template: str | None = None,
              project: str | None = None, tag: str | None = None, page: int = 1,
              per_page: int = 50) -> tuple[list[Job], int]:
    if not 1 <= page <= MAX_PAGE:
        raise ValidationError(f"must be between 1 and {MAX_PAGE}", "page")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValidationError(f"must be between 1 and {MAX_PER_PAGE}", "per_page")
    query = access.visible_jobs(user, Job.select())
    if tag:
        query = query.where(Job.id.in_(Tag.select(Tag.job).where(Tag.name == tag)))
    if status:
        if status not in STATUSES:
            raise ValidationError(f"must be one of {list(STATUSES)}", "status")
        query = query.where(Job.status == status)
    if template:
        tpl = by_id(Template, template) if parse_id(template) else \
            Template.get_or_none(Template.name == template)
        query = query.where(Job.template == (tpl.id if tpl else -1))
    if project:
        proj = Project.get_or_none(Project.name == project)
        query = query.where(Job.project == (proj.id if proj else -1))
    total = query.count()
    # Who ran it and which version: joined here, so a page is one query, not one per row.
    rows = list(query.select(Job, User, TemplateVersion).join(User).switch(Job)
                .join(TemplateVersion, JOIN.LEFT_OUTER).order_by(Job.id.desc()).paginate(page, per_page))
    return rows, total


def paths(ctx: Context, job: Job) -> JobPaths:
    return JobPaths.of(ctx.config.jobs_root, job.id)


def job_dir(ctx: Context, job: Job) -> Path:
    return paths(ctx, job).base


def read_log(ctx: Context, job: Job, offset: int = 0) -> tuple[bytes, int]:
    """Bytes of the log from ``offset`` (for tailing) and the offset to ask for next.

    Only the log the gateway placed (``run/job.log``, set on sbatch's command line
    over anything the script says), opened without following links.
    """
    if offset < 0:
        raise ValidationError("must not be negative", "offset")
    chunk = job_files.read_range(job_dir(ctx, job), LOG, offset, LOG_CHUNK)
    return chunk, offset + len(chunk)


def open_output_file(ctx: Context, job: Job, relative: str) -> BinaryIO:
    """An open output file of the job (the caller streams and closes it)."""
    try:
        return job_files.open_file(job_dir(ctx, job), f"{OUTPUT}/{relative}")
    except job_files.UnsafeJobFile:
        raise NotFound(f"{relative!r} is not an output file of job {job.id}", "path") from None


def list_output_files(ctx: Context, job: Job) -> job_files.Listing:
    return job_files.list_files(job_dir(ctx, job), OUTPUT, ctx.config.max_output_entries)


def read_script(ctx: Context, user: User, job: Job) -> str:
    """The script the job ran. A template job's rendered script holds the template's
    script and its environment's set-up: only those who may see the template's
    configuration get it; a plain sbatch script only its submitter (and admins)."""
    if job.template_id is not None:
        if not access.can(user, "template.view_config", job.template):
            raise Forbidden("this job's script is not shown to you: you may not see its "
                            "template's configuration", "job")
    elif not access.can(user, "job.view_script", job):
        raise Forbidden("only the person who submitted this script may read it", "job")
    path = paths(ctx, job).script
    return path.read_text() if path.exists() else ""


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
        "output_files": job.output_files, "notes": job.notes,
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
