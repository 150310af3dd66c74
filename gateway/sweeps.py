"""Sweeps: one Job Template run over many inputs, submitted as Slurm job arrays.

A run body becomes a sweep when any input is given as ``{"values": [...]}``,
``{"range": {"start", "stop", "step"}}`` (integer and number inputs, the stop
included when a step lands on it) or, for a Path input, ``{"glob": "raw/*.h5"}``
(matched inside the experiment). The tasks are the product of the swept inputs'
values (or, with ``"mode": "zip"``, the values taken side by side).

Every task is a gateway job of its own (folder, rendered script with its inputs,
status, log, outputs, charge from its own accounting record); the sweep submits them
with one ``sbatch --array`` per ``max_array_size`` tasks, whose script only picks
the task's own script by ``SLURM_ARRAY_TASK_ID``. Job rows are written before Slurm
is asked, as for single runs, so a failed or unanswered submit loses nothing.
"""
from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from peewee import Cast, Value, fn

from . import access, data, job_templates, jobs, results_table, runs
from .context import Context
from .db import database, insert_rows, utcnow
from .errors import GatewayError, NotFound, SlurmError, SlurmNoAnswer, ValidationError
from .inputs import InputType, coerce
from .models import Job, Sweep, Tag, Template, User
from .render import ArrayRequest, render_array_script
from .slurm.client import SubmitRequest
from .slurm.states import FAILED, STATUSES
from .users import unix_user_for
from .validation import get_int, parse_id, require_dict

logger = logging.getLogger(__name__)
SWEEP_KEYS = ("values", "range", "glob", "many")
MODES = ("product", "zip")
# How long a task that starts before the gateway has made its folder waits for it
# (the poller makes the folders a stopped gateway left unmade).
TASK_FOLDER_WAIT_S = 600


def is_swept(value: Any) -> bool:
    return isinstance(value, dict) and any(k in value for k in SWEEP_KEYS)


def is_sweep(body: dict) -> bool:
    """Whether a run body asks for many values of any input (then it is a sweep)."""
    inputs = body.get("inputs")
    return isinstance(inputs, dict) and any(is_swept(v) for v in inputs.values())


_RANGE_TEXT = re.compile(r"^\s*([-+]?[\d.]+)\s*\.\.\s*([-+]?[\d.]+)(?:\s+step\s+([-+]?[\d.]+))?\s*$")
GLOB_CHARS = ("*", "?", "[")


def parse_many(spec: dict, text: str) -> dict:
    """Many values as a person types them (the portal's "run over many values", the
    CLI's DC_X=1,2,3): a comma-separated list; for integer and number inputs also a
    range "1..10" or "0..1 step 0.25"; for a Path input with * ? or [ a glob."""
    text = text.strip()
    if spec["type"] == InputType.PATH and any(c in text for c in GLOB_CHARS):
        return {"glob": text}
    m = _RANGE_TEXT.match(text)
    if m and spec["type"] in (InputType.INTEGER, InputType.NUMBER):
        return {"range": {"start": m.group(1), "stop": m.group(2), "step": m.group(3) or 1}}
    return {"values": [v.strip() for v in text.split(",") if v.strip()]}


def _range_values(spec: dict, raw: Any, field: str, limit: int) -> list[str]:
    if spec["type"] not in (InputType.INTEGER, InputType.NUMBER):
        raise ValidationError("a range is for integer and number inputs; give values instead", field)
    if not isinstance(raw, dict) or not {"start", "stop"} <= set(raw) or set(raw) - {"start", "stop", "step"}:
        raise ValidationError("a range is {start, stop, step}", field)
    start, stop = (float(coerce(spec, raw[k], f"{field}.range.{k}")) for k in ("start", "stop"))
    step = float(coerce(spec, raw.get("step", 1), f"{field}.range.step"))
    if step == 0 or (stop - start) * step < 0:
        raise ValidationError(f"the range from {raw['start']} to {raw['stop']} by {raw.get('step', 1)} "
                              f"holds no value", field)
    # The stop is included when a step lands on it (up to rounding of decimal steps).
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > limit:
        raise ValidationError(f"the range holds {count} values, more than the {limit} tasks a sweep "
                              f"may have", field)
    return [coerce(spec, start + k * step, field) for k in range(count)]


