"""Running a Job Template (validate inputs, render, submit) and plain sbatch scripts.

A job row is written before Slurm is asked, so a submit that fails is recorded with
its reason instead of vanishing, and a job Slurm accepted always has a row.
"""
from __future__ import annotations

import calendar
import logging
import os
import pwd
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from . import access, budgets, data, disk_access, job_callbacks, job_templates, notifications
from .config import License, MachineType
from .context import Context
from .db import database, iso
from .errors import Invalid, SlurmError, SlurmNoAnswer, ValidationError
from .inputs import InputType, coerce
from .job_notes import check_tag_name
from .job_paths import JobPaths
from .models import Experiment, Job, Tag, Template, TemplateVersion, User
from .render import RenderRequest, render_job_script
from .sbatch_directives import is_heterogeneous, parse_directives, parse_time_limit
from .slurm.client import SubmitRequest
from .slurm.states import FAILED
from .users import unix_user_for
from .validation import Problems, get_int, get_str, require_dict

logger = logging.getLogger(__name__)
MAX_SOFTWARE_DISK_GB = 10_000
UNCONFIRMED = "submission unconfirmed"


def slurm_job_name(job: Job) -> str:
    """The name the gateway gives a job in Slurm; it finds an unconfirmed submit by it.

    The submit time, to the microsecond, makes it unique across gateways sharing a
    cluster and across databases that start counting ids again (to the second, two
    test databases' job 1 could share a name, and one gateway adopt the other's job).
    """
    base = f"gw-{job.id}-{submit_stamp(job.submitted_at)}"
    return base if job.kind == "template" else f"{base}-{job.name}"


def submit_stamp(at: datetime) -> int:
    """A submit time as the microseconds in a Slurm name (single jobs' and arrays')."""
    return calendar.timegm(at.utctimetuple()) * 1_000_000 + at.microsecond


@dataclass
class RunPlan:
    template: Template
    version: TemplateVersion
    experiment: Experiment
    inputs: dict[str, str]        # as stored with the job (Path values relative)
    env: list[tuple[str, str]]    # as the job sees them (Path values absolute)
    machine_type: MachineType
    license: License
    software_disk_gb: int
    time_limit_minutes: int
    tags: list[str]
    notify: str = "none"  # tell the person when it ends: "end", "failure" or "none"


def _capped(max_minutes: int, limit: int) -> int:
    """A wall-time limit, refused above the site's ceiling (never more than 72 h)."""
    if limit > max_minutes:
        raise ValidationError(f"must be at most {max_minutes} minutes ({max_minutes // 60} hours)",
                              "time_limit_minutes")
    return limit


def _machine_type(ctx: Context, body: dict) -> MachineType:
    cfg = ctx.config
    mt_name = get_str(body, "machine_type", required=True, max_len=64)
    mt = cfg.machine_type(mt_name)
    if mt is None:
        raise ValidationError(f"unknown machine type {mt_name!r}; known: {sorted(cfg.machine_types)}",
                              "machine_type")
    return mt


def _time_limit(ctx: Context, body: dict) -> int:
    limit = get_int(body, "time_limit_minutes", default=ctx.config.slurm.default_time_minutes, minimum=1)
    return _capped(ctx.config.slurm.max_time_minutes, limit)


def license_for(ctx: Context, user: User, name: str, field: str = "license") -> License:
    """The licence a run charges; only its members (and sponsor) may charge it."""
    lic = ctx.config.license(name)
    if lic is None or not access.can(user, "license.view", lic):
        raise ValidationError(f"unknown license {name!r}", field)
    if not access.can(user, "license.charge", lic):
        raise ValidationError(f"you may not charge license {name!r}", field)
    return lic


