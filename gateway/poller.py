"""The accounting sync: each tick reads Slurm once for all unfinished jobs.

One ``sacct`` call covers every unfinished job; ``squeue`` is asked only about the
jobs accounting does not know yet (just submitted), and about pending jobs (why they
wait, when Slurm expects them to start) when first seen and once a minute after that,
all in one call. Every write sets values read
from Slurm rather than adding to them, and a finished job is finalised in one
guarded update, so a tick that runs twice, or dies half-way, neither loses nor
doubles a charge. If Slurm cannot be read, the tick changes nothing.

Between ticks, a job that tells the gateway it started or ended (job_callbacks) has
its own record read at once by ``refresh_jobs``, through the same code and guarded
writes; finishing a job (its files, its Processed copy) is one reader's at a time.
"""
from __future__ import annotations

import atexit
import fcntl
import logging
import os
import socket
import threading
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from peewee import IntegrityError

from . import budgets, data, efficiency, fences, job_files, job_templates, notifications, reconcile
from .charging import charge_seconds
from .context import Context
from .db import database, utcnow
from .errors import SlurmError, SlurmUnavailable
from .inputs import parse_outputs_file
from .job_paths import EXIT_STATUS, LOG, OUTPUTS_FILE
from .jobs import list_output_files
from .models import Job, PollerLease
from .runs import slurm_job_name
from .slurm.arrays import is_task_id
from .slurm.client import SlurmClient, SlurmJob
from .slurm.states import COMPLETED, FAILED, PENDING, classify, normalise
from .sweeps import array_job_name, prepare_unready

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
    failed: list[int] = field(default_factory=list)


# What the poller reads of the files a job wrote (hostile input, see job_files).
LOG_TAIL_BYTES = 8192
MAX_OUTPUTS_BYTES = 1 << 20


def _read_exit_status(base) -> int | None:
    raw = job_files.read_bytes(base, EXIT_STATUS, 64)
    try:
        return int(raw.strip()) if raw is not None else None
    except ValueError:
        return None


# The columns a tick compares; loading only these keeps a tick over thousands of
# unfinished jobs close to the cost of the sacct call itself.
TRACKED = ("status", "slurm_state", "reason", "exit_code", "elapsed_seconds", "alloc_cpus",
           "alloc_gpus", "cpu_seconds", "gpu_seconds", "started_at", "ended_at", "expected_start_at")
COLUMNS = ("id", "kind", "slurm_job_id", "template", "cancelled_at", "notify") + TRACKED  # "template": its id
# A sweep task cancelled before it started never gets an accounting record of its own
# (Slurm drops it from the queue at once, and from the array's pending line a while
# later). Once neither knows it this long after the cancel, it has ended, uncharged:
# long enough that a task the cancel caught just as it started has shown its own record.
CANCELLED_TASK_GRACE_S = 60


