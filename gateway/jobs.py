"""Reading jobs: listing, details, log, output files; and cancelling."""
from __future__ import annotations

from typing import BinaryIO

from peewee import JOIN

from . import access, job_files, job_reasons
from .context import Context
from .db import iso, utcnow
from .errors import Conflict, Forbidden, NotFound, ValidationError
from .hours import hours
from .job_paths import LOG, OUTPUT
from .models import Experiment, Job, Project, Tag, Template, TemplateVersion, User
from .slurm.states import FINAL_STATUSES, STATUSES
from .validation import by_id, parse_id

MAX_PER_PAGE = 500
LOG_CHUNK = 1 << 20
MAX_PAGE = 10**7


def get_job(ctx: Context, user: User, job_id: int | str) -> Job:
    job = by_id(Job, job_id)
    if job is None or not access.can(user, "job.view", job):
        raise NotFound(f"job {job_id} not found", "job")
    return job


def list_jobs(ctx: Context, user: User, status: str | None = None, template: str | None = None,
              project: str | None = None, tag: str | None = None, page: int = 1,
              per_page: int = 50, mine: bool = False, text: str | None = None,
              sweep: str | None = None, before: int | None = None) -> tuple[list[Job], int]:
    """A page of the jobs ``user`` may see, newest first, and how many there are in all.

    ``mine``: only the jobs ``user`` ran; ``text``: jobs whose number, Slurm id, name,
    submitter, project, experiment or a tag holds it; ``sweep``: the tasks of a sweep;
    ``before``: only jobs numbered below it (a cursor: the last id of the page before,
    which costs the same however deep, where ``page`` skips rows; pages count from it).
    The total counts every job of the filters, the cursor aside.
    """
    if not 1 <= page <= MAX_PAGE:
        raise ValidationError(f"must be between 1 and {MAX_PAGE}", "page")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValidationError(f"must be between 1 and {MAX_PER_PAGE}", "per_page")
    # Visibility and every filter are SQL: a page costs the same few queries whatever
    # its size or the filters (one more to read the ids of the data one sees first: a
    # long list is then filtered through the jobs' indexes).
    query = access.visible_jobs(user, Job.select(), ids_first=True)
    if tag:
        query = query.where(Job.id.in_(Tag.select(Tag.job).where(Tag.name == tag)))
    if status:
        if status not in STATUSES:
            raise ValidationError(f"must be one of {list(STATUSES)}", "status")
        query = query.where(Job.status == status)
    if template:
        key = parse_id(template)
        query = query.where(Job.template.in_(Template.select(Template.id).where(
            (Template.id == key) if key is not None else (Template.name == template))))
    if project:
        query = query.where(Job.project.in_(Project.select(Project.id).where(Project.name == project)))
    if mine:
        query = query.where(Job.user == user)
    if sweep is not None:
        key = parse_id(sweep)
        if key is None:
            raise ValidationError("must be a sweep number", "sweep")
        query = query.where(Job.sweep == key)
    if text and text.strip():
        query = query.where(_text_matches(text.strip()))
    total = query.count()
    if before is not None:
        query = query.where(Job.id < before)
    return page_with_related(query.order_by(Job.id.desc()).paginate(page, per_page), Job.id.desc()), total


def page_with_related(page, *order) -> list[Job]:
    """The jobs of ``page`` (a Job query, ordered and cut to a page) in ``order``, with
    their related rows (with_related).

    The page's ids are picked in a subquery, then only their rows are read and joined:
    the database orders and skips the narrow ids alone, never every column of every job
    a filter leaves (a Member's filter matches through several indexes, none of which
    gives the order; PostgreSQL joined and sorted all of a sweep's tasks to skip to its
    last page). Joined, not ``IN``: peewee writes an ``IN`` subquery twice, and the
    visibility filter's nested subqueries made that cost more than running the query.
    """
    ids = page.select(Job.id.alias("page_id")).alias("page")
    return with_related(Job.select().join(ids, on=(Job.id == ids.c.page_id)).switch(Job).order_by(*order))


# What job_dict and the Jobs table show of a job's related rows: (foreign key, columns).
_RELATED = ((Job.user, (User.username, User.display_name)),
            (Job.template_version, (TemplateVersion.template, TemplateVersion.version)),
            (Job.project, (Project.name,)),
            (Job.experiment, (Experiment.project, Experiment.name)))


def _alias(fk, column) -> str:
    return f"_{fk.name}_{column.name}"


