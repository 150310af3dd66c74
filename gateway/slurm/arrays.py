"""Slurm job arrays: how their tasks are named, and how Slurm collapses pending ones.

An array task is ``"<array job id>_<task index>"`` everywhere in the gateway
(``"123_4"``), exactly as sacct's JobID column and squeue's ``%i`` print it; a plain
job stays its plain id (``"123"``). Slurm gives every started task a job id of its
own (JobIDRaw), but that id is of no use to the gateway: the last task to start
even takes over the array's own id, so only the task form names a task for good.

Tasks that have not started are one record in accounting, printed as a range:
``123_[5-99%10]`` or ``123_[2-3,5%2]`` (``%`` gives the throttle). The gateway
expands such a line into one record per task.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

# Slurm refuses MaxArraySize above 4000001, so no task index is above 4000000: a
# range beyond it is garbled output, never expanded into millions of records.
MAX_TASK_INDEX = 4_000_000
TASK_ID = re.compile(r"^(\d+)_(\d+)$")
ARRAY_OF = re.compile(r"^(\d+)_")
RANGE_ID = re.compile(r"^(\d+)_\[([0-9,:\-]+)(?:%(\d+))?\]$")
ARRAY_SPEC = re.compile(r"^([0-9,:\-]+)(?:%(\d+))?$")


def task_id(array_job_id: str, index: int) -> str:
    return f"{array_job_id}_{index}"


def split_task_id(job_id: str) -> tuple[str, int | None]:
    """``"123_4"`` -> ``("123", 4)``; a plain ``"123"`` -> ``("123", None)``."""
    m = TASK_ID.match(job_id)
    return (m.group(1), int(m.group(2))) if m else (job_id, None)


def is_task_id(job_id: str | None) -> bool:
    """Whether ``job_id`` names one task of an array (``"123_4"``)."""
    return bool(job_id) and TASK_ID.match(job_id) is not None


def base_id(job_id: str) -> str:
    """The array's own id for a task or a task range (``"123_4"``, ``"123_[5-7]"``);
    any other id unchanged."""
    m = ARRAY_OF.match(job_id)
    return m.group(1) if m else job_id


def base_ids(job_ids: Iterable[str]) -> list[str]:
    """The ids to give ``sacct -j`` / ``squeue -j``: each plain id and each array's own
    id once, in first-seen order. ``-j 123`` returns every task of array 123, and is
    the only way to get the tasks that have not started from accounting (22.05's
    ``sacct -j 123_5`` prints nothing for a pending task)."""
    return list(dict.fromkeys(base_id(i) for i in job_ids))


def expand_indexes(spec: str) -> list[int]:
    """Task indexes of an index list as Slurm prints and takes it: ``"5-99"``,
    ``"1,3,5-7"``, ``"7"``, ``"0-15:4"`` (a step, sbatch only). Raises ValueError."""
    out: list[int] = []
    for part in spec.split(","):
        span, _, step_text = part.partition(":")
        first, dash, last = span.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()) or (step_text and not step_text.isdigit()):
            raise ValueError(f"not a task index list: {spec!r}")
        lo, hi, step = int(first), int(last) if dash else int(first), int(step_text or 1)
        if hi < lo or step < 1 or hi > MAX_TASK_INDEX:
            raise ValueError(f"not a task index list: {spec!r}")
        out.extend(range(lo, hi + 1, step))
    return sorted(set(out))


def parse_array_spec(spec: str) -> tuple[list[int], int | None]:
    """sbatch's ``--array`` value: ``"0-9%3"`` -> ``([0, ..., 9], 3)``. Raises ValueError."""
    m = ARRAY_SPEC.match(spec.strip())
    if not m:
        raise ValueError(f"not an --array value: {spec!r}")
    return expand_indexes(m.group(1)), int(m.group(2)) if m.group(2) else None


def parse_range_id(job_id: str) -> tuple[str, list[int], int | None] | None:
    """``"123_[5-7%2]"`` -> ``("123", [5, 6, 7], 2)``; None for any other id.
    Raises ValueError for a range it cannot read."""
    m = RANGE_ID.match(job_id)
    if not m:
        return None
    return m.group(1), expand_indexes(m.group(2)), int(m.group(3)) if m.group(3) else None