class _FinishingLocks:
    """Which reader is finishing which job: one at a time per job, across the threads
    of this process and other processes.

    The tick (in the lease holder) and a callback's read (in any web worker) may find
    the same job finished at the same moment; only one may collect its files (both
    Processed copies would go through one temporary folder). A reader takes the job's
    lock before collecting and keeps it until its writes are committed (``_apply``
    lets go), so another reader finds either the lock taken, and leaves the job to its
    holder, or the job finalised. Nobody waits, so two readers taking jobs in different
    orders cannot deadlock; a holder that dies loses its locks with its process, and
    the next tick finishes the job. Across processes it is a POSIX record lock on one
    byte per job of a file in jobs_root (NFS too); those belong to a process, so the
    threads of one process keep a set of their own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: set[tuple[Path, int]] = set()
        self._files: dict[Path, int] = {}
        self._mine = threading.local()

    def _fd(self, jobs_root: Path) -> int | None:
        # Opened once and never closed: closing any descriptor of the file would drop
        # every lock this process holds on it.
        if jobs_root not in self._files:
            try:
                fd = os.open(jobs_root / ".finishing.lock",
                             os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                if os.geteuid() == 0:  # tests drive the poller as root: the file stays the gateway's
                    owner = os.stat(jobs_root)
                    os.fchown(fd, owner.st_uid, owner.st_gid)
                self._files[jobs_root] = fd
            except OSError as e:
                logger.warning("no lock file in %s (%s): finishing is kept apart in this process only",
                               jobs_root, e.strerror)
                return None
        return self._files[jobs_root]

    def _held(self) -> list[tuple[Path, int]]:
        if not hasattr(self._mine, "held"):
            self._mine.held = []
        return self._mine.held

    def try_take(self, jobs_root: Path, job_id: int) -> bool:
        """Take job ``job_id``'s lock for this thread, or False if another reader has it."""
        key = (jobs_root, job_id)
        with self._lock:
            if key in self._busy:
                return False
            fd = self._fd(jobs_root)
            if fd is not None:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, job_id)
                except OSError:  # EAGAIN/EACCES: another process holds it
                    return False
            self._busy.add(key)
        self._held().append(key)
        return True

    def release_mine(self) -> None:
        """Let go of every job lock this thread took."""
        held = self._held()
        with self._lock:
            for jobs_root, job_id in held:
                fd = self._files.get(jobs_root)
                if fd is not None:
                    fcntl.lockf(fd, fcntl.LOCK_UN, 1, job_id)
                self._busy.discard((jobs_root, job_id))
        held.clear()


_finishing = _FinishingLocks()


def _finish(ctx: Context, job: dict, outcome_status: str) -> dict | None:
    """Collect what a finished job left behind: OUT_ values, output files, Processed copy.

    What it cannot take (links, FIFOs, devices, too many or too large) is skipped and
    noted on the job; it never stops the job from being finalised and charged. None
    when another reader (a tick, a callback's read) is finishing the job or has
    finalised it. The job's lock stays taken until ``_apply`` has written.
    """
    if not _finishing.try_take(Path(ctx.config.jobs_root), int(job["id"])):
        return None
    row = Job.get_by_id(job["id"])
    if row.finalized:
        return None
    return _collect(ctx, row, outcome_status)


def _collect(ctx: Context, row: Job, outcome_status: str) -> dict:
    paths = ctx.job_paths(row.id)
    base = paths.base
    notes: list[str] = []
    raw = job_files.read_bytes(base, OUTPUTS_FILE, MAX_OUTPUTS_BYTES + 1)
    if raw is not None and len(raw) > MAX_OUTPUTS_BYTES:
        notes.append(f"OUT_ values: more than {MAX_OUTPUTS_BYTES // 1024} KiB, only the first were read")
        raw = raw[:MAX_OUTPUTS_BYTES].rpartition(b"\0")[0]
    outputs = parse_outputs_file(raw, notes) if raw else {}  # none: the script set no OUT_ value
    listing = list_output_files(ctx, row)
    notes += listing.skipped
    if listing.truncated:
        notes.append(f"output folder: more than {ctx.config.max_output_entries} entries, "
                     f"the rest was not listed or copied")
    if outcome_status == COMPLETED and row.experiment_id and listing.files:
        _, skipped = data.copy_to_processed(ctx, row.experiment, f"{row.name}-{row.id}", paths, listing)
        notes += skipped
    if notes:
        logger.warning("job %s: %d output note(s), e.g. %s", row.id, len(notes), notes[0])
    return {"output_variables": outputs, "output_files": listing.files, "notes": notes[:100]}


def started_at(rec: SlurmJob):
    """When the job really started. For a pending job squeue's start column is Slurm's
    expectation, not a start (accounting's Start is "Unknown" until it runs)."""
    if rec.source == "squeue" and normalise(rec.state) == "PENDING":
        return None
    return rec.start_time