def plan_run(ctx: Context, user: User, tpl: Template, body: dict, tasks: int = 1,
             check_budget: bool = True) -> RunPlan:
    """Check a run's body and plan it. Every wrong field is reported at once
    (``errors.Invalid``), so a form can show each problem next to its field. ``tasks``
    runs of it (a sweep's) must fit in what the licence's budget has left, unless
    ``check_budget`` is off (a preview shows the cost instead)."""
    require_dict(body)
    access.require(user, "template.run", tpl, "template")
    version = job_templates.get_version(tpl, body.get("version"))
    problems = Problems()
    project = problems.check(get_str, body, "project", required=True)
    experiment = problems.check(get_str, body, "experiment", required=True)
    exp = None
    if project and experiment:
        exp = data.get_experiment(ctx, user, project, experiment)
        access.require(user, "experiment.run_on", exp, "experiment")
    given = body.get("inputs") or {}
    if not isinstance(given, dict):
        raise ValidationError("must be an object of DC_ names to values", "inputs")
    known = {spec["name"] for spec in version.inputs}
    for name in given:
        if name not in known:
            problems.add(ValidationError(f"template {tpl.name!r} v{version.version} has no input {name}",
                                         f"inputs.{name}"))
    inputs: dict[str, str] = {}
    for spec in version.inputs:
        field = f"inputs.{spec['name']}"
        value = given.get(spec["name"], spec["default"])
        if value is None:
            problems.add(ValidationError("is required (the template gives no default)", field))
            continue
        text = problems.check(coerce, spec, value, field)
        if text is not None:
            inputs[spec["name"]] = text
    root = data.experiment_dir(ctx.config, exp) if exp is not None else None
    env = job_env(version, inputs, root, problems.check)
    mt = problems.check(_machine_type, ctx, body)
    lic = problems.check(lambda: license_for(ctx, user, get_str(body, "license", required=True,
                                                                  max_len=64)))
    disk = problems.check(get_int, body, "software_disk_gb", default=10, minimum=1,
                          maximum=MAX_SOFTWARE_DISK_GB)
    limit = problems.check(_time_limit, ctx, body)
    tags = body.get("tags") or []
    if not isinstance(tags, list):
        problems.add(ValidationError("must be a list of tag names", "tags"))
        tags = []
    tags = sorted({t for t in (problems.check(check_tag_name, t, "tags") for t in tags) if t})
    if check_budget and mt is not None and lic is not None and limit is not None:
        problems.check(budgets.refuse_past_budget, ctx, lic, mt, limit, tasks)
    notify = problems.check(notifications.choice_for_run, user, body) or "none"
    problems.raise_any()
    return RunPlan(tpl, version, exp, inputs, env, mt, lic, disk, limit, tags, notify)


def job_env(version: TemplateVersion, inputs: dict[str, str], root: Path | None,
            check: Callable[..., Any] = lambda fn, *args: fn(*args)) -> list[tuple[str, str]]:
    """The DC_ variables as the job sees them, in the template's order: Path values
    resolved inside the experiment folder ``root`` (through ``check``, which may collect
    the error instead of raising it); inputs missing from ``inputs`` are left out."""
    env = []
    for spec in version.inputs:
        name = spec["name"]
        if name not in inputs:
            continue
        value = inputs[name]
        if spec["type"] == InputType.PATH and root is not None:
            value = check(data.resolve_inside, root, value, f"inputs.{name}")
        env.append((name, str(value)))
    return env


def check(ctx: Context, user: User, tpl: Template, body: dict) -> list[ValidationError]:
    """What is wrong with a run's body, all of it (empty when it would be submitted)."""
    try:
        plan_run(ctx, user, tpl, body)
    except Invalid as e:
        return e.problems
    except ValidationError as e:
        return [e]
    return []


# What a preview shows where a submitted job's script has its own callback token.
PREVIEW_TOKEN = "(made for each job at submit)"


def _render(ctx: Context, plan: RunPlan, job_id: int | str, slurm_name: str) -> str:
    tv, mt = plan.version, plan.machine_type
    ev = tv.environment_version
    is_job = str(job_id).isdigit()  # not a preview
    return render_job_script(RenderRequest(
        job_id=job_id, slurm_job_name=slurm_name, template_name=plan.template.name,
        template_version=tv.version,
        language=tv.language, script=tv.script, python_executable=tv.python_executable,
        environment=ev.environment.name, environment_version=ev.version,
        environment_setup=ev.setup, inputs=tuple(plan.env),
        partition=mt.partition, account=plan.license.slurm_account, cpus=mt.cpus,
        memory_mb=mt.memory_mb, gpus=mt.gpus, gres=mt.gres,
        software_disk_gb=plan.software_disk_gb, time_limit_minutes=plan.time_limit_minutes,
        paths=ctx.job_paths(job_id),
        scratch_root=ctx.config.slurm.scratch_root,
        callback_url=job_callbacks.url_for(ctx.config, job_id if is_job else "<job id>"),
        callback_token=job_callbacks.token_for(ctx.config, job_id) if is_job else PREVIEW_TOKEN,
    ))


def preview(ctx: Context, user: User, tpl: Template, body: dict) -> dict:
    """What a run with ``body`` would be: its sbatch script (job id shown as
    ``preview``), its worst-case cost and Slurm's guess of when it would start."""
    plan = plan_run(ctx, user, tpl, body, check_budget=False)
    return preview_dict(ctx, user, plan, _render(ctx, plan, "preview", "gw-preview"))