def _glob_values(ctx: Context, spec: dict, pattern: Any, field: str, exp_root: Path, limit: int) -> list[str]:
    if spec["type"] != InputType.PATH:
        raise ValidationError("a glob is for path inputs", field)
    if not isinstance(pattern, str) or not pattern.strip() or "\0" in pattern:
        raise ValidationError("the glob must be a pattern such as raw/*.h5", field)
    if pattern.startswith("/") or ".." in pattern.split("/"):
        raise ValidationError("the glob must stay inside the experiment (no leading '/', no '..')", field)
    root = exp_root.resolve()
    found = []
    # Counted as they come (sorted after): a pattern over a huge folder is refused at
    # the limit instead of being listed whole.
    for match in root.glob(pattern):
        try:
            data.resolve_inside(root, str(match.relative_to(root)), field)
        except ValidationError:
            continue  # a link out of the experiment: never a task's input
        if match.name.startswith(".") and match.name.endswith((data.UPLOAD_SUFFIX, data.PARTIAL_SUFFIX)):
            continue  # a file still being written
        found.append(match.relative_to(root).as_posix())
        if len(found) > limit:
            raise ValidationError(f"the glob matches more than the {limit} tasks a sweep may have", field)
    found.sort()
    if not found:
        raise ValidationError(f"the glob {pattern!r} matches nothing in the experiment", field)
    return found


def swept_values(ctx: Context, spec: dict, raw: dict, field: str, exp_root: Path | None) -> list[str]:
    """The values a swept input takes, each as the job will see it."""
    limit = ctx.config.slurm.max_sweep_tasks
    keys = [k for k in SWEEP_KEYS if k in raw]
    if len(keys) != 1 or set(raw) - {keys[0]}:
        raise ValidationError("give exactly one of values, range, glob or many", field)
    if keys[0] == "many":
        # Many values as a person typed them (the command line): read by the input's type.
        if not isinstance(raw["many"], str):
            raise ValidationError("many values are given as text, e.g. 1,2,3 or 1..10 or raw/*.h5", field)
        return swept_values(ctx, spec, parse_many(spec, raw["many"]), field, exp_root)
    if keys[0] == "range":
        return _range_values(spec, raw["range"], field, limit)
    if keys[0] == "glob":
        if exp_root is None:
            raise ValidationError("a glob needs the project and experiment it matches in", field)
        return _glob_values(ctx, spec, raw["glob"], field, exp_root, limit)
    values = raw["values"]
    if not isinstance(values, list):
        raise ValidationError("values must be a list", field)
    if not values:
        raise ValidationError("a sweep over no values has nothing to run: give at least one", field)
    if len(values) > limit:
        raise ValidationError(f"{len(values)} values, more than the {limit} tasks a sweep may have", field)
    return [coerce(spec, v, field) for v in values]


def _experiment_root(ctx: Context, user: User, body: dict) -> Path | None:
    project, experiment = body.get("project"), body.get("experiment")
    if not (isinstance(project, str) and isinstance(experiment, str) and project and experiment):
        return None  # plan_run names what is missing
    return data.experiment_dir(ctx.config, data.get_experiment(ctx, user, project, experiment))