def _changes(ctx: Context, job: dict, rec: SlurmJob) -> dict:
    ended = rec.end_time is not None
    script_exit, log_tail = None, ""
    if ended and job["kind"] == "template":
        base = ctx.job_paths(job["id"]).base
        script_exit = _read_exit_status(base)
        log_tail = job_files.read_tail(base, LOG, LOG_TAIL_BYTES).decode("utf-8", "replace")
    outcome = classify(rec.state, rec.exit_code, rec.signal, script_exit, ended, rec.reason, log_tail)
    fields: dict = {"status": outcome.status, "slurm_state": rec.state.split(" ")[0],
                    "reason": outcome.reason, "exit_code": outcome.exit_code}
    if rec.source == "sacct":
        cpu_s, gpu_s = charge_seconds(rec.elapsed_seconds, rec.alloc_cpus, rec.alloc_gpus)
        fields.update(elapsed_seconds=rec.elapsed_seconds, alloc_cpus=rec.alloc_cpus,
                      alloc_gpus=rec.alloc_gpus, cpu_seconds=cpu_s, gpu_seconds=gpu_s,
                      started_at=rec.start_time, ended_at=rec.end_time)
    elif (start := started_at(rec)) is not None:
        fields["started_at"] = start
    if outcome.final and rec.source != "sacct":
        # Charges come from accounting only: wait until it has the finished record.
        return {}
    if outcome.status == PENDING and _lacks_pending_reason(rec):
        del fields["reason"]  # no news: keep the reason the job has
    if outcome.status == PENDING and rec.queue_checked:
        fields["expected_start_at"] = rec.expected_start  # None: Slurm no longer estimates one
    changes = {k: v for k, v in fields.items() if job[k] != v}
    if outcome.final:
        collected = _finish(ctx, job, outcome.status)
        if collected is None:
            return {}
        changes.update(collected)
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
    """Jobs without a Slurm id: adopt the Slurm job if one was made, else fail them.

    Two ways to get here: sbatch timed out (the job is marked unconfirmed), or the
    gateway died between writing the job's row and recording the id sbatch returned
    (the row still says "submitting"). Either way Slurm may hold the job; it is looked
    up by the unique Slurm job name the gateway gave it. Only runs when such jobs
    exist, so normal ticks stay at one Slurm call.
    """
    now = utcnow()
    # Longer than any sbatch call may take: a younger row may still be mid-submit.
    grace = timedelta(seconds=max(UNCONFIRMED_GRACE_S, ctx.config.slurm.command_timeout_seconds + 15))
    give_up = timedelta(seconds=UNCONFIRMED_GIVE_UP_S)
    rows = list(Job.select().where(
        # Not adopted yet, whatever their age (the gateway may have been down for days).
        ((Job.slurm_job_id.is_null()) & (Job.finalized == False) & (Job.submitted_at < now - grace))  # noqa: E712
        # Adopted unconfirmed ones while young: a duplicate that sbatch's retry made
        # can reach accounting after the first job did.
        | ((Job.unconfirmed_submit == True) & (Job.slurm_job_id.is_null(False))  # noqa: E712
           & (Job.submitted_at > now - give_up - grace)),
    ))
    if not rows:
        return
    tasks = [j for j in rows if j.sweep_id is not None]
    rows = [j for j in rows if j.sweep_id is None]
    arrays = _sweep_arrays(ctx, tasks)
    names = {slurm_job_name(j): j for j in rows}
    since = min(j.submitted_at for j in [*rows, *tasks]) - timedelta(minutes=1)
    found = ctx.slurm.find_by_names(sorted([*names, *arrays]), since)
    _adopt_arrays(ctx, arrays, found, now, give_up, result)
    tracked = {j for (j,) in Job.select(Job.slurm_job_id).where(
        Job.slurm_job_id.in_([i for ids in found.values() for i in ids])).tuples()}
    for name, job in names.items():
        ids = found.get(name, [])
        if job.slurm_job_id is None and ids:
            Job.update(slurm_job_id=ids[0], reason="").where(
                Job.id == job.id, Job.slurm_job_id.is_null()).execute()
            logger.warning("job %s: adopted Slurm job %s found by its name after %s", job.id, ids[0],
                           "an unanswered sbatch" if job.unconfirmed_submit else "a gateway restart")
            job.slurm_job_id = ids[0]
            tracked.add(ids[0])
            result.adopted.append(job.id)
        if job.unconfirmed_submit:
            for dup in ids:
                if dup not in tracked:
                    _track_duplicate(ctx, job, dup, job.slurm_job_id)
        if job.slurm_job_id is None and job.submitted_at < now - give_up:
            Job.update(status=FAILED, finalized=True,
                       reason="not submitted: Slurm never recorded the job").where(
                Job.id == job.id, Job.slurm_job_id.is_null()).execute()


