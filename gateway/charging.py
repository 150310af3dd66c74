"""The charge formula and licence usage: the one place that says what an hour costs.

A job's charge is set from accounting, never added to: CPU-seconds = running seconds
x allocated CPUs, GPU-seconds likewise with allocated GPUs. Slurm's ElapsedRaw does
not count time spent Pending, so waiting is never charged. Reading the same record
twice sets the same numbers, which is why a re-run or crashed poller cannot charge twice.
"""
from __future__ import annotations

from peewee import fn

from .models import Job


def charge_seconds(elapsed_seconds: int, alloc_cpus: int, alloc_gpus: int) -> tuple[int, int]:
    elapsed = max(0, int(elapsed_seconds))
    return elapsed * max(0, alloc_cpus), elapsed * max(0, alloc_gpus)


def license_usage() -> dict[str, tuple[int, int]]:
    """licence name -> (CPU-seconds, GPU-seconds) over all its jobs, running ones included."""
    rows = (Job.select(Job.license, fn.SUM(Job.cpu_seconds).alias("cpu"),
                       fn.SUM(Job.gpu_seconds).alias("gpu"))
            .group_by(Job.license).tuples())
    return {name: (int(cpu or 0), int(gpu or 0)) for name, cpu, gpu in rows}
