"""Plain scripts sent through the sbatch wrapper, single jobs and arrays alike.

A script with its own ``#SBATCH --array`` (or the wrapper's ``--array``) is submitted
unchanged, as the one Slurm array its author wrote, and becomes a sweep without a
template: every task index is a gateway job of its own, with its own folder, log,
status and charge from its own accounting record, exactly like a template sweep's
tasks. Slurm runs every task of an array with the same options, so the one place
that differs per task comes from Slurm's own ``%a`` in the log path: the gateway
makes a folder of links, ``<index> -> that task's job folder``, and points ``--output``
through it. Each task finds its own folder the same way, as
``$GATEWAY_TASKS/$SLURM_ARRAY_TASK_ID`` (its ``output/`` holds its result files).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from peewee import Cast, Value

from . import runs
from .context import Context
from .db import database, utcnow
from .errors import SlurmError, SlurmNoAnswer, ValidationError
from .job_paths import LOG
from .models import Job, Sweep, User
from .posix_acl import set_acl
from .slurm.arrays import parse_array_spec
from .slurm.client import SubmitRequest
from .slurm.states import FAILED
from .sweeps import array_job_name

logger = logging.getLogger(__name__)
TASKS = "tasks"  # in the first task's folder: index -> task folder links
GATEWAY_TASKS = "GATEWAY_TASKS"


def submit_sbatch(ctx: Context, user: User, body: dict) -> Job | Sweep:
    """A plain script's submit: one job, or a sweep of one job per array task."""
    plan = runs.plan_script(ctx, user, body)
    return submit_array(ctx, user, plan) if plan.array else runs.submit_script(ctx, user, plan)


def task_indexes(ctx: Context, spec: str) -> tuple[list[int], int | None]:
    """The task indexes and throttle of an ``--array`` value, within the gateway's and
    the cluster's limits."""
    try:
        indexes, throttle = parse_array_spec(spec)
    except ValueError:
        raise ValidationError(f"--array={spec} is not a task index list such as 0-9, 1,3,5, 0-99:2 "
                              f"or 0-99%10", "array") from None
    cfg = ctx.config.slurm
    if len(indexes) > cfg.max_sweep_tasks:
        raise ValidationError(f"--array={spec} has {len(indexes)} tasks, more than the "
                              f"{cfg.max_sweep_tasks} an array may have here", "array")
    if indexes[-1] >= cfg.max_array_size:
        raise ValidationError(f"task index {indexes[-1]} is above the cluster's largest, "
                              f"{cfg.max_array_size - 1}", "array")
    if throttle == 0:
        raise ValidationError("a throttle (%N) must be at least 1", "array")
    return indexes, throttle


def submit_array(ctx: Context, user: User, plan: runs.ScriptPlan) -> Sweep:
    indexes, throttle = task_indexes(ctx, plan.array)
    if not plan.workdir:
        # Slurm gives every task of an array the same working directory: none of the
        # tasks' own folders can be it.
        raise ValidationError("an array's tasks share one working directory: give workdir", "workdir")
    exp = plan.experiment
    now = utcnow()  # one submit time for every task: the array's name is made from it
    row = runs.script_job_row(ctx, user, plan)
    with database.atomic():
        sweep = Sweep.create(user=user, project=exp.project if exp else None, experiment=exp,
                             license=plan.license.name, throttle=throttle or len(indexes), created_at=now)
        Job.insert_many([{**row, "submitted_at": now, "sweep": sweep, "array_task": i}
                         for i in indexes]).execute()
        tasks = list(Job.select().where(Job.sweep == sweep).order_by(Job.array_task))
    for job in tasks:
        paths = runs.prepare_job_folder(ctx, job.id, job.unix_user, [])
        paths.script.write_text(plan.script)  # what `gateway script JOB` shows for each task
    links = _link_tasks(ctx, tasks)
    options = (*runs.script_options(plan), f"--job-name={array_job_name(sweep.id, 0, now)}",
               f"--export=ALL,{GATEWAY_TASKS}={links}",
               # Each task's log lands in its own folder, through the links: a name in
               # the script itself is overridden here, as for a single job.
               f"--output={links}/%a/{LOG}", f"--error={links}/%a/{LOG}", "--input=/dev/null")
    try:
        base = ctx.slurm.submit(SubmitRequest(script=plan.script, options=options,
                                              user=tasks[0].unix_user or None, workdir=plan.workdir))
    except SlurmNoAnswer as e:
        # The poller looks for the array by its name, as for a template sweep.
        Job.update(reason=f"{runs.UNCONFIRMED}: {e.message}", unconfirmed_submit=True).where(
            Job.sweep == sweep).execute()
        e.message = (f"array {sweep.id}: {e.message}; the gateway will check whether Slurm accepted it "
                     f"(see `gateway sweep {sweep.id}`)")
        raise
    except SlurmError as e:
        Job.update(status=FAILED, reason=f"not submitted: {e.message}", finalized=True).where(
            Job.sweep == sweep).execute()
        e.message = f"array {sweep.id} was not submitted: {e.message}"
        raise
    # A task's index is its index in Slurm: the array is the script's own.
    Job.update(slurm_job_id=Value(f"{base}_").concat(Cast(Job.array_task, "text")), reason="").where(
        Job.sweep == sweep).execute()
    sweep.array_job_ids = [base]
    Sweep.update(array_job_ids=sweep.array_job_ids).where(Sweep.id == sweep.id).execute()
    logger.info("script array %s: %s tasks submitted as Slurm array %s", sweep.id, len(tasks), base)
    return sweep


def _link_tasks(ctx: Context, tasks: list[Job]) -> Path:
    """The first task's ``tasks/`` folder: ``<index> -> <task's job folder>`` for each
    task. Written by the gateway only and read-only for the job's user, so no task
    can point another's log elsewhere; the gateway itself never reads through it."""
    links = ctx.job_paths(tasks[0].id).base / TASKS
    links.mkdir(mode=0o700)
    for job in tasks:
        os.symlink(ctx.job_paths(job.id).base, links / str(job.array_task))
    set_acl(links, "u::r-x,g::r-x,o::r-x")
    return links
