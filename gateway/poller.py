"""The accounting sync: each tick reads Slurm once for all unfinished jobs.

One ``sacct`` call covers every unfinished job; ``squeue`` is asked only about the
jobs accounting does not know yet (just submitted). Every write sets values read
from Slurm rather than adding to them, and a finished job is finalised in one
guarded update, so a tick that runs twice, or dies half-way, neither loses nor
doubles a charge. If Slurm cannot be read, the tick changes nothing.
"""
from __future__ import annotations

import atexit
import logging
import os
import socket
from dataclasses import dataclass, field, replace
from datetime import timedelta

from peewee import IntegrityError

from . import data, job_templates
from .charging import charge_seconds
from .context import Context
from .db import database, utcnow
from .errors import SlurmError, SlurmUnavailable
from .inputs import parse_outputs_file
from .jobs import job_dir, list_output_files
from .models import Job, PollerLease
from .runs import slurm_job_name
from .slurm.client import SlurmClient, SlurmJob
from .slurm.states import COMPLETED, FAILED, classify

logger = logging.getLogger(__name__)
LEASE_NAME = "poller"
# An sbatch that timed out may still be queued: look for it after its own time-out has
# passed, and give up once accounting has had ample time to record it.
UNCONFIRMED_GRACE_S = 45
UNCONFIRMED_GIVE_UP_S = 600


@dataclass
class TickResult:
    unfinished: int = 0
    updated: int = 0
    finalized: int = 0
    slurm_calls: int = 0
    not_found: list[int] = field(default_factory=list)
    adopted: list[int] = field(default_factory=list)