def plan_sweep(ctx: Context, user: User, tpl: Template, body: dict, check_budget: bool = True
               ) -> tuple[runs.RunPlan, list[str], list[dict[str, str]], str, int]:
    """Check a sweep's body: the plan every task shares, the swept input names, each
    task's swept values, the mode and the throttle. Nothing is written."""
    require_dict(body)
    access.require(user, "template.run", tpl, "template")
    given = body.get("inputs") or {}
    if not isinstance(given, dict):
        raise ValidationError("must be an object of DC_ names to values", "inputs")
    mode = body.get("mode", "product")
    if mode not in MODES:
        raise ValidationError(f"must be one of {list(MODES)}", "mode")
    limit = ctx.config.slurm.max_sweep_tasks
    throttle = get_int(body, "throttle", default=ctx.config.slurm.default_sweep_throttle, minimum=1,
                       maximum=limit)
    version = job_templates.get_version(tpl, body.get("version"))
    specs = {s["name"]: s for s in version.inputs}
    exp_root = _experiment_root(ctx, user, body)
    swept: dict[str, list[str]] = {}
    for spec in version.inputs:
        name = spec["name"]
        if is_swept(given.get(name)):
            swept[name] = swept_values(ctx, spec, given[name], f"inputs.{name}", exp_root)
    for name, value in given.items():
        if is_swept(value) and name not in specs:
            raise ValidationError(f"template {tpl.name!r} v{version.version} has no input {name}",
                                  f"inputs.{name}")
    names = list(swept)
    lists = [swept[n] for n in names]
    if mode == "zip":
        if len({len(v) for v in lists}) > 1:
            raise ValidationError("zip takes the swept inputs' values side by side, so each needs as many: "
                                  + ", ".join(f"{n} has {len(v)}" for n, v in swept.items()), "mode")
        combos = list(zip(*lists, strict=True))
    else:
        total = math.prod(len(v) for v in lists)
        if total > limit:
            raise ValidationError(f"{' × '.join(str(len(v)) for v in lists)} = {total} tasks, more than the "
                                  f"{limit} a sweep may have", "inputs")
        combos = list(itertools.product(*lists))
    # Every other input, and the settings, are checked once, as for a single run, with
    # the first task's values standing in for the swept ones.
    first = dict(zip(names, combos[0], strict=True)) if names else {}
    plan = runs.plan_run(ctx, user, tpl, {**body, "inputs": {**given, **first}}, tasks=len(combos),
                         check_budget=check_budget)
    return plan, names, [dict(zip(names, c, strict=True)) for c in combos], mode, throttle


def _task_plan(ctx: Context, plan: runs.RunPlan, swept: dict[str, str]) -> runs.RunPlan:
    """The shared plan with one task's values in place of the swept inputs."""
    inputs = {**plan.inputs, **swept}
    env = runs.job_env(plan.version, inputs, data.experiment_dir(ctx.config, plan.experiment))
    return replace(plan, inputs=inputs, env=env)


def preview(ctx: Context, user: User, tpl: Template, body: dict) -> dict:
    """A sweep's preview: its first task's script (job id shown as ``preview``), how many
    tasks it has, the cost of all of them and when Slurm would start the first."""
    plan, _, tasks, _, _ = plan_sweep(ctx, user, tpl, body, check_budget=False)
    first = _task_plan(ctx, plan, tasks[0])
    script = runs._render(ctx, first, "preview", "gw-preview")
    return runs.preview_dict(ctx, user, first, script, len(tasks))


def array_job_name(sweep_id: int, chunk: int, submitted_at: datetime) -> str:
    """The Slurm name of one array of a sweep: unique (as a single job's name is), so an
    unanswered sbatch can be found again by it."""
    return f"gw-sweep-{sweep_id}-{chunk}-{runs.submit_stamp(submitted_at)}"


def submit_sweep(ctx: Context, user: User, tpl: Template, body: dict) -> Sweep:
    plan, names, tasks, mode, throttle = plan_sweep(ctx, user, tpl, body)
    return _launch(ctx, user, plan, names, tasks, mode, throttle)


