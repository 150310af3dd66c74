"""Reconciliation: what the gateway charged each licence this period against Slurm's
accounting of the same jobs, to the second (there should be no difference).

Every ended job the gateway charged to a licence since its budget period began (a
month if the licence has no budget period) is read again from accounting in one sacct
call for all, and its CPU- and GPU-seconds compared with Slurm's own: CPUTimeRAW, and
elapsed x allocated GPUs. `gateway reconcile` prints the result and exits 1 on any
difference; the poller runs it nightly and logs what differs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from . import budgets
from .context import Context
from .db import utcnow
from .hours import format_seconds_as_hours
from .models import Job

logger = logging.getLogger(__name__)


@dataclass
class LicenseTotals:
    license: str
    account: str
    since: datetime
    jobs: int = 0
    gateway_cpu_s: int = 0
    gateway_gpu_s: int = 0
    slurm_cpu_s: int = 0
    slurm_gpu_s: int = 0
    differences: list[str] = field(default_factory=list)

    def line(self) -> str:
        def h(seconds: int) -> str:
            return format_seconds_as_hours(seconds)
        head = (f"licence {self.license} (account {self.account}) since {self.since:%Y-%m-%d}: "
                f"{self.jobs} jobs; gateway {h(self.gateway_cpu_s)} CPU h, {h(self.gateway_gpu_s)} GPU h; "
                f"Slurm {h(self.slurm_cpu_s)} CPU h, {h(self.slurm_gpu_s)} GPU h")
        return head + (": equal" if not self.differences else f": {len(self.differences)} differ")


def reconcile(ctx: Context, now: datetime | None = None) -> list[LicenseTotals]:
    now = now or utcnow()
    out, by_slurm_id = [], {}
    for lic in ctx.config.licenses.values():
        budget, _ = budgets.effective(lic)
        since = budgets.period_start(budget.period if budget.period != "none" else "month", now)
        totals = LicenseTotals(lic.name, lic.slurm_account, since)
        out.append(totals)
        for job in (Job.select(Job.id, Job.slurm_job_id, Job.cpu_seconds, Job.gpu_seconds)
                    .where(Job.license == lic.name, Job.finalized == True,  # noqa: E712
                           Job.slurm_job_id.is_null(False), Job.started_at >= since)):
            by_slurm_id[job.slurm_job_id] = (totals, job)
    records = ctx.slurm.accounting(list(by_slurm_id)) if by_slurm_id else {}
    for slurm_id, (totals, job) in by_slurm_id.items():
        rec = records.get(slurm_id)
        totals.jobs += 1
        totals.gateway_cpu_s += job.cpu_seconds
        totals.gateway_gpu_s += job.gpu_seconds
        if rec is None:
            totals.differences.append(f"job {job.id} (Slurm {slurm_id}): not in Slurm's accounting")
            continue
        cpu, gpu = rec.cpu_time_raw, rec.elapsed_seconds * rec.alloc_gpus
        totals.slurm_cpu_s += cpu
        totals.slurm_gpu_s += gpu
        if (cpu, gpu) != (job.cpu_seconds, job.gpu_seconds):
            totals.differences.append(f"job {job.id} (Slurm {slurm_id}): gateway {job.cpu_seconds} CPU-s "
                                      f"{job.gpu_seconds} GPU-s, Slurm {cpu} CPU-s {gpu} GPU-s")
    return out


def nightly(ctx: Context) -> list[LicenseTotals]:
    """What the poller runs each night: differences are logged as errors."""
    found = reconcile(ctx)
    for totals in found:
        for difference in totals.differences:
            logger.error("reconciliation, licence %s: %s", totals.license, difference)
    return found
