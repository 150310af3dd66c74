"""After a job ends: what it used against what it asked for, said in plain words, and
what "run again with more" would change.

Read once per job from accounting, for every job that ended since the last read, in one
sacct call (steps included: peak memory is a step's). CPU efficiency is CPU time /
(elapsed x allocated CPUs); memory is the largest step's peak against the memory asked
for; time is elapsed against the time limit. A job that ran under MIN_ELAPSED_S is too
short for its efficiency to say anything and gets no warning.
"""
from __future__ import annotations

import logging
import math
from datetime import timedelta

from .config import MAX_TIME_LIMIT_MINUTES, Config, MachineType
from .context import Context
from .db import utcnow
from .errors import SlurmError, ValidationError
from .models import Job
from .slurm.client import JobUsage
from .slurm.states import COMPLETED, FAILED

logger = logging.getLogger(__name__)

LOW_PERCENT = 25  # below this share of its CPUs or memory, a job asked for too much
MIN_ELAPSED_S = 10
STEPS_GRACE = timedelta(minutes=5)  # step records may reach accounting after the job's own
READ_WINDOW = timedelta(days=2)  # jobs that ended longer ago are left unread
BATCH = 500
TIME_FACTOR = 1.5


def read_ended(ctx: Context) -> int:
    """Read what the jobs that ended since the last read used (one sacct call) and keep
    it on each; returns how many were read. A job whose steps are not in accounting yet
    waits for the next read, up to STEPS_GRACE after its end."""
    now = utcnow()
    rows = list(Job.select().where(Job.finalized == True, Job.efficiency.is_null(),  # noqa: E712
                                   Job.slurm_job_id.is_null(False), Job.started_at.is_null(False),
                                   Job.status.in_([COMPLETED, FAILED]), Job.ended_at > now - READ_WINDOW)
                .order_by(Job.id).limit(BATCH))
    if not rows:
        return 0
    try:
        found = ctx.slurm.job_usage([j.slurm_job_id for j in rows])
    except SlurmError as e:
        logger.warning("job efficiency not read this time: %s", e.message)
        return 0
    read = 0
    for job in rows:
        usage = found.get(job.slurm_job_id)
        if usage is None or (not usage.steps_seen and job.ended_at and now - job.ended_at < STEPS_GRACE):
            continue
        shown = assess(job, usage, ctx.config)
        Job.update(efficiency=shown).where(Job.id == job.id, Job.efficiency.is_null()).execute()
        read += 1
    return read


def _percent(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100.0 * part / whole, 1)


def assess(job: Job, usage: JobUsage, config: Config) -> dict:
    """The job's efficiency as shown: shares used, warnings in plain words, and the
    change a run again with more would make (None when it ran out of nothing)."""
    mt = config.machine_type(job.machine_type)
    cpus = job.alloc_cpus or (mt.cpus if mt else 0)
    requested_mb = usage.req_mem_mb or (mt.memory_mb if mt else None)
    cpu_pct = _percent(usage.total_cpu_seconds, job.elapsed_seconds * cpus) if cpus else None
    mem_pct = _percent(usage.max_rss_mb, requested_mb)
    time_pct = _percent(job.elapsed_seconds, job.time_limit_minutes * 60)
    warnings, rerun = [], None
    oom = job.slurm_state == "OUT_OF_MEMORY" or "out of memory" in (job.reason or "")
    timeout = job.slurm_state == "TIMEOUT"
    if oom:
        bigger = larger_machine_type(config, mt)
        warnings.append("it ran out of memory" + (f" ({_mb(usage.max_rss_mb)} of {_mb(requested_mb)})"
                                                  if usage.max_rss_mb and requested_mb else "")
                        + (f": run it again on {bigger.name} ({bigger.memory_gb:g} GB)" if bigger
                           else ": no larger machine type has more memory"))
        rerun = {"machine_type": bigger.name} if bigger else None
    elif timeout:
        longer = min(MAX_TIME_LIMIT_MINUTES, math.ceil(job.time_limit_minutes * TIME_FACTOR))
        warnings.append(f"it reached its time limit of {job.time_limit_minutes} minutes"
                        + (f": run it again with {longer} minutes" if longer > job.time_limit_minutes
                           else ", the longest a job may run"))
        rerun = {"time_limit_minutes": longer} if longer > job.time_limit_minutes else None
    elif job.elapsed_seconds >= MIN_ELAPSED_S:
        if cpu_pct is not None and cpu_pct < LOW_PERCENT:
            smaller = smaller_machine_type(config, mt, usage, cpus)
            warnings.append(f"it kept {cpu_pct:g} % of its {cpus} CPUs busy: this machine type is larger "
                            f"than the job needs" + (f"; {smaller.name} would do" if smaller else ""))
        if mem_pct is not None and mem_pct < LOW_PERCENT:
            warnings.append(f"it used {mem_pct:g} % of its memory (at most {_mb(usage.max_rss_mb)} of "
                            f"{_mb(requested_mb)})")
    return {"cpu_percent": cpu_pct, "cpu_seconds_used": usage.total_cpu_seconds,
            "memory_percent": mem_pct, "memory_peak_mb": _round(usage.max_rss_mb),
            "memory_requested_mb": _round(requested_mb), "time_percent": time_pct,
            "warnings": warnings, "rerun_with_more": rerun}


def _round(mb: float | None) -> float | None:
    return None if mb is None else round(mb, 1)


def _mb(mb: float | None) -> str:
    if mb is None:
        return "?"
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def larger_machine_type(config: Config, mt: MachineType | None) -> MachineType | None:
    """The machine type with the least memory above ``mt``'s, with as many GPUs."""
    if mt is None:
        return None
    bigger = [m for m in config.machine_types.values()
              if m.memory_gb > mt.memory_gb and m.gpus == mt.gpus and m.gpu_type == mt.gpu_type]
    return min(bigger, key=lambda m: (m.memory_gb, m.cpus), default=None)


def smaller_machine_type(config: Config, mt: MachineType | None, usage: JobUsage,
                         cpus: int) -> MachineType | None:
    """The smallest machine type with fewer CPUs than ``mt`` that still has the CPUs the
    job kept busy and its peak memory (with a fifth more), and the same GPUs."""
    if mt is None or usage.total_cpu_seconds is None:
        return None
    return min((m for m in config.machine_types.values()
                if m.cpus < mt.cpus and m.gpus == mt.gpus and m.gpu_type == mt.gpu_type
                and m.memory_mb >= 1.2 * (usage.max_rss_mb or 0)), key=lambda m: (m.cpus, m.memory_gb),
               default=None)


def run_again_with_more(ctx: Context, user, job: Job) -> Job:
    """Submit ``job`` again with what it ran out of made larger, as ``user`` (who must
    see the job and may run its template; the run is checked like any other)."""
    from . import runs

    body = rerun_body(job)
    return runs.submit(ctx, user, job.template, body)


def rerun_body(job: Job) -> dict:
    """A run's body for "run again with more": the same version, inputs, place, licence
    and settings, with what the job ran out of made larger."""
    more = (job.efficiency or {}).get("rerun_with_more")
    if not more:
        raise ValidationError(f"job {job.id} did not run out of memory or time: run it again as it was",
                              "job")
    if job.template_version_id is None:
        raise ValidationError("only a template's job can be run again from here", "job")
    body = {"version": job.template_version.version, "project": job.project.name,
            "experiment": job.experiment.name, "inputs": dict(job.inputs),
            "machine_type": job.machine_type, "license": job.license,
            "software_disk_gb": job.software_disk_gb, "time_limit_minutes": job.time_limit_minutes}
    return {**body, **more}