def _launch(ctx: Context, user: User, plan: runs.RunPlan, names: list[str], tasks: list[dict[str, str]],
            mode: str, throttle: int, rerun_of: Sweep | None = None) -> Sweep:
    """Write the sweep and its tasks, submit its arrays, and leave the tasks' folders
    to be made just after answering (see ``prepare_tasks``)."""
    mt, tpl = plan.machine_type, plan.template
    unix_user = unix_user_for(ctx.config, user)
    if unix_user:
        runs._passwd(unix_user)  # before anything is written for tasks that cannot run
    now = utcnow()  # one submit time for every task: the array's name is made from it
    with database.atomic():
        sweep = Sweep.create(template=tpl, template_version=plan.version, user=user,
                             project=plan.experiment.project, experiment=plan.experiment,
                             license=plan.license.name, mode=mode, throttle=throttle, swept=names,
                             rerun_of=rerun_of, created_at=now)
        insert_rows(Job, [dict(
            kind="template", name=tpl.name, template=tpl, template_version=plan.version, user=user,
            project=plan.experiment.project, experiment=plan.experiment, license=plan.license.name,
            slurm_account=plan.license.slurm_account, machine_type=mt.name, partition=mt.partition,
            software_disk_gb=plan.software_disk_gb, time_limit_minutes=plan.time_limit_minutes,
            inputs={**plan.inputs, **swept}, reason="submitting", unix_user=unix_user, submitted_at=now,
            sweep=sweep, array_task=i) for i, swept in enumerate(tasks)])
        ids = [i for (i,) in Job.select(Job.id).where(Job.sweep == sweep).order_by(Job.array_task).tuples()]
        if plan.tags:
            insert_rows(Tag, [{"job": j, "name": name, "created_by": user}
                              for j in ids for name in plan.tags])
    sent = 0  # tasks in arrays Slurm took, or may have taken (no answer)
    try:
        size = ctx.config.slurm.max_array_size
        for chunk, first in enumerate(range(0, len(ids), size)):
            part = ids[first:first + size]
            script = render_array_script(ArrayRequest(
                sweep_id=sweep.id, slurm_job_name=array_job_name(sweep.id, chunk, now),
                template_name=tpl.name, template_version=plan.version.version, partition=mt.partition,
                account=plan.license.slurm_account, cpus=mt.cpus, memory_mb=mt.memory_mb, gres=mt.gres,
                software_disk_gb=plan.software_disk_gb, time_limit_minutes=plan.time_limit_minutes,
                array=f"0-{len(part) - 1}%{throttle}",
                job_ids=tuple(part), jobs_root=ctx.config.jobs_root, chdir=ctx.config.jobs_root,
                wait_seconds=TASK_FOLDER_WAIT_S))
            in_chunk = (Job.sweep == sweep) & (Job.array_task >= first) & (Job.array_task < first + len(part))
            try:
                # Each task writes its own log (the script sends it there): Slurm's own
                # output file would only ever hold what the gateway's script printed.
                base = ctx.slurm.submit(SubmitRequest(script=script, user=unix_user or None, options=(
                    "--output=/dev/null", "--error=/dev/null", "--input=/dev/null")))
            except SlurmNoAnswer as e:
                sent = first + len(part)
                Job.update(reason=f"{runs.UNCONFIRMED}: {e.message}",
                           unconfirmed_submit=True).where(in_chunk).execute()
                _fail_rest(sweep, sent, "not submitted: an earlier array of the sweep got no answer")
                e.message = (f"sweep {sweep.id}: {e.message}; the gateway will check whether Slurm "
                             f"accepted it (see the sweep's jobs)")
                raise
            except SlurmError as e:
                _fail_rest(sweep, first, f"not submitted: {e.message}")
                e.message = f"sweep {sweep.id} was not submitted: {e.message}"
                raise
            sent = first + len(part)
            Job.update(slurm_job_id=Value(f"{base}_").concat(Cast(Job.array_task - first, "text")),
                       reason="").where(in_chunk).execute()
            sweep.array_job_ids = [*sweep.array_job_ids, base]
            Sweep.update(array_job_ids=sweep.array_job_ids).where(Sweep.id == sweep.id).execute()
            logger.info("sweep %s: tasks %s-%s submitted as Slurm array %s", sweep.id, first,
                        first + len(part) - 1, base)
    finally:
        if sent:
            todo = [(job_id, tasks[i]) for i, job_id in enumerate(ids[:sent])]
            ctx.run_later(lambda: prepare_tasks(ctx, plan, unix_user, now, todo))
    return sweep


def prepare_tasks(ctx: Context, plan: runs.RunPlan, unix_user: str, submitted_at: datetime,
                  todo: list[tuple[int, dict[str, str]]]) -> None:
    """Make each task's folder and script, in task order. A sweep answers once Slurm
    holds its arrays (a folder costs more than an sbatch call on some disks, and a
    sweep may have thousands); a task that starts before its folder is ready waits
    for its script, which is moved into place last, whole."""
    for job_id, swept in todo:
        paths = runs.prepare_job_folder(ctx, job_id, unix_user, plan.version.files)
        text = runs._render(ctx, _task_plan(ctx, plan, swept), job_id,
                            f"gw-{job_id}-{runs.submit_stamp(submitted_at)}")
        part = paths.base / ".job.sbatch.part"
        part.write_text(text)
        # The array's script runs it as the job's user (a single job's goes to sbatch
        # on stdin instead): readable by them, written by the gateway only, in a folder
        # nobody else may enter (see disk_access).
        os.chmod(part, 0o444)
        os.replace(part, paths.script)