def _tail(path, size: int = 8192) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _read_exit_status(path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


# The columns a tick compares; loading only these keeps a tick over thousands of
# unfinished jobs close to the cost of the sacct call itself.
TRACKED = ("status", "slurm_state", "reason", "exit_code", "elapsed_seconds", "alloc_cpus",
           "alloc_gpus", "cpu_seconds", "gpu_seconds", "started_at", "ended_at")
COLUMNS = ("id", "kind", "slurm_job_id", "template") + TRACKED  # "template" reads as its id


def _finish(ctx: Context, job: dict, outcome_status: str) -> dict:
    """Collect what a finished job left behind: OUT_ values, output files, Processed copy."""
    row = Job.get_by_id(job["id"])
    base = job_dir(ctx, row)
    try:
        outputs = parse_outputs_file((base / "run" / "outputs.env").read_bytes())
    except OSError:
        outputs = {}  # the script set no OUT_ value, or was killed before it could
    files = list_output_files(ctx, row)
    if outcome_status == COMPLETED and row.experiment_id and files:
        data.copy_to_processed(ctx.config, row.experiment, f"{row.name}-{row.id}", base / "output",
                               owner=row.unix_user)
    return {"output_variables": outputs, "output_files": files}


def _changes(ctx: Context, job: dict, rec: SlurmJob) -> dict:
    ended = rec.end_time is not None
    script_exit, log_tail = None, ""
    if ended and job["kind"] == "template":
        run_dir = ctx.config.jobs_root / str(job["id"]) / "run"
        script_exit = _read_exit_status(run_dir / "exit_status")
        log_tail = _tail(run_dir / "job.log")
    outcome = classify(rec.state, rec.exit_code, rec.signal, script_exit, ended, rec.reason, log_tail)
    fields: dict = {"status": outcome.status, "slurm_state": rec.state.split(" ")[0],
                    "reason": outcome.reason, "exit_code": outcome.exit_code}
    if rec.source == "sacct":
        cpu_s, gpu_s = charge_seconds(rec.elapsed_seconds, rec.alloc_cpus, rec.alloc_gpus)
        fields.update(elapsed_seconds=rec.elapsed_seconds, alloc_cpus=rec.alloc_cpus,
                      alloc_gpus=rec.alloc_gpus, cpu_seconds=cpu_s, gpu_seconds=gpu_s,
                      started_at=rec.start_time, ended_at=rec.end_time)
    elif rec.start_time:
        fields["started_at"] = rec.start_time
    if outcome.final and rec.source != "sacct":
        # Charges come from accounting only: wait until it has the finished record.
        return {}
    changes = {k: v for k, v in fields.items() if job[k] != v}
    if outcome.final:
        changes.update(_finish(ctx, job, outcome.status))
        changes["finalized"] = True
    return changes


def _track_duplicate(ctx: Context, job: Job, dup: str, kept: str) -> None:
    """sbatch may retry a request the controller took late, making a second Slurm job
    from one submit. It is cancelled, and recorded as a job of its own so that whatever
    it consumed before the cancel is still followed and charged, never lost."""
    logger.warning("job %s: duplicate Slurm job %s (kept %s): cancelling and tracking it", job.id, dup, kept)
    if not Job.select().where(Job.slurm_job_id == dup).exists():
        data_ = {k: v for k, v in job.__data__.items() if k not in ("id", "unconfirmed_submit")}
        # The name keeps the explanation: the reason is rewritten once Slurm reports the cancel.
        data_.update(slurm_job_id=dup, submitted_at=job.submitted_at,
                     name=f"{job.name} (duplicate of job {job.id})"[:128],
                     reason=f"duplicate of job {job.id}, made by sbatch retrying; cancelled")
        Job.create(**data_)
    try:
        ctx.slurm.cancel(dup, user=job.unix_user or None)
    except SlurmError as e:
        logger.warning("could not cancel duplicate Slurm job %s: %s", dup, e.message)


def reconcile_unconfirmed(ctx: Context, result: TickResult) -> None:
    """Jobs whose sbatch timed out: adopt the Slurm job if one was made, else fail them.

    Looked up by the unique Slurm job name the gateway gave them; only runs when such
    jobs exist, so normal ticks stay at one Slurm call.
    """
    now = utcnow()
    # Unadopted ones past the grace, and adopted ones still young: a duplicate that
    # sbatch's retry made can reach accounting after the first job did.
    rows = list(Job.select().where(
        Job.unconfirmed_submit == True,  # noqa: E712
        Job.submitted_at > now - timedelta(seconds=UNCONFIRMED_GIVE_UP_S + UNCONFIRMED_GRACE_S),
        (Job.slurm_job_id.is_null(False)) | (
            (Job.finalized == False) & (Job.submitted_at < now - timedelta(seconds=UNCONFIRMED_GRACE_S))),
    ))
    if not rows:
        return
    names = {slurm_job_name(j): j for j in rows}
    since = min(j.submitted_at for j in rows) - timedelta(minutes=1)
    found = ctx.slurm.find_by_names(sorted(names), since)
    tracked = {j for (j,) in Job.select(Job.slurm_job_id).where(
        Job.slurm_job_id.in_([i for ids in found.values() for i in ids])).tuples()}
    for name, job in names.items():
        ids = found.get(name, [])
        if job.slurm_job_id is None and ids:
            Job.update(slurm_job_id=ids[0], reason="").where(
                Job.id == job.id, Job.slurm_job_id.is_null()).execute()
            job.slurm_job_id = ids[0]
            tracked.add(ids[0])
            result.adopted.append(job.id)
        for dup in ids:
            if dup not in tracked:
                _track_duplicate(ctx, job, dup, job.slurm_job_id)
        if job.slurm_job_id is None and job.submitted_at < now - timedelta(seconds=UNCONFIRMED_GIVE_UP_S):
            Job.update(status=FAILED, finalized=True,
                       reason="not submitted: Slurm never recorded the job").where(
                Job.id == job.id, Job.slurm_job_id.is_null()).execute()


def _lacks_pending_reason(rec: SlurmJob) -> bool:
    return rec.state.split(" ")[0] == "PENDING" and rec.reason in ("", "None")


def read_records(slurm: SlurmClient, ids: list[str]) -> dict[str, SlurmJob]:
    """Accounting records for ``ids``, completed from the controller in one ``squeue``.

    squeue is asked (once, for all of them) about the jobs accounting does not know
    yet and about pending jobs whose accounting record has no reason: Slurm 24.11's
    sacct shows ``None`` for a held job that squeue calls ``JobHeldUser``. Charges
    still come from the accounting record; only its reason is taken from squeue.
    """
    records = slurm.accounting(ids)
    missing = [i for i in ids if i not in records]
    no_reason = [i for i in ids if i in records and _lacks_pending_reason(records[i])]
    if not missing and not no_reason:
        return records
    queued = slurm.queue(missing + no_reason)
    for i in missing:
        if i in queued:
            records[i] = queued[i]
    for i in no_reason:
        q = queued.get(i)
        if q is not None and q.reason not in ("", "None"):
            records[i] = replace(records[i], reason=q.reason)
    return records


def tick(ctx: Context) -> TickResult:
    """One sync of every unfinished job with Slurm. Raises SlurmUnavailable untouched.

    Slurm is read and every change (with a finished job's files) is worked out first;
    the writes then go in one transaction, so a tick killed half-way writes nothing
    and the next one redoes the same, idempotent work.
    """
    result = TickResult()
    calls_before = getattr(ctx.slurm, "calls", 0)
    reconcile_unconfirmed(ctx, result)
    jobs = list(Job.select(*(getattr(Job, c) for c in COLUMNS))
                .where(Job.finalized == False, Job.slurm_job_id.is_null(False)).dicts())
    result.unfinished = len(jobs)
    if not jobs:
        return result
    records = read_records(ctx.slurm, [j["slurm_job_id"] for j in jobs])
    pending_writes = []
    for job in jobs:
        rec = records.get(job["slurm_job_id"])
        if rec is None:
            result.not_found.append(job["id"])
            continue
        changes = _changes(ctx, job, rec)
        if changes:
            pending_writes.append((job, changes))
    with database.atomic():
        for job, changes in pending_writes:
            # The finalized guard makes a second poller's late write a no-op.
            n = Job.update(**changes).where(Job.id == job["id"], Job.finalized == False).execute()
            if not n:
                continue
            result.updated += 1
            if changes.get("finalized"):
                result.finalized += 1
                if changes.get("status", job["status"]) == COMPLETED and job["template"]:
                    job_templates.mark_validated(job["template"])
    result.slurm_calls = getattr(ctx.slurm, "calls", 0) - calls_before
    return result


def acquire_lease(holder: str, ttl_seconds: float, name: str = LEASE_NAME) -> bool:
    """Take or renew the poller lease; only its holder runs ticks (several gateways on one DB)."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl_seconds)
    with database.atomic():
        n = PollerLease.update(holder=holder, expires_at=expires).where(
            PollerLease.name == name,
            (PollerLease.expires_at < now) | (PollerLease.holder == holder)).execute()
        if n:
            return True
    try:
        with database.atomic():
            PollerLease.create(name=name, holder=holder, expires_at=expires)
        return True
    except IntegrityError:
        return False


def release_lease(holder: str, name: str = LEASE_NAME) -> None:
    """Give the lease up at shutdown so another process polls without waiting it out."""
    PollerLease.delete().where(PollerLease.name == name, PollerLease.holder == holder).execute()


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def guarded_tick(ctx: Context, holder: str | None = None) -> TickResult | None:
    """What the scheduler runs: a tick if this process holds the lease, errors logged."""
    holder = holder or default_holder()
    interval = ctx.config.slurm.poll_interval_seconds
    if not acquire_lease(holder, ttl_seconds=max(10.0, interval * 3)):
        return None
    try:
        return tick(ctx)
    except SlurmUnavailable as e:
        logger.warning("poll skipped, nothing changed: %s", e.message)
        return None
    except Exception:
        logger.exception("poll failed")
        return None
    finally:
        if not database.is_closed():
            database.close()


def start_scheduler(ctx: Context, blocking: bool = False):
    """Run ``guarded_tick`` every ``poll_interval_seconds`` with APScheduler."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = (BlockingScheduler if blocking else BackgroundScheduler)(timezone="UTC")
    holder = default_holder()

    def _release():
        try:
            release_lease(holder)
        except Exception:  # shutting down: the lease simply expires
            logger.debug("could not release the poller lease", exc_info=True)

    atexit.register(_release)
    scheduler.add_job(guarded_tick, "interval", args=[ctx, holder],
                      seconds=ctx.config.slurm.poll_interval_seconds,
                      max_instances=1, coalesce=True, next_run_time=utcnow())
    scheduler.start()
    return scheduler
