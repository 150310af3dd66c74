"""A Slurm in memory for the fast tier: implements ``SlurmClient``, answers in Slurm's
own words, and fails the ways the real one does when a test asks it to.

What it reports goes through the real parsers (``parse_sacct``, ``parse_squeue``,
``parse_job_id``): the fake renders each job as one line of the output ``CliSlurm``
asks sacct/squeue for, so the fast tier exercises the same parsing as the cluster
tier, with the recorded output in ``tests/recorded`` pinning the format.

A job does nothing by itself: tests move it (``start``, ``finish``, ``cancel``),
which makes the poller's paths deterministic. Scripted failures:

- ``down()`` / ``up()``: every call raises ``SlurmUnavailable`` (controller or
  accounting unreachable), as ``CliSlurm`` does for "Unable to contact slurm controller".
- ``fail_next_submit(kind)``: ``"refused"`` (sbatch said no), ``"unavailable"``,
  ``"no_answer"`` (sbatch timed out and Slurm never got it), ``"no_answer_taken"``
  (timed out after the controller queued it), ``"duplicate"`` (timed out, and sbatch's
  own retry queued it a second time).
- ``late_accounting(job_id)``: accounting does not know the job yet (squeue does).

Job arrays (``--array=0-9%3`` in ``#SBATCH`` lines or the options) give the array's
own id back, as ``sbatch --parsable`` does, and hold one job per task under its
task id ``"<id>_<index>"``, moved with the same ``start``/``finish``/``cancel``
(``cancel("<id>")`` cancels every unfinished task); ``tasks(id)`` lists them. They
are printed as Slurm prints them (see ``tests/recorded/slurm-*/array-*.txt``):
tasks that have not started share one ``<id>_[2-5%3]`` accounting line whose
JobIDRaw is the array's id, a started task has a line of its own with a JobIDRaw of
its own (the last one to start takes the array's id), squeue gives every task its
own line, and a task cancelled before it started leaves no record at all.
"""
from __future__ import annotations

import itertools
import shlex
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from gateway.errors import SlurmError, SlurmNoAnswer, SlurmUnavailable
from gateway.slurm.arrays import base_ids, parse_array_spec, task_id
from gateway.slurm.cli import (
    SACCT_FIELDS,
    SEP,
    SQUEUE_FORMAT,
    parse_job_id,
    parse_sacct,
    parse_size_mb,
    parse_squeue,
)
from gateway.slurm.client import AccountUsage, JobUsage, SlurmJob, SubmitRequest

FINISHED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL")


def _local(dt: datetime | None) -> str:
    """Slurm prints local wall-clock time without a zone."""
    if dt is None:
        return "Unknown"
    return dt.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%dT%H:%M:%S")