def _sweep_arrays(ctx: Context, tasks: list[Job]) -> dict[str, tuple[int, list[Job]]]:
    """Sweep tasks without a Slurm id, by the name of the array they were submitted in:
    name -> (index of the array's first task in the sweep, its tasks)."""
    size = ctx.config.slurm.max_array_size
    arrays: dict[str, tuple[int, list[Job]]] = {}
    for job in tasks:
        chunk = job.array_task // size
        name = array_job_name(job.sweep_id, chunk, job.submitted_at)
        arrays.setdefault(name, (chunk * size, []))[1].append(job)
    return arrays


def _adopt_arrays(ctx: Context, arrays: dict[str, tuple[int, list[Job]]], found: dict[str, list[str]],
                  now, give_up: timedelta, result: TickResult) -> None:
    """An array Slurm holds is adopted: each task takes its id in it. One it never
    recorded fails its tasks after the give-up time, as a single job would."""
    for name, (first, tasks) in arrays.items():
        ids = found.get(name, [])
        if ids:
            base = ids[0]
            adopted = [job.id for job in tasks if job.slurm_job_id is None and Job.update(
                slurm_job_id=f"{base}_{job.array_task - first}", reason="").where(
                Job.id == job.id, Job.slurm_job_id.is_null()).execute()]
            if adopted:
                result.adopted += adopted
                logger.warning("sweep %s: adopted Slurm array %s found by its name", tasks[0].sweep_id, base)
            for dup in ids[1:]:
                # sbatch retried a request the controller had taken: the second array
                # runs nothing the gateway follows, so it goes before it starts.
                logger.warning("sweep %s: cancelling duplicate Slurm array %s", tasks[0].sweep_id, dup)
                try:
                    ctx.slurm.cancel(dup, user=tasks[0].unix_user or None)
                except SlurmError as e:
                    logger.warning("could not cancel duplicate Slurm array %s: %s", dup, e.message)
        elif min(j.submitted_at for j in tasks) < now - give_up:
            Job.update(status=FAILED, finalized=True,
                       reason="not submitted: Slurm never recorded the sweep's array").where(
                Job.id.in_([j.id for j in tasks]), Job.slurm_job_id.is_null()).execute()


def _cancelled_before_start(job: dict) -> bool:
    return (is_task_id(job["slurm_job_id"]) and job["cancelled_at"] is not None
            and job["started_at"] is None
            and job["cancelled_at"] < utcnow() - timedelta(seconds=CANCELLED_TASK_GRACE_S))


def _lacks_pending_reason(rec: SlurmJob) -> bool:
    return normalise(rec.state) == "PENDING" and rec.reason in ("", "None")


