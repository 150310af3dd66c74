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
"""
from __future__ import annotations

import itertools
import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway.errors import SlurmError, SlurmNoAnswer, SlurmUnavailable
from gateway.slurm.cli import SACCT_FIELDS, SEP, SQUEUE_FORMAT, parse_job_id, parse_sacct, parse_squeue
from gateway.slurm.client import SlurmJob, SubmitRequest

FINISHED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL")


def _local(dt: datetime | None) -> str:
    """Slurm prints local wall-clock time without a zone."""
    if dt is None:
        return "Unknown"
    return dt.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%dT%H:%M:%S")


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

    @property
    def finished(self) -> bool:
        return self.state.split(" ")[0] in FINISHED

    def sacct_line(self) -> str:
        tres = f"billing={self.cpus},cpu={self.cpus},mem=500M,node=1"
        if self.gpus:
            tres += f",gres/gpu={self.gpus}"
        row = {
            "JobIDRaw": self.job_id, "JobName": self.name, "State": self.state,
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

    def squeue_line(self) -> str:
        row = {"JobID": self.job_id, "JobName": self.name, "State": self.state,
               "Reason": self.reason if self.state == "PENDING" else "None",
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
    accounts_: set[str] = field(default_factory=lambda: {"test_lab", "test_other", "gateway_service"})
    assocs: set[tuple[str, str]] = field(default_factory=set)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    calls: int = 0
    cancelled_by: dict[str, str | None] = field(default_factory=dict)
    submitted: list[SubmitRequest] = field(default_factory=list)
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
        self.jobs[job_id].in_accounting = not late

    def start(self, job_id: str, at: datetime | None = None) -> None:
        job = self.jobs[job_id]
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

    def by_name(self, name: str) -> list[FakeJob]:
        return [j for j in self.jobs.values() if j.name == name]

    # --- SlurmClient -----------------------------------------------------------
    def _call(self, what: str) -> None:
        self.calls += 1
        if self._down:
            raise SlurmUnavailable(f"{what}: Slurm is unavailable: Unable to contact slurm controller "
                                   f"(connect failure)")

    def _queue_job(self, request: SubmitRequest) -> FakeJob:
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
        self.jobs[job.job_id] = job
        return job

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
        return parse_job_id(f"{self._queue_job(request).job_id}\n")

    def accounting(self, job_ids: list[str]) -> dict[str, SlurmJob]:
        self._call("sacct")
        lines = [self.jobs[i].sacct_line() for i in job_ids
                 if i in self.jobs and self.jobs[i].in_accounting]
        return parse_sacct("\n".join(lines) + "\n")

    def queue(self, job_ids: list[str]) -> dict[str, SlurmJob]:
        self._call("squeue")
        lines = [self.jobs[i].squeue_line() for i in job_ids if i in self.jobs and not self.jobs[i].finished]
        return parse_squeue("\n".join(lines) + "\n")

    def find_by_names(self, names: list[str], since: datetime) -> dict[str, list[str]]:
        self._call("sacct")
        found: dict[str, list[str]] = {}
        for job in self.jobs.values():
            if job.name in names and job.submit_time >= since.replace(microsecond=0):
                found.setdefault(job.name, []).append(job.job_id)
        return {n: sorted(ids, key=int) for n, ids in found.items()}

    def cancel(self, job_id: str, user: str | None = None) -> None:
        self._call("scancel")
        job = self.jobs.get(job_id)
        if job is None:
            raise SlurmError(f"scancel failed: scancel: error: Kill job error on job id {job_id}: "
                             f"Invalid job id specified")
        if job.finished:
            return
        self.cancelled_by[job_id] = user
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        if job.start_time:
            job.elapsed = max(1, int((now - job.start_time).total_seconds()))
            job.end_time = job.start_time + timedelta(seconds=job.elapsed)
        else:
            job.end_time = now
        job.state, job.exit_code, job.reason = "CANCELLED by 0", "0:15", "None"

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

    def remove_association(self, user: str, accounts: list[str] | None, new_default: str = "") -> None:
        self._call("sacctmgr")
        self.assocs = {(u, a) for u, a in self.assocs
                       if u != user or (accounts is not None and a not in accounts)}