def preview_dict(ctx: Context, user: User, plan: RunPlan, script: str, tasks: int = 1) -> dict:
    """A preview's answer: the script, the cost before it runs (``budgets.cost_dict``) and
    the start Slurm expects if it were submitted now (``sbatch --test-only`` as the
    person it would run as; an estimate, null with ``error`` when Slurm gives none)."""
    cost = budgets.cost_dict(ctx, plan.license, plan.machine_type, plan.time_limit_minutes, tasks)
    start: dict = {"at": None, "source": "sbatch --test-only (an estimate by Slurm)"}
    request = SubmitRequest(script=script, options=placed_io(ctx.job_paths("preview")),
                            user=unix_user_for(ctx.config, user) or None)
    try:
        start["at"] = iso(ctx.slurm.test_only(request))
    except SlurmError as e:
        start["error"] = e.message
    return {"script": script, "tasks": tasks, "cost": cost, "start_estimate": start}


def prepare_job_folder(ctx: Context, job_id: int, unix_user: str, files: list[dict]) -> JobPaths:
    """The job's folder: the template folder (with its support files) read-only for
    the job, the output and run folders writable by it, and nobody else let in (see
    disk_access). Safe to run again over a folder left half made."""
    if unix_user:
        _passwd(unix_user)  # before anything is made for a job that cannot run
    paths = ctx.job_paths(job_id)
    for d in (paths.base, paths.template_dir, paths.output_dir, paths.run_dir):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.access(paths.template_dir, os.W_OK):  # read-only once the folder is whole
        for f in files:
            # Moved into place whole: a file left from an earlier try is read-only.
            part = paths.template_dir / f".gateway-part-{secrets.token_hex(8)}"
            shutil.copyfile(ctx.blobs.path(f["sha256"]), part)
            os.chmod(part, 0o444)
            os.replace(part, paths.template_dir / f["name"])
    disk_access.open_job_folder(paths, unix_user, disk_access.owner_name(ctx.config.jobs_root))
    return paths