def read_records(slurm: SlurmClient, ids: list[str], known: Collection[str] = ()) -> dict[str, SlurmJob]:
    """Accounting records for ``ids``, completed from the controller in one ``squeue``.

    squeue is asked (once, for all of them) about the jobs accounting does not know
    yet and about pending jobs, except those in ``known``, whose reason and start
    estimate the gateway got recently. Only the controller knows when a pending job is
    expected to start, and sometimes why it waits (Slurm 24.11's sacct shows ``None``
    for a held job that squeue calls ``JobHeldUser``). Charges still come from the
    accounting record; only the reason and the estimate are taken from squeue.
    """
    records = slurm.accounting(ids)
    missing = [i for i in ids if i not in records]
    pending = [i for i in ids if i in records and i not in known
               and normalise(records[i].state) == "PENDING"]
    if not missing and not pending:
        return records
    queued = slurm.queue(missing + pending)
    for i in missing:
        if i in queued:
            records[i] = queued[i]
    for i in pending:
        q = queued.get(i)
        if q is None:
            if is_task_id(i):
                # An array task the queue no longer holds is no longer pending: it has
                # started (its own record comes) or was cancelled before it did (none
                # will). The array's pending line saying otherwise is stale.
                del records[i]
            continue  # gone from the queue in between: accounting's record stands
        reason = q.reason if q.reason not in ("", "None") else records[i].reason
        records[i] = replace(records[i], reason=reason, expected_start=q.expected_start,
                             queue_checked=True)
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
    try:
        prepare_unready(ctx)
    except Exception:
        # Tasks left waiting are retried next tick; accounting goes on regardless.
        logger.exception("could not make the folders of sweep tasks left unmade")
    jobs = list(Job.select(*(getattr(Job, c) for c in COLUMNS))
                .where(Job.finalized == False, Job.slurm_job_id.is_null(False)).dicts())
    result.unfinished = len(jobs)
    if not jobs:
        return result
    memory = ctx.queue_memory
    records = read_records(ctx.slurm, [j["slurm_job_id"] for j in jobs], memory.known())
    memory.asked.update(i for i, rec in records.items() if rec.queue_checked)
    _apply(ctx, jobs, records, result)
    result.slurm_calls = getattr(ctx.slurm, "calls", 0) - calls_before
    return result


def _apply(ctx: Context, jobs: list[dict], records: dict[str, SlurmJob], result: TickResult) -> None:
    """Work out every change Slurm's ``records`` make to ``jobs``, then write them in
    one transaction, each guarded so that a job finalised meanwhile is left alone;
    the locks of the jobs finished here are let go once that is committed."""
    try:
        _work_out_and_write(ctx, jobs, records, result)
    finally:
        _finishing.release_mine()


def _work_out_and_write(ctx: Context, jobs: list[dict], records: dict[str, SlurmJob],
                        result: TickResult) -> None:
    pending_writes = []
    for job in jobs:
        rec = records.get(job["slurm_job_id"])
        if rec is None:
            if _cancelled_before_start(job):
                pending_writes.append((job, {
                    "status": FAILED, "slurm_state": "CANCELLED", "finalized": True,
                    "reason": "cancelled before it started", "ended_at": job["cancelled_at"],
                    "expected_start_at": None}))
            else:
                result.not_found.append(job["id"])
            continue
        try:
            changes = _changes(ctx, job, rec)
        except Exception:
            # One job's files never stop accounting for the others; it is retried next tick.
            logger.exception("job %s: could not be updated from Slurm job %s", job["id"], rec.job_id)
            result.failed.append(job["id"])
            continue
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
                # Decided with the end it tells of: a crash loses neither (the notifier sends).
                # Most jobs ask for nothing: no query for them (a sweep's thousand tasks).
                if notifications.wanted(job["notify"], changes.get("status", job["status"])):
                    notifications.job_ended(ctx.config, job["id"])
                if changes.get("status", job["status"]) == COMPLETED and job["template"]:
                    job_templates.mark_validated(job["template"])


def refresh_jobs(ctx: Context, job_ids: Collection[int]) -> TickResult:
    """Read accounting now for ``job_ids`` only: jobs that called back (job_callbacks).

    A tick's work for fewer jobs, by the same code: one sacct (squeue only for a job
    accounting does not know yet; pending jobs' reasons are the tick's business), and
    the same guarded writes and finishing lock, so it may run while a tick runs in
    another process and neither loses nor doubles a charge nor half-copies a job's
    outputs. Jobs finalised, unknown or not yet submitted are left alone. It needs no
    poller lease and leaves the tick's memory of squeue alone.
    """
    result = TickResult()
    calls_before = getattr(ctx.slurm, "calls", 0)
    jobs = list(Job.select(*(getattr(Job, c) for c in COLUMNS))
                .where(Job.id.in_(list(job_ids)), Job.finalized == False,  # noqa: E712
                       Job.slurm_job_id.is_null(False)).dicts())
    result.unfinished = len(jobs)
    if not jobs:
        return result
    ids = [j["slurm_job_id"] for j in jobs]
    _apply(ctx, jobs, read_records(ctx.slurm, ids, known=ids), result)
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