def format_indexes(indexes: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3,5"``, as Slurm prints a task list."""
    runs: list[list[int]] = []
    for i in sorted(indexes):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _options(request: SubmitRequest) -> dict[str, str]:
    """The sbatch options that matter here, from ``#SBATCH`` lines then the command line
    (which wins, as in sbatch)."""
    found: dict[str, str] = {}
    words: list[str] = []
    for line in request.script.splitlines()[1:]:
        if line.startswith("#SBATCH"):
            words += shlex.split(line[len("#SBATCH"):])
        elif line.strip() and not line.startswith("#"):
            break
    for word in [*words, *request.options]:
        if word.startswith("--") and "=" in word:
            key, _, value = word[2:].partition("=")
            found[key] = value
    return found


@dataclass
class FakeJob:
    job_id: str
    name: str
    account: str
    partition: str
    user: str
    cpus: int
    gpus: int
    script: str
    options: dict[str, str]
    submit_time: datetime
    state: str = "PENDING"
    reason: str = "Priority"
    start_time: datetime | None = None
    # While pending: when the controller expects it to start (squeue's Start column).
    expected_start: datetime | None = None
    end_time: datetime | None = None
    exit_code: str = "0:0"
    elapsed: int = 0
    in_accounting: bool = True
    # An array task: job_id is "<array_job_id>_<array_task_id>"; raw_id is the
    # JobIDRaw Slurm gives it once it starts.
    array_job_id: str | None = None
    array_task_id: int | None = None
    throttle: int | None = None
    raw_id: str = ""
    # A task cancelled before it started: Slurm keeps no record of it anywhere.
    gone: bool = False

    @property
    def finished(self) -> bool:
        return self.state.split(" ")[0] in FINISHED

    def sacct_line(self) -> str:
        tres = f"billing={self.cpus},cpu={self.cpus},mem=500M,node=1"
        if self.gpus:
            tres += f",gres/gpu={self.gpus}"
        row = {
            "JobID": self.job_id, "JobIDRaw": self.raw_id or self.job_id,
            "JobName": self.name, "State": self.state,
            "ExitCode": self.exit_code, "ElapsedRaw": str(self.elapsed),
            # Accounting shows no allocation for a job that never ran.
            "AllocTRES": tres if self.start_time else "",
            "CPUTimeRAW": str(self.elapsed * self.cpus if self.start_time else 0),
            "Submit": _local(self.submit_time), "Start": _local(self.start_time),
            "End": _local(self.end_time), "Reason": self.reason if self.state == "PENDING" else "None",
            "Account": self.account, "Partition": self.partition,
            "NodeList": "fake1" if self.start_time else "",
        }
        return SEP.join(row[f] for f in SACCT_FIELDS)

    def range_line(self, indexes: list[int]) -> str:
        """The one accounting line of an array's tasks that have not started (this is
        one of them): ``123_[2-5%2]``, JobIDRaw the array's own id."""
        throttle = f"%{self.throttle}" if self.throttle else ""
        pending = self.state == "PENDING"
        row = {
            "JobID": f"{self.array_job_id}_[{format_indexes(indexes)}{throttle}]",
            "JobIDRaw": self.array_job_id, "JobName": self.name, "State": self.state,
            "ExitCode": "0:0", "ElapsedRaw": "0", "AllocTRES": "", "CPUTimeRAW": "0",
            # Cancelled before starting: 22.05 prints Start as "None" (24.11: the cancel time).
            "Submit": _local(self.submit_time), "Start": "Unknown" if pending else "None",
            "End": _local(self.end_time), "Reason": self.reason if pending else "None",
            "Account": self.account, "Partition": self.partition, "NodeList": "None assigned",
        }
        return SEP.join(row[f] for f in SACCT_FIELDS)

    def squeue_line(self, reason: str = "") -> str:
        row = {"JobID": self.job_id, "JobName": self.name, "State": self.state,
               "Reason": (reason or self.reason) if self.state == "PENDING" else "None",
               "Submit": _local(self.submit_time),
               "Start": _local(self.start_time or self.expected_start)
               if self.start_time or self.expected_start else "N/A",
               "Account": self.account, "Partition": self.partition}
        return SEP.join(row[k] for k in SQUEUE_FORMAT)


@dataclass
class FakeSlurm:
    """``SlurmClient`` in memory (see the module docstring)."""

    partitions_: dict[str, dict[str, str]] = field(default_factory=lambda: {
        "cpu": {"gres": "", "avail": "up"}, "gpu": {"gres": "gpu:testgpu:2", "avail": "up"}})
    accounts_: set[str] = field(default_factory=lambda: {"test_lab", "test_other", "test_budget",
                                                                               "gateway_service"})
    assocs: set[tuple[str, str]] = field(default_factory=set)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    # An array's own id -> its task ids, in index order.
    arrays: dict[str, list[str]] = field(default_factory=dict)
    max_array_size: int = 1001  # Slurm's default MaxArraySize
    calls: int = 0
    cancelled_by: dict[str, str | None] = field(default_factory=dict)
    submitted: list[SubmitRequest] = field(default_factory=list)
    # account -> [cpu limit, gpu limit, cpu used, gpu used, cpu running, gpu running],
    # in minutes (None: no limit), as `scontrol show assoc_mgr` reports them.
    usage_: dict[str, list] = field(default_factory=dict)
    start_estimate: datetime | None = None
    used_: dict[str, JobUsage] = field(default_factory=dict)
    tested: list[SubmitRequest] = field(default_factory=list)
    _down: bool = False
    _next_failures: list[str] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1001))

    # --- what a test does to it ------------------------------------------------
    def down(self) -> None:
        self._down = True

    def up(self) -> None:
        self._down = False

    def fail_next_submit(self, kind: str) -> None:
        assert kind in ("refused", "unavailable", "no_answer", "no_answer_taken", "duplicate"), kind
        self._next_failures.append(kind)

    def late_accounting(self, job_id: str, late: bool = True) -> None:
        """Plain job, task, or a whole array by its own id."""
        for tid in self.arrays.get(job_id, [job_id]):
            self.jobs[tid].in_accounting = not late

    def tasks(self, array_job_id: str) -> list[FakeJob]:
        """An array's tasks in index order (those cancelled before starting included)."""
        return [self.jobs[t] for t in self.arrays[array_job_id]]

    def start(self, job_id: str, at: datetime | None = None) -> None:
        job = self.jobs[job_id]
        if job.array_job_id and not job.raw_id:
            # A started task gets a Slurm job id of its own; the last one to leave the
            # array's pending record takes the array's own id, as in Slurm.
            waiting = [t for t in self.tasks(job.array_job_id)
                       if t.start_time is None and not t.finished and t is not job]
            job.raw_id = str(next(self._ids)) if waiting else job.array_job_id
        job.state, job.reason = "RUNNING", "None"
        job.start_time = at or datetime.now(UTC).replace(tzinfo=None, microsecond=0)

    def finish(self, job_id: str, exit_code: int = 0, elapsed: int = 60, state: str | None = None,
               signal: int = 0) -> None:
        """End the job after ``elapsed`` seconds of running (started now if it never was)."""
        job = self.jobs[job_id]
        if job.start_time is None:
            self.start(job_id)
        job.elapsed = elapsed
        job.end_time = job.start_time + timedelta(seconds=elapsed)
        job.exit_code = f"{exit_code}:{signal}"
        job.state = state or ("COMPLETED" if exit_code == 0 and not signal else "FAILED")
        job.reason = "None"

    def _array_sacct_lines(self, array_job_id: str) -> list[str]:
        tasks = [t for t in self.tasks(array_job_id) if not t.gone]
        lines = [t.sacct_line() for t in tasks if t.start_time is not None and t.in_accounting]
        waiting = [t for t in tasks if t.start_time is None]
        if waiting and all(t.in_accounting for t in waiting):
            lines.append(waiting[0].range_line([t.array_task_id for t in waiting]))
        return lines

    def _array_squeue_lines(self, array_job_id: str) -> list[str]:
        tasks = [t for t in self.tasks(array_job_id) if not t.finished]
        running = sum(1 for t in tasks if t.start_time is not None)
        throttle = tasks[0].throttle if tasks else None
        # squeue says why a task waits: its array already runs its throttle's worth.
        held_back = "JobArrayTaskLimit" if throttle and running >= throttle else ""
        return [t.squeue_line(held_back) for t in tasks]

    def by_name(self, name: str) -> list[FakeJob]:
        return [j for j in self.jobs.values() if j.name == name]

    # --- SlurmClient -----------------------------------------------------------
    def _call(self, what: str) -> None:
        self.calls += 1
        if self._down:
            raise SlurmUnavailable(f"{what}: Slurm is unavailable: Unable to contact slurm controller "
                                   f"(connect failure)")

    def _queue_job(self, request: SubmitRequest) -> str:
        """Queue a job (or an array's tasks) and return the id sbatch prints."""
        opts = _options(request)
        gres = opts.get("gres", "")
        job = FakeJob(
            job_id=str(next(self._ids)), name=opts.get("job-name", "sbatch"),
            account=opts.get("account", ""), partition=opts.get("partition", "cpu"),
            user=request.user or "gateway", cpus=int(opts.get("cpus-per-task", 1)),
            gpus=int(gres.rsplit(":", 1)[-1]) if gres else 0, script=request.script, options=opts,
            submit_time=datetime.now(UTC).replace(tzinfo=None, microsecond=0),
        )
        if job.account and job.account not in self.accounts_:
            raise SlurmError("sbatch failed: sbatch: error: Batch job submission failed: "
                             "Invalid account or account/partition combination specified")
        if "array" not in opts:
            self.jobs[job.job_id] = job
            return job.job_id
        try:
            indexes, throttle = parse_array_spec(opts["array"])
        except ValueError:
            indexes = []
        if not indexes or indexes[-1] >= self.max_array_size:
            raise SlurmError("sbatch failed: sbatch: error: Batch job submission failed: "
                             "Invalid job array specification")
        base = job.job_id
        self.arrays[base] = [task_id(base, i) for i in indexes]
        for i in indexes:
            self.jobs[task_id(base, i)] = replace(job, job_id=task_id(base, i), array_job_id=base,
                                                  array_task_id=i, throttle=throttle)
        return base

    def submit(self, request: SubmitRequest) -> str:
        self._call("sbatch")
        self.submitted.append(request)
        kind = self._next_failures.pop(0) if self._next_failures else ""
        if kind == "refused":
            raise SlurmError("sbatch failed: sbatch: error: Batch job submission failed: "
                             "Requested node configuration is not available")
        if kind == "unavailable":
            raise SlurmUnavailable("sbatch: Slurm is unavailable: Unable to contact slurm controller")
        if kind in ("no_answer_taken", "duplicate"):
            self._queue_job(request)
        if kind == "duplicate":
            self._queue_job(request)
        if kind.startswith("no_answer") or kind == "duplicate":
            raise SlurmNoAnswer("sbatch: no answer from Slurm within 30s")
        return parse_job_id(f"{self._queue_job(request)}\n")

    def accounting(self, job_ids: list[str]) -> dict[str, SlurmJob]:
        # As CliSlurm: one sacct -j with each plain id and each array's own id once.
        self._call("sacct")
        lines: list[str] = []
        for i in base_ids(job_ids):
            if i in self.arrays:
                lines += self._array_sacct_lines(i)
            elif i in self.jobs and self.jobs[i].in_accounting:
                lines.append(self.jobs[i].sacct_line())
        return parse_sacct("\n".join(lines) + "\n")

    def queue(self, job_ids: list[str]) -> dict[str, SlurmJob]:
        self._call("squeue")
        lines: list[str] = []
        for i in base_ids(job_ids):
            if i in self.arrays:
                lines += self._array_squeue_lines(i)
            elif i in self.jobs and not self.jobs[i].finished:
                lines.append(self.jobs[i].squeue_line())
        return parse_squeue("\n".join(lines) + "\n")

    def find_by_names(self, names: list[str], since: datetime) -> dict[str, list[str]]:
        self._call("sacct")
        found: dict[str, list[str]] = {}
        for job in self.jobs.values():
            if job.name in names and job.submit_time >= since.replace(microsecond=0):
                ids = found.setdefault(job.name, [])
                if (job.array_job_id or job.job_id) not in ids:  # an array once, by its own id
                    ids.append(job.array_job_id or job.job_id)
        return {n: sorted(ids, key=int) for n, ids in found.items()}

    def cancel(self, job_id: str, user: str | None = None) -> None:
        self._call("scancel")
        targets = [self.jobs[t] for t in self.arrays[job_id]] if job_id in self.arrays else \
            [self.jobs[job_id]] if job_id in self.jobs else []
        if not targets:
            raise SlurmError(f"scancel failed: scancel: error: Kill job error on job id {job_id}: "
                             f"Invalid job id specified")
        if all(job.finished for job in targets):
            return
        self.cancelled_by[job_id] = user
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        for job in targets:
            if job.finished:
                continue
            if job.start_time:
                job.elapsed = max(1, int((now - job.start_time).total_seconds()))
                job.end_time = job.start_time + timedelta(seconds=job.elapsed)
            else:
                job.end_time = now
            # A plain job keeps the fake's old 0:15; Slurm prints 0:0 for a cancelled
            # task, running or not (tests/recorded/slurm-*/array-sacct-*.txt).
            job.state, job.reason = "CANCELLED by 0", "None"
            job.exit_code = "0:0" if job.array_job_id else "0:15"
            # One task cancelled before it started leaves the array's pending record
            # and is never written to accounting.
            job.gone = job.array_job_id is not None and job.start_time is None and job_id not in self.arrays

    def partitions(self) -> dict[str, dict[str, str]]:
        self._call("sinfo")
        return {k: dict(v) for k, v in self.partitions_.items()}

    def accounts(self) -> set[str]:
        self._call("sacctmgr")
        return set(self.accounts_)

    def associations(self) -> list[tuple[str, str]]:
        self._call("sacctmgr")
        return sorted({("", a) for a in self.accounts_} | self.assocs)

    def default_accounts(self) -> dict[str, str]:
        self._call("sacctmgr")
        out: dict[str, str] = {}
        for user, acct in sorted(self.assocs):
            out.setdefault(user, acct)
        return out

    def add_association(self, user: str, accounts: list[str]) -> None:
        self._call("sacctmgr")
        self.assocs |= {(user, a) for a in accounts}

    def test_only(self, request: SubmitRequest) -> datetime | None:
        """Slurm's guess: at once on an idle fake; tests may set ``start_estimate``."""
        self._call("sbatch")
        self.tested.append(request)
        return self.start_estimate or datetime.now(UTC).replace(tzinfo=None, microsecond=0)

    def job_usage(self, job_ids: list[str]) -> dict[str, JobUsage]:
        """What ended jobs used: ``used_`` where a test set it, else every CPU busy the
        whole time and half the memory asked for."""
        self._call("sacct")
        out = {}
        for jid in job_ids:
            job = self.jobs.get(jid)
            if job is None or not job.finished or not job.in_accounting:
                continue
            mem = parse_size_mb(job.options.get("mem", "500M"), bare_unit="M") or 500.0
            out[jid] = self.used_.get(jid) or JobUsage(jid, float(job.elapsed * job.cpus), mem / 2, mem, True)
        return out

    def account_usage(self, accounts: list[str]) -> dict[str, AccountUsage]:
        self._call("scontrol")
        out = {}
        for acct in accounts:
            if acct in self.accounts_:
                u = self.usage_.setdefault(acct, [None, None, 0, 0, 0, 0])
                out[acct] = AccountUsage(acct, *u)
        return out

    def set_account_limits(self, account: str, cpu_minutes: int | None, gpu_minutes: int | None) -> None:
        self._call("sacctmgr")
        self.usage_.setdefault(account, [None, None, 0, 0, 0, 0])[:2] = [cpu_minutes, gpu_minutes]

    def reset_account_usage(self, account: str) -> None:
        self._call("sacctmgr")
        self.usage_.setdefault(account, [None, None, 0, 0, 0, 0])[2:4] = [0, 0]

    def use(self, account: str, cpu_minutes: int = 0, gpu_minutes: int = 0,
            running_cpu_minutes: int = 0) -> None:
        """What a test does: usage Slurm has counted against the account."""
        u = self.usage_.setdefault(account, [None, None, 0, 0, 0, 0])
        u[2] += cpu_minutes
        u[3] += gpu_minutes
        u[4] = running_cpu_minutes

    def remove_association(self, user: str, accounts: list[str] | None, new_default: str = "") -> None:
        self._call("sacctmgr")
        self.assocs = {(u, a) for u, a in self.assocs
                       if u != user or (accounts is not None and a not in accounts)}