def with_related(query) -> list[Job]:
    """The jobs of ``query`` with what job_dict and the Jobs table show of their related
    rows, and their tags: two queries whatever the list's length.

    The related columns (only those: a version's script would cost more to read than
    the job) come in each job's own row, and each related row is built once however
    many jobs share it (a sweep's thousand tasks share one person, version and
    experiment): building joined rows for every job cost more than the job itself.
    """
    columns = [c.alias(_alias(fk, c)) for fk, cs in _RELATED for c in cs]
    rows = list(query.select(Job, *columns).switch(Job)
                .join(User, on=(Job.user == User.id)).switch(Job)
                .join(TemplateVersion, JOIN.LEFT_OUTER, on=(Job.template_version == TemplateVersion.id))
                .switch(Job).join(Project, JOIN.LEFT_OUTER, on=(Job.project == Project.id))
                .switch(Job).join(Experiment, JOIN.LEFT_OUTER, on=(Job.experiment == Experiment.id))
                .objects())
    for fk, cs in _RELATED:
        built: dict[int, object] = {}
        for j in rows:
            key = getattr(j, fk.object_id_name)
            if key is None:
                continue
            related = built.get(key)
            if related is None:
                related = built[key] = fk.rel_model(id=key, **{c.name: getattr(j, _alias(fk, c)) for c in cs})
            setattr(j, fk.name, related)
    load_tags(rows)
    return rows


MAX_TEXT = 200


def _text_matches(text: str):
    """Jobs whose number, Slurm id, name, submitter, project, experiment or a tag holds
    ``text`` (subqueries: the page still costs the same few queries)."""
    if len(text) > MAX_TEXT:
        raise ValidationError(f"must be at most {MAX_TEXT} characters", "text")
    cond = ((Job.name.contains(text)) | (Job.slurm_job_id == text)
            | Job.user.in_(User.select(User.id).where(User.username.contains(text)))
            | Job.project.in_(Project.select(Project.id).where(Project.name.contains(text)))
            | Job.experiment.in_(Experiment.select(Experiment.id).where(Experiment.name.contains(text)))
            | Job.id.in_(Tag.select(Tag.job).where(Tag.name.contains(text))))
    number = parse_id(text.removeprefix("#"))
    return cond | (Job.id == number) if number is not None else cond


def read_log(ctx: Context, job: Job, offset: int = 0) -> tuple[bytes, int]:
    """Bytes of the log from ``offset`` (for tailing) and the offset to ask for next.

    Only the log the gateway placed (``JobPaths.log``, set on sbatch's command line
    over anything the script says), opened without following links.
    """
    if offset < 0:
        raise ValidationError("must not be negative", "offset")
    chunk = job_files.read_range(ctx.job_paths(job.id).base, LOG, offset, LOG_CHUNK)
    return chunk, offset + len(chunk)


def open_output_file(ctx: Context, job: Job, relative: str) -> BinaryIO:
    """An open output file of the job (the caller streams and closes it)."""
    try:
        return job_files.open_file(ctx.job_paths(job.id).base, f"{OUTPUT}/{relative}")
    except job_files.UnsafeJobFile:
        raise NotFound(f"{relative!r} is not an output file of job {job.id}", "path") from None


def list_output_files(ctx: Context, job: Job) -> job_files.Listing:
    return job_files.list_files(ctx.job_paths(job.id).base, OUTPUT, ctx.config.max_output_entries)


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
    path = ctx.job_paths(job.id).script
    text = path.read_text() if path.exists() else ""
    from .job_callbacks import redact  # the job's callback token is not its readers'
    return redact(text) if job.template_id is not None else text


def cancel(ctx: Context, user: User, job: Job) -> Job:
    access.require(user, "job.cancel", job, "job")
    if job.status in FINAL_STATUSES:
        raise Conflict(f"job {job.id} has already ended ({job.status})", "job")
    if not job.slurm_job_id:
        raise Conflict(f"job {job.id} has no Slurm job yet", "job")
    ctx.slurm.cancel(job.slurm_job_id, user=job.unix_user or None)
    # Slurm records the uid scancel ran as (the job's own user): who asked is kept here.
    Job.update(cancelled_by=user.username, cancelled_at=utcnow()).where(Job.id == job.id).execute()
    job.cancelled_by = user.username
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
        "reason": job_reasons.shown_reason(job), "exit_code": job.exit_code,
        "expected_start_at": iso(job_reasons.expected_start(job)),
        "cancelled_by": job_reasons.canceller(job),
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
        "sweep": job.sweep_id, "array_task": job.array_task,
        "efficiency": job.efficiency, "notify": job.notify,
        "tags": tag_names(job),
    }


def load_tags(rows: list[Job]) -> None:
    """Load the tags of all ``rows`` in one query (what tag_names then returns)."""
    names: dict[int, list[str]] = {j.id: [] for j in rows}
    if not names:
        return
    for job_id, name in (Tag.select(Tag.job, Tag.name).where(Tag.job.in_(list(names)))
                         .order_by(Tag.name).tuples()):
        names[job_id].append(name)
    for j in rows:
        j.tag_names = names[j.id]


def tag_names(job: Job) -> list[str]:
    """The job's tags by name, as loaded by load_tags, or read now."""
    loaded = job.__dict__.get("tag_names")
    if loaded is not None:
        return loaded
    return [name for (name,) in Tag.select(Tag.name).where(Tag.job == job).order_by(Tag.name).tuples()]
