"""The interface the services use to reach Slurm, and the records it returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass
class SlurmJob:
    """One job as read from accounting (sacct) or the controller (squeue)."""

    job_id: str
    name: str
    state: str
    exit_code: int | None = None
    signal: int | None = None
    elapsed_seconds: int = 0
    alloc_cpus: int = 0
    alloc_gpus: int = 0
    cpu_time_raw: int = 0
    submit_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    reason: str = ""
    source: str = "sacct"  # or "squeue": the accounting database does not know it yet
    # A pending job's expected start: only the controller (squeue) estimates it, so it
    # is current only where ``queue_checked`` says squeue was read for this record.
    expected_start: datetime | None = None
    queue_checked: bool = False
    native: dict[str, str] = field(default_factory=dict)
    # An array task ("123_4" in job_id): its array's own id and its index; None for a
    # plain job.
    array_job_id: str | None = None
    array_task_id: int | None = None


@dataclass(frozen=True)
class AccountUsage:
    """A Slurm account's TRES-minute limits (GrpTRESMins; None: no limit) and what the
    controller counts against them: minutes used since its usage was last reset, and
    minutes its running jobs may still use (Slurm's "safe" enforcement counts both)."""

    account: str
    cpu_minutes_limit: int | None = None
    gpu_minutes_limit: int | None = None
    cpu_minutes_used: int = 0
    gpu_minutes_used: int = 0
    cpu_minutes_running: int = 0
    gpu_minutes_running: int = 0


@dataclass(frozen=True)
class JobUsage:
    """What an ended job used, from accounting's job and step records: CPU time of all
    its steps, the largest step's peak memory, and the memory it asked for."""

    job_id: str
    total_cpu_seconds: float | None = None
    max_rss_mb: float | None = None
    req_mem_mb: float | None = None
    steps_seen: bool = False  # the step records are in accounting (they may come later)


@dataclass(frozen=True)
class SubmitRequest:
    script: str
    # Extra sbatch options given on the command line; they win over #SBATCH lines.
    options: tuple[str, ...] = ()
    # Unix user to submit as; None submits as the gateway's own user.
    user: str | None = None
    workdir: str | None = None


class SlurmClient(Protocol):
    def submit(self, request: SubmitRequest) -> str: ...

    def test_only(self, request: SubmitRequest) -> datetime | None: ...

    def accounting(self, job_ids: list[str]) -> dict[str, SlurmJob]: ...

    def queue(self, job_ids: list[str]) -> dict[str, SlurmJob]: ...

    def find_by_names(self, names: list[str], since: datetime) -> dict[str, list[str]]: ...

    def cancel(self, job_id: str, user: str | None = None) -> None: ...

    def partitions(self) -> dict[str, dict[str, str]]: ...

    def accounts(self) -> set[str]: ...

    def associations(self) -> list[tuple[str, str]]: ...

    def default_accounts(self) -> dict[str, str]: ...

    def add_association(self, user: str, accounts: list[str]) -> None: ...

    def remove_association(self, user: str, accounts: list[str] | None, new_default: str = "") -> None: ...

    def account_usage(self, accounts: list[str]) -> dict[str, AccountUsage]: ...

    def job_usage(self, job_ids: list[str]) -> dict[str, JobUsage]: ...

    def set_account_limits(self, account: str, cpu_minutes: int | None, gpu_minutes: int | None) -> None: ...

    def reset_account_usage(self, account: str) -> None: ...
