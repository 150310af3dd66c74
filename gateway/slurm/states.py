"""The one table from Slurm job states to the product's four statuses.

Keys are Slurm's long names and short codes; lookups use the first word only, so
``CANCELLED by 1000`` maps like ``CANCELLED``. A state Slurm adds later and we do
not know is shown as Running/Pending by whether the job has ended, never dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

PENDING, RUNNING, COMPLETED, FAILED = "Pending", "Running", "Completed", "Failed"
STATUSES = (PENDING, RUNNING, COMPLETED, FAILED)
FINAL_STATUSES = (COMPLETED, FAILED)
# A pending job's reason is this followed by Slurm's own code ("waiting: Priority");
# job_reasons puts the code into words when it is shown.
WAITING = "waiting: "

# state -> (status, human reason when it is a failure or a wait)
STATE_MAP: dict[str, tuple[str, str]] = {
    "PENDING": (PENDING, ""),
    "CONFIGURING": (PENDING, "nodes are being configured"),
    "REQUEUED": (PENDING, "requeued by Slurm"),
    "REQUEUE_HOLD": (PENDING, "requeued and held"),
    "REQUEUE_FED": (PENDING, "requeued by the federation"),
    "RESV_DEL_HOLD": (PENDING, "held: its reservation was deleted"),
    "SUSPENDED": (PENDING, "suspended by Slurm (not charged while suspended)"),
    "RUNNING": (RUNNING, ""),
    "COMPLETING": (RUNNING, ""),
    "STAGE_OUT": (RUNNING, ""),
    "SIGNALING": (RUNNING, ""),
    "RESIZING": (RUNNING, ""),
    "STOPPED": (RUNNING, "stopped by a signal"),
    "COMPLETED": (COMPLETED, ""),
    "FAILED": (FAILED, "the script exited with a non-zero status"),
    "TIMEOUT": (FAILED, "wall-time limit reached (TIMEOUT)"),
    "OUT_OF_MEMORY": (FAILED, "out of memory: the job used more than its machine type's RAM"),
    "CANCELLED": (FAILED, "cancelled"),
    "NODE_FAIL": (FAILED, "node failure"),
    "PREEMPTED": (FAILED, "preempted by a higher-priority job"),
    "BOOT_FAIL": (FAILED, "the node failed to boot"),
    "DEADLINE": (FAILED, "deadline reached before it could run"),
    "REVOKED": (FAILED, "revoked by the federation"),
    "SPECIAL_EXIT": (FAILED, "special exit requested by the job"),
}
SHORT_CODES = {
    "PD": "PENDING", "CF": "CONFIGURING", "RQ": "REQUEUED", "RH": "REQUEUE_HOLD",
    "RF": "REQUEUE_FED", "RD": "RESV_DEL_HOLD", "S": "SUSPENDED", "R": "RUNNING",
    "CG": "COMPLETING", "SO": "STAGE_OUT", "SI": "SIGNALING", "RS": "RESIZING",
    "ST": "STOPPED", "CD": "COMPLETED", "F": "FAILED", "TO": "TIMEOUT",
    "OOM": "OUT_OF_MEMORY", "CA": "CANCELLED", "NF": "NODE_FAIL", "PR": "PREEMPTED",
    "BF": "BOOT_FAIL", "DL": "DEADLINE", "RV": "REVOKED", "SE": "SPECIAL_EXIT",
}


def normalise(state: str) -> str:
    """``'CANCELLED by 0'`` -> ``'CANCELLED'``; ``'PD'`` -> ``'PENDING'``."""
    word = (state or "").strip().split(" ")[0].rstrip("+").upper()
    return SHORT_CODES.get(word, word)


@dataclass(frozen=True)
class Outcome:
    status: str
    reason: str
    exit_code: int | None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


# What slurmstepd writes into a job's log when it kills the job for memory: with cgroups
# the state is OUT_OF_MEMORY, but without them (JobAcctGatherParams=OverMemoryKill) the
# state is only FAILED/CANCELLED with signal 9, and this line is the evidence.
OOM_LOG_MARKERS = ("oom-kill event", "exceeded memory limit", "Exceeded job memory limit")


def looks_like_oom(log_tail: str) -> bool:
    return any(marker in log_tail for marker in OOM_LOG_MARKERS)


def classify(state: str, exit_code: int | None = None, signal: int | None = None,
             script_exit: int | None = None, ended: bool = False,
             pending_reason: str = "", log_tail: str = "") -> Outcome:
    """Map a Slurm record (plus the exit status the job script recorded) to an Outcome.

    The script's own exit status wins over Slurm's view of the allocation: a script
    that fails under a COMPLETED allocation is Failed, and an OUT_OF_MEMORY kill is
    Failed even when the allocation exited 0.
    """
    name = normalise(state)
    status, reason = STATE_MAP.get(name, (FAILED if ended else RUNNING, f"Slurm state {name}"))
    code = script_exit if script_exit is not None else exit_code
    if status == PENDING and name == "PENDING" and pending_reason and pending_reason != "None":
        reason = f"{WAITING}{pending_reason}"
    if status == COMPLETED and script_exit not in (None, 0):
        status, reason = FAILED, f"the script exited with status {script_exit}"
    elif name == "FAILED":
        if signal:
            reason = f"killed by signal {signal}"
        elif code:
            reason = f"the script exited with status {code}"
    if status == FAILED and name == "CANCELLED" and len(state.split()) > 1:
        reason = "cancelled " + " ".join(state.split()[1:]).lower()
    if status == FAILED and name != "OUT_OF_MEMORY" and looks_like_oom(log_tail):
        reason = STATE_MAP["OUT_OF_MEMORY"][1]
    if status in (PENDING, RUNNING):
        code = None
    return Outcome(status=status, reason=reason, exit_code=code)