def prepare_unready(ctx: Context, older_than: timedelta = timedelta(seconds=20)) -> int:
    """The folders of unfinished tasks that are still missing a while after their
    sweep was submitted (the gateway stopped while making them): made again, from the
    sweep's own record. How many tasks it made. Only sweeps young enough for their
    tasks to be still waiting are looked at: a task gives up after TASK_FOLDER_WAIT_S."""
    made = 0
    now = utcnow()
    for sweep in Sweep.select().where(Sweep.template.is_null(False), Sweep.created_at < now - older_than,
                                      Sweep.created_at > now - timedelta(seconds=2 * TASK_FOLDER_WAIT_S),
                                      Sweep.id.in_(Job.select(Job.sweep).where(
                                          Job.finalized == False, Job.slurm_job_id.is_null(False)))):  # noqa: E712
        # Folders are made in task order, so a sweep whose last task has its script
        # is whole: one look instead of one per task, every tick.
        last = Job.select(Job.id).where(Job.sweep == sweep).order_by(Job.array_task.desc()).first()
        if last is not None and ctx.job_paths(last.id).script.exists():
            continue
        waiting = [j for j in _tasks(sweep).where(Job.finalized == False, Job.slurm_job_id.is_null(False))  # noqa: E712
                   if not ctx.job_paths(j.id).script.exists()]
        if not waiting:
            continue
        try:
            plan = runs.plan_run(ctx, sweep.user, sweep.template, _body_of(sweep, waiting[0]))
        except GatewayError as e:
            logger.warning("sweep %s: cannot make the folders of %s tasks: %s", sweep.id, len(waiting), e)
            continue
        prepare_tasks(ctx, plan, waiting[0].unix_user, waiting[0].submitted_at,
                      [(j.id, {n: j.inputs[n] for n in sweep.swept}) for j in waiting])
        logger.warning("sweep %s: made the folders of %s tasks left unmade", sweep.id, len(waiting))
        made += len(waiting)
    return made


def _body_of(sweep: Sweep, task: Job) -> dict:
    """The run body that gives ``task``'s plan again (its version, settings and inputs)."""
    return {"project": sweep.project.name, "experiment": sweep.experiment.name,
            "version": sweep.template_version.version, "machine_type": task.machine_type,
            "license": sweep.license, "software_disk_gb": task.software_disk_gb,
            "time_limit_minutes": task.time_limit_minutes, "inputs": task.inputs}


def _fail_rest(sweep: Sweep, first: int, reason: str) -> None:
    Job.update(status=FAILED, reason=reason, finalized=True).where(
        Job.sweep == sweep, Job.array_task >= first, Job.slurm_job_id.is_null()).execute()


def submitted_dict(sweep: Sweep) -> dict:
    """What a submit answers: the sweep as ``sweep_dict`` shows it, each task given by
    its own fields only (id, index, Slurm id, status, inputs), read in one query. A
    thousand full job records would take longer to make than the sweep took."""
    rows = list(Job.select(Job.id, Job.array_task, Job.slurm_job_id, Job.status, Job.reason, Job.inputs)
                .where(Job.sweep == sweep).order_by(Job.array_task).dicts())
    counts = Counter(r["status"] for r in rows)
    return {**_sweep_fields(sweep), "tasks": len(rows),
            "status_counts": {s: counts.get(s, 0) for s in STATUSES}, "finished": False, "jobs": rows}


def _sweep_fields(sweep: Sweep) -> dict:
    """What every answer about a sweep says of the sweep itself. A plain script's own
    array has no template, and perhaps no experiment."""
    tv, exp = sweep.template_version if sweep.template_version_id else None, sweep.experiment
    return {"id": sweep.id, "template": sweep.template_id, "version": tv.version if tv else None,
            "project": exp.project.name if exp else None, "experiment": exp.name if exp else None,
            "license": sweep.license, "mode": sweep.mode, "throttle": sweep.throttle, "swept": sweep.swept,
            "array_job_ids": sweep.array_job_ids, "rerun_of": sweep.rerun_of_id}