def _as_lease_holder(ctx: Context, holder: str | None, work, what: str):
    """``work(ctx)`` if this process holds the poller lease (several gateways may share
    a database); errors are logged, never raised into the scheduler."""
    holder = holder or default_holder()
    if not acquire_lease(holder, ttl_seconds=max(10.0, ctx.config.slurm.poll_interval_seconds * 3)):
        return None
    try:
        return work(ctx)
    except SlurmUnavailable as e:
        logger.warning("%s skipped, nothing changed: %s", what, e.message)
        return None
    except Exception:
        logger.exception("%s failed", what)
        return None
    finally:
        if not database.is_closed():
            database.close()


def guarded_tick(ctx: Context, holder: str | None = None) -> TickResult | None:
    """What the scheduler runs: a tick if this process holds the lease, errors logged."""
    return _as_lease_holder(ctx, holder, tick, "poll")


# Grants, logins and `gateway check --fix` already move the fences; this catches the
# rest (a config edited, a team changed in the directory, an admin's manual change).
FENCES_INTERVAL_SECONDS = 300
NOTIFY_INTERVAL_SECONDS = 5


def guarded_fences(ctx: Context, holder: str | None = None) -> list[str] | None:
    """Folder ACLs and Slurm associations brought in line, by the lease holder only."""
    return _as_lease_holder(ctx, holder, fences.follow, "keeping folder access and associations in line")


def guarded_notifications(ctx: Context, holder: str | None = None) -> int | None:
    """Send the notifications that are due, by the lease holder (never in a tick)."""
    return _as_lease_holder(ctx, holder, notifications.send_due, "sending notifications")


def guarded_efficiency(ctx: Context, holder: str | None = None) -> int | None:
    """What ended jobs used, read in one sacct call, by the lease holder."""
    return _as_lease_holder(ctx, holder, efficiency.read_ended, "reading what ended jobs used")


def guarded_reconcile(ctx: Context, holder: str | None = None):
    """The nightly reconciliation of charges with accounting, by the lease holder."""
    return _as_lease_holder(ctx, holder, reconcile.nightly, "reconciling charges with accounting")


def guarded_budget_periods(ctx: Context, holder: str | None = None) -> list[str] | None:
    """Licence budgets whose period began get their Slurm usage reset, by the lease holder."""
    return _as_lease_holder(ctx, holder, budgets.keep, "starting budget periods, telling sponsors")


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
    scheduler.add_job(guarded_fences, "interval", args=[ctx, holder], seconds=FENCES_INTERVAL_SECONDS,
                      max_instances=1, coalesce=True, next_run_time=utcnow())
    scheduler.add_job(guarded_notifications, "interval", args=[ctx, holder],
                      seconds=NOTIFY_INTERVAL_SECONDS, max_instances=1, coalesce=True)
    scheduler.add_job(guarded_efficiency, "interval", args=[ctx, holder],
                      seconds=ctx.config.slurm.poll_interval_seconds, max_instances=1, coalesce=True)
    scheduler.add_job(guarded_reconcile, "cron", args=[ctx, holder], hour=3, minute=17,
                      max_instances=1, coalesce=True)
    scheduler.add_job(guarded_budget_periods, "interval", args=[ctx, holder],
                      seconds=FENCES_INTERVAL_SECONDS, max_instances=1, coalesce=True,
                      next_run_time=utcnow())
    scheduler.start()
    return scheduler