def _passwd(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise SlurmError(f"the Unix user {name!r} that this job would run as does not exist on the "
                         f"gateway host", "user") from None


def placed_io(paths: JobPaths) -> tuple[str, ...]:
    """The job's log, error and input, set by the gateway on the command line, where
    they win over the script's own #SBATCH lines: a script that names another file
    (``--output=/etc/shadow``) cannot make the gateway read and serve it."""
    return (f"--output={paths.log}", f"--error={paths.log}", "--input=/dev/null")


def _submit(ctx: Context, job: Job, script: str, options: tuple[str, ...] = (),
            workdir: str | None = None) -> Job:
    paths = ctx.job_paths(job.id)
    paths.script.write_text(script)
    options = (*options, *placed_io(paths))
    try:
        slurm_id = ctx.slurm.submit(SubmitRequest(script=script, options=options, user=job.unix_user or None,
                                                  workdir=workdir))
    except SlurmNoAnswer as e:
        # Slurm may have queued it before the time-out: the poller looks for the job by
        # its name and either adopts it or marks it not submitted. Never resubmit.
        Job.update(reason=f"{UNCONFIRMED}: {e.message}", unconfirmed_submit=True).where(
            Job.id == job.id).execute()
        e.message = (f"job {job.id}: {e.message}; the gateway will check whether Slurm "
                     f"accepted it (see the job's status)")
        e.job_id = job.id
        raise
    except SlurmError as e:
        # Recorded, not lost: the job shows as Failed with Slurm's reason, and the
        # caller gets the error (503 when Slurm is down).
        Job.update(status=FAILED, reason=f"not submitted: {e.message}", finalized=True).where(
            Job.id == job.id).execute()
        e.message = f"job {job.id} was not submitted: {e.message}"
        e.job_id = job.id
        raise
    Job.update(slurm_job_id=slurm_id, reason="").where(Job.id == job.id).execute()
    job.slurm_job_id, job.reason = slurm_id, ""
    logger.info("job %s submitted as Slurm job %s", job.id, slurm_id)
    return job


def submit(ctx: Context, user: User, tpl: Template, body: dict) -> Job:
    plan = plan_run(ctx, user, tpl, body)
    mt = plan.machine_type
    with database.atomic():
        job = Job.create(
            kind="template", name=tpl.name, template=tpl, template_version=plan.version,
            user=user, project=plan.experiment.project, experiment=plan.experiment,
            license=plan.license.name, slurm_account=plan.license.slurm_account,
            machine_type=mt.name, partition=mt.partition, software_disk_gb=plan.software_disk_gb,
            time_limit_minutes=plan.time_limit_minutes, inputs=plan.inputs, reason="submitting",
            unix_user=unix_user_for(ctx.config, user), notify=plan.notify,
        )
        # Tags given with the run: before a job starts only the person who runs it may tag it.
        for name in plan.tags:
            Tag.create(job=job, name=name, created_by=user)
        job.tag_names = list(plan.tags)  # what job_dict shows, without reading them back
    prepare_job_folder(ctx, job.id, job.unix_user, plan.version.files)
    return _submit(ctx, job, _render(ctx, plan, job.id, slurm_job_name(job)))


@dataclass
class ScriptPlan:
    """A plain script's submit, checked: what the gateway passes to sbatch."""
    script: str
    license: License
    time_limit_minutes: int
    partition: str
    partition_given: bool  # on the command line, where it wins over the script's
    name: str
    workdir: str | None
    experiment: Experiment | None
    array: str  # the script's own #SBATCH --array value; "" for a single job


def plan_script(ctx: Context, user: User, body: dict) -> ScriptPlan:
    """Check a plain sbatch script's body (the wrapper's path). Nothing is written."""
    require_dict(body)
    script = get_str(body, "script", required=True, max_len=1_000_000)
    if not script.startswith("#!"):
        raise ValidationError("must start with an interpreter line such as #!/bin/bash", "script")
    lic = license_for(ctx, user, get_str(body, "license", required=True, max_len=64))
    directives = parse_directives(script)
    # The gateway follows and charges each Slurm job (or array task) it submits: a
    # heterogeneous job would run parts it never sees.
    if is_heterogeneous(script):
        raise ValidationError("heterogeneous jobs (#SBATCH hetjob) cannot be tracked through the "
                              "gateway: submit each component as a job of its own", "script")
    cfg = ctx.config.slurm
    limit = get_int(body, "time_limit_minutes", minimum=1)
    if limit is None:
        limit = (parse_time_limit(directives["time"], "script")
                 if directives.get("time") else cfg.default_time_minutes)
    limit = _capped(cfg.max_time_minutes, limit)
    partition = get_str(body, "partition", max_len=64) or directives.get("partition", "")
    name = get_str(body, "job_name", max_len=100) or directives.get("job-name", "") or "sbatch"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100]
    workdir = get_str(body, "workdir", max_len=4096) or None
    if workdir and not workdir.startswith("/"):
        raise ValidationError("must be an absolute path", "workdir")
    exp = None
    if body.get("project") or body.get("experiment"):
        exp = data.get_experiment(ctx, user, get_str(body, "project", required=True),
                                  get_str(body, "experiment", required=True))
        access.require(user, "experiment.run_on", exp, "experiment")
    return ScriptPlan(script=script, license=lic, time_limit_minutes=limit, partition=partition,
                      partition_given=bool(get_str(body, "partition")), name=name, workdir=workdir,
                      experiment=exp, array=directives.get("array", ""))


def script_options(plan: ScriptPlan) -> list[str]:
    """The options a plain script is submitted with, on the command line where they win
    over its own #SBATCH lines: the licence's account and the capped time limit."""
    options = [f"--account={plan.license.slurm_account}", f"--time={plan.time_limit_minutes}"]
    if plan.partition_given:
        options.append(f"--partition={plan.partition}")
    return options


def script_job_row(ctx: Context, user: User, plan: ScriptPlan) -> dict:
    """The Job row of a plain script (or of one task of its array)."""
    exp = plan.experiment
    return dict(kind="sbatch", name=plan.name[:128], user=user, license=plan.license.name,
                slurm_account=plan.license.slurm_account, partition=plan.partition,
                project=exp.project if exp else None, experiment=exp,
                time_limit_minutes=plan.time_limit_minutes, reason="submitting",
                unix_user=unix_user_for(ctx.config, user))


def submit_script(ctx: Context, user: User, plan: ScriptPlan) -> Job:
    """Submit a plain sbatch script as one job, tracked and charged like any job."""
    with database.atomic():
        job = Job.create(**script_job_row(ctx, user, plan))
    paths = prepare_job_folder(ctx, job.id, job.unix_user, [])
    options = [*script_options(plan), f"--export=ALL,JOB_ID={job.id},JOB_OUTPUT_DIR={paths.output_dir}",
               f"--job-name={slurm_job_name(job)}"]
    return _submit(ctx, job, plan.script, tuple(options), workdir=plan.workdir or str(paths.run_dir))