def get_sweep(ctx: Context, user: User, sweep_id: Any) -> Sweep:
    """A sweep ``user`` may see: one whose tasks they may see (all of a sweep's tasks
    share its person, experiment and template)."""
    sid = parse_id(sweep_id)
    sweep = Sweep.get_or_none(Sweep.id == sid) if sid is not None else None
    task = first_task(sweep) if sweep else None
    if task is None or not access.can(user, "job.view", task):
        raise NotFound(f"sweep {sweep_id} not found", "sweep")
    return sweep


def _tasks(sweep: Sweep):
    return Job.select().where(Job.sweep == sweep).order_by(Job.array_task)


def first_task(sweep: Sweep) -> Job | None:
    return _tasks(sweep).first()


# What the sweep's page and its live refresh read of each task (and what the access
# rules ask of one): the rest of a task's record is never read for 10,000 of them.
TASK_COLUMNS = (Job.id, Job.name, Job.user, Job.project, Job.experiment, Job.template, Job.sweep,
                Job.array_task, Job.status, Job.finalized, Job.started_at, Job.inputs,
                Job.output_variables, Job.exit_code, Job.cpu_seconds, Job.gpu_seconds)
# What the results table reads of each task.
RESULT_COLUMNS = (Job.id, Job.array_task, Job.status, Job.inputs, Job.output_variables, Job.exit_code,
                  Job.cpu_seconds, Job.gpu_seconds)


class ResultRow(NamedTuple):
    """One task as the results table reads it (the fields of RESULT_COLUMNS)."""

    id: int
    array_task: int
    status: str
    inputs: dict
    output_variables: dict
    exit_code: int | None
    cpu_seconds: int
    gpu_seconds: int


def result_rows(sweep: Sweep) -> list[ResultRow]:
    """The sweep's tasks, in order, as the results table reads them.

    The rows come as the driver gives them, and each JSON column is decoded as one
    array of every task's value: peewee's conversion of each value, then one decode
    per value, cost more than the query for 10,000 tasks.
    """
    sql, params = _tasks(sweep).select(*RESULT_COLUMNS).sql()
    raw = database.execute_sql(sql, params).fetchall()

    def decoded(column: int) -> list[dict]:
        # Each value is an object as JSONField wrote it: joined with commas, one array.
        return json.loads("[" + ",".join(r[column] or "{}" for r in raw) + "]")

    return [ResultRow(r[0], r[1], r[2], inputs, outputs, r[5], r[6], r[7])
            for r, inputs, outputs in zip(raw, decoded(3), decoded(4), strict=True)]


# How many tasks GET /sweeps/<id> lists unless asked for another page (?limit=,
# ?offset=); its counts, "tasks" and "finished" always cover every task.
TASKS_PAGE = 200


def task_rows(sweep: Sweep) -> list[Job]:
    """The sweep's tasks, in order, with the columns of TASK_COLUMNS only (what the
    results and the sweep's page show; any other field reads as its default)."""
    return list(_tasks(sweep).select(*TASK_COLUMNS))


def sweep_jobs(sweep: Sweep, limit: int | None = None, offset: int = 0) -> list[Job]:
    """The sweep's tasks (``limit`` of them from ``offset``, or all) with what job_dict
    shows of related rows (the API's view)."""
    return jobs.page_with_related(_tasks(sweep).limit(limit).offset(offset or None), Job.array_task)


def task_page(ctx: Context, args: dict) -> tuple[int, int]:
    """The ``limit`` and ``offset`` of a page of a sweep's tasks asked for in ``args``.
    No limit is too large: a sweep's size (at most the site's max_sweep_tasks) bounds
    the answer, and ``?limit=<tasks>`` gives every task in one."""
    return (get_int(args, "limit", default=TASKS_PAGE, minimum=1),
            get_int(args, "offset", default=0, minimum=0))


