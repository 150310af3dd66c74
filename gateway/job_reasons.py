"""What the pages and the API say about where a job stands, in plain words: why a pending
job waits, when Slurm expects it to start, and who cancelled it (by name, not uid).

The job row keeps Slurm's own words (``waiting: AssocGrpCPUMinutesLimit``, ``cancelled
by 1000``); they are turned into sentences here, when shown, so rows written before a
wording change read the same as new ones.
"""
from __future__ import annotations

import pwd
import re
from datetime import datetime
from functools import lru_cache

from .models import Job
from .slurm.states import FAILED, PENDING, WAITING, normalise

# Slurm's pending reason -> why the job waits, for the person who ran it.
PENDING_WORDS: dict[str, str] = {
    "Priority": "other jobs are ahead of it in the queue",
    "Resources": "not enough CPUs, memory or GPUs are free yet",
    "Dependency": "the jobs it depends on have not ended yet",
    "DependencyNeverSatisfied": "the jobs it depends on did not end as needed: it will never start",
    "BeginTime": "its start time has not come yet",
    "JobHeldUser": "held by the person who ran it: it starts once released",
    "JobHeldAdmin": "held by an administrator",
    "launch failed requeued held": "held after it failed to start on its node: an administrator "
                                   "must release it",
    "ReqNodeNotAvail": "the nodes it needs are down, drained or reserved",
    "NodeDown": "a node it needs is down",
    "PartitionDown": "its partition is down",
    "PartitionInactive": "its partition is not starting jobs",
    "PartitionNodeLimit": "it asks for more nodes than its partition allows: it will not start",
    "PartitionTimeLimit": "its time limit is longer than its partition allows: it will not start",
    "PartitionConfig": "it asks for more than its partition has: it will not start",
    "Reservation": "its reservation has not begun yet",
    "BadConstraints": "it asks for node features no node has: it will not start",
    "InvalidAccount": "its licence's Slurm account is not valid: ask an administrator",
    "InvalidQOS": "its quality of service is not valid: ask an administrator",
    "AccountNotAllowed": "its licence may not use this partition",
    "QOSNotAllowed": "its quality of service may not use this partition",
    "Licenses": "the Slurm software licences it needs are in use",
    "Cleaning": "its node is being cleaned up after the previous job",
    "Prolog": "its node is being prepared",
    "NodeReboot": "its node is rebooting",
    "FrontEndDown": "the cluster's front end is down",
    "SystemFailure": "Slurm had a failure",
}

# Limits (association = licence, QOS = the site's quality of service), matched in order.
LIMITS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^AssocGrp\w*RunMin"), "the licence's running jobs already use all of its "
                                        "allowance: it starts as they end"),
    (re.compile(r"^AssocGrp\w*Min"), "the licence's budget is used up: it starts once the "
                                     "sponsor's budget is raised"),
    (re.compile(r"^QOSGrp\w*Min"), "the budget of its quality of service is used up"),
    (re.compile(r"^(Assoc|QOS)Max\w*PerJob"), "it asks for more than one job may use: it will "
                                               "not start (cancel it and ask for less)"),
    (re.compile(r"^(Assoc|QOS)Max\w*PerAccount"), "the licence already runs as much as it may at "
                                                  "once: it starts as its jobs end"),
    (re.compile(r"^(AssocMax|QOSMax\w*PerUser)"), "you already run as much as you may at once: it "
                                                  "starts as your jobs end"),
    (re.compile(r"^AssocGrp"), "the licence's jobs already use all it may use at once: it starts "
                               "as they end"),
    (re.compile(r"^QOSGrp"), "jobs of its quality of service already use all the site allows at "
                             "once: it starts as they end"),
    (re.compile(r"^Assoc"), "a limit of its licence holds it"),
    (re.compile(r"^QOS"), "a limit of the site holds it"),
]

CANCELLED_BY_UID = re.compile(r"^cancelled by (\d+)$")


def pending_words(code: str) -> str:
    """Slurm's pending reason code in plain words (the code itself if Slurm adds one
    we do not know)."""
    code = code.strip()
    head = code.split(",")[0].strip()  # "ReqNodeNotAvail, UnavailableNodes:n1"
    if head in PENDING_WORDS:
        return PENDING_WORDS[head]
    for pattern, words in LIMITS:
        if pattern.match(head):
            return words
    return f"Slurm says {code}"


@lru_cache(maxsize=256)
def _unix_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _is_cancelled(job: Job) -> bool:
    return job.status == FAILED and (normalise(job.slurm_state) == "CANCELLED"
                                     or job.reason.startswith("cancelled"))


def canceller(job: Job) -> str | None:
    """Who cancelled the job, by name: whoever did it through the gateway, else the
    Unix user Slurm names (by uid), else None."""
    if not _is_cancelled(job):
        return None
    if job.cancelled_by:
        return job.cancelled_by
    m = CANCELLED_BY_UID.match(job.reason)
    return _unix_name(int(m.group(1))) if m else None


def shown_reason(job: Job) -> str:
    """The job's reason as shown: a pending job's in plain words (Slurm's code kept in
    brackets, for whoever asks an administrator), a cancel with who did it."""
    reason = job.reason or ""
    if job.status == PENDING and reason.startswith(WAITING):
        code = reason[len(WAITING):]
        return f"{WAITING}{pending_words(code)} (Slurm: {code})"
    if job.status == PENDING and not reason and job.slurm_job_id:
        return "waiting in Slurm's queue"
    who = canceller(job)
    if who:
        return f"cancelled by {who}"
    return reason


def expected_start(job: Job) -> datetime | None:
    """When Slurm expects the pending job to start, if it has said."""
    return job.expected_start_at if job.status == PENDING else None