def sweep_counts(sweep: Sweep) -> tuple[dict[str, int], int, bool]:
    """How many tasks are in each status (every status named), how many in all, and
    whether every one has ended: one query, none of the tasks read."""
    counts = dict.fromkeys(STATUSES, 0)
    tasks, finished = 0, True
    for status, final, n in (Job.select(Job.status, Job.finalized, fn.COUNT(Job.id)).where(Job.sweep == sweep)
                             .group_by(Job.status, Job.finalized).tuples()):
        if status in counts:
            counts[status] += n
        tasks += n
        finished = finished and bool(final)
    return counts, tasks, finished


def status_counts(rows: list[Job]) -> dict[str, int]:
    """How many of ``rows`` are in each status, every status named."""
    counts = Counter(j.status for j in rows)
    return {s: counts.get(s, 0) for s in STATUSES}


def output_names(sweep: Sweep, rows: list[Job] | list[ResultRow]) -> list[str]:
    """The OUT_ names of the results: the template version's, then any other a task set."""
    names = [o["name"] for o in sweep.template_version.outputs] if sweep.template_version_id else []
    for j in rows:
        names += [k for k in j.output_variables if k not in names]
    return names


def sweep_dict(sweep: Sweep, rows: list[Job] | None = None, limit: int = TASKS_PAGE, offset: int = 0) -> dict:
    """The sweep, its counts over every task, and ``limit`` of its tasks from ``offset``
    (in task order; the API's ?limit= and ?offset=), or ``rows`` and their counts."""
    if rows is None:
        counts, tasks, finished = sweep_counts(sweep)
        rows = sweep_jobs(sweep, limit, offset)
    else:
        counts, tasks, finished = status_counts(rows), len(rows), all(j.finalized for j in rows)
        limit, offset = len(rows), 0
    return {**_sweep_fields(sweep), "tasks": tasks, "status_counts": counts, "finished": finished,
            # The page of tasks "jobs" holds: ask for offset + limit next while below "tasks".
            "limit": limit, "offset": offset,
            "jobs": [jobs.job_dict(j) for j in rows]}


def cancel_sweep(ctx: Context, user: User, sweep: Sweep) -> Sweep:
    """Cancel every unfinished task: each array with one scancel."""
    task = first_task(sweep)
    access.require(user, "job.cancel", task, "sweep")
    for base in sweep.array_job_ids:
        ctx.slurm.cancel(base, user=task.unix_user or None)
    Job.update(cancelled_by=user.username, cancelled_at=utcnow()).where(
        Job.sweep == sweep, Job.finalized == False, Job.cancelled_by == "").execute()  # noqa: E712
    return sweep


def rerun_failed(ctx: Context, user: User, sweep: Sweep) -> Sweep:
    """A new sweep (one array) of this sweep's failed tasks, with the same inputs,
    version and settings."""
    failed = list(_tasks(sweep).where(Job.finalized == True, Job.status == FAILED))  # noqa: E712
    if not failed:
        raise ValidationError("no task of this sweep has failed", "sweep")
    if sweep.template_id is None:
        # The gateway keeps a plain script, not how it was sent (working directory,
        # options): its author sends it again.
        raise ValidationError("this array is a plain script's: submit it again with --array="
                              + ",".join(str(j.array_task) for j in failed), "sweep")
    plan = runs.plan_run(ctx, user, sweep.template, _body_of(sweep, failed[0]))
    tasks = [{n: j.inputs[n] for n in sweep.swept} for j in failed]
    return _launch(ctx, user, plan, list(sweep.swept), tasks, "zip", sweep.throttle, rerun_of=sweep)


def results_csv(sweep: Sweep) -> str:
    """The sweep's tasks as rows: swept inputs, status and every OUT_ value."""
    # Light rows of the few columns the table shows: building a full job for each of
    # 10,000 tasks took most of the time.
    rows = result_rows(sweep)
    outputs = output_names(sweep, rows)
    return results_table.csv_text(
        ["task", "job", "status", *sweep.swept, *outputs, "exit_code", "cpu_hours", "gpu_hours"],
        ((j.array_task, j.id, j.status, *(j.inputs.get(n) for n in sweep.swept),
          *(j.output_variables.get(n) for n in outputs), j.exit_code,
          round(j.cpu_seconds / 3600, 4), round(j.gpu_seconds / 3600, 4)) for j in rows))
