"""Slurm through its command-line tools: the only module that runs Slurm commands.

Slurm tools sometimes exit 0 and still print an error, and an unreachable daemon
looks different in every tool, so every call goes through ``_run``, which turns
"cannot reach slurmctld/slurmdbd" into ``SlurmUnavailable`` and any other refusal
into ``SlurmError`` carrying Slurm's own words.

Array tasks are named ``"<array job id>_<task index>"`` in and out of this module
(see ``arrays``): sacct and squeue are asked for each array's own id once, and every
task comes back under its task id, pending ones included.
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime

from ..errors import SlurmError, SlurmNoAnswer, SlurmUnavailable
from .arrays import base_id, base_ids, parse_range_id, split_task_id, task_id
from .client import AccountUsage, JobUsage, SlurmJob, SubmitRequest
from .states import normalise
from .tres import parse_tres, tres_cpus, tres_gpus
from .warm_helpers import HelperRefused, WarmHelpers

logger = logging.getLogger(__name__)

SEP = "\x1f"  # unit separator: cannot appear in a job name typed by a person
# JobID names an array task ("123_4") or its tasks that have not started
# ("123_[5-99%10]"); JobIDRaw is the Slurm job id each started task gets of its own.
SACCT_FIELDS = (
    "JobID", "JobIDRaw", "JobName", "State", "ExitCode", "ElapsedRaw", "AllocTRES",
    "CPUTimeRAW", "Submit", "Start", "End", "Reason", "Account", "Partition", "NodeList",
)
SQUEUE_FORMAT = {  # squeue -o letters, in order
    # %i: a plain job's id, or an array task's "123_4" (with -r, one line per task).
    "JobID": "%i", "JobName": "%j", "State": "%T", "Reason": "%r", "Submit": "%V",
    "Start": "%S", "Account": "%a", "Partition": "%P",
}
UNAVAILABLE = re.compile(
    r"Unable to contact slurm controller|Socket timed out|Connection refused|"
    r"Zero Bytes were transmitted|Problem talking to the database|slurmdbd|"
    r"Communication connection failure|Unable to connect to database|"
    r"Slurm backup controller in standby|Transport endpoint is not connected",
    re.IGNORECASE,
)
INVALID_JOB = re.compile(r"Invalid job id", re.IGNORECASE)
# A clean environment for the tools: a job inherits sbatch's environment, and the
# gateway's own (database URL, secrets) must never reach a job.
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
}
# squeue cuts an array's task list after 64 characters (even its closing bracket)
# and sacct's manual says it may too, unless told otherwise: a sweep with gaps in
# its pending tasks prints a long list.
QUERY_ENV = {**BASE_ENV, "SLURM_BITSTR_LEN": "0"}


def parse_time(text: str) -> datetime | None:
    """Slurm prints local wall-clock times; the gateway stores naive UTC."""
    if not text or text in ("Unknown", "None", "N/A"):
        return None
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        return None
    return local.astimezone(UTC).replace(tzinfo=None)


_TEST_ONLY = re.compile(r"to start at (\S+)")


def parse_test_only(text: str) -> datetime | None:
    """``sbatch: Job 123 to start at 2026-11-26T22:27:11 using 1 processors on nodes vm
    in partition cpu``: the time, as naive UTC."""
    found = _TEST_ONLY.search(text)
    return parse_time(found.group(1)) if found else None


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """``'2:0'`` -> (2, 0); the part after the colon is the killing signal."""
    if not text or ":" not in text:
        return None, None
    code, _, sig = text.partition(":")
    try:
        return int(code), int(sig)
    except ValueError:
        return None, None


def parse_job_id(stdout: str) -> str:
    """``sbatch --parsable`` prints ``id`` or ``id;cluster``."""
    first = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = first.split(";")[0].strip()
    if not job_id.isdigit():
        raise SlurmError(f"sbatch gave no job id (output: {stdout.strip()[:200]!r})")
    return job_id


def _by_task(job: SlurmJob, job_id: str, own: dict[str, SlurmJob],
             collapsed: dict[str, SlurmJob]) -> None:
    """File one parsed line under the ids it stands for. A task's own line goes in
    ``own``; a line for tasks not started yet (``123_[5-7%2]``) gives each task a
    record of its own in ``collapsed``, sharing the line's fields."""
    try:
        tasks = parse_range_id(job_id)
    except ValueError:
        logger.warning("skipping a line for array tasks Slurm listed as %r", job_id[:200])
        return
    if tasks is not None:
        array_id, indexes, _throttle = tasks
        for index in indexes:
            tid = task_id(array_id, index)
            collapsed[tid] = replace(job, job_id=tid, array_job_id=array_id, array_task_id=index,
                                     native=dict(job.native))
        return
    array_id, index = split_task_id(job_id)
    if index is not None:
        job = replace(job, job_id=job_id, array_job_id=array_id, array_task_id=index)
    elif "_" in job_id:  # squeue cut a task list short: it names no task it holds
        logger.warning("skipping a line for array tasks Slurm listed as %r", job_id[:200])
        return
    # A requeued job has several records with the same id; the last is current.
    own[job.job_id] = job


def parse_sacct(text: str) -> dict[str, SlurmJob]:
    """Parse ``sacct -X -n -P --delimiter=SEP -o SACCT_FIELDS`` output: plain jobs
    under their JobIDRaw, array tasks under their task id, pending ones included.

    A task's own line wins over a range that still lists it: accounting updates an
    array's range line late, so 22.05 and 24.11 both print ``123_[1,3,5-7%1]`` next to
    the record of task 1 that has started, and keep a task cancelled while pending in
    the range for a while (then drop it: such a task never gets a record)."""
    own: dict[str, SlurmJob] = {}
    collapsed: dict[str, SlurmJob] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        values = line.split(SEP)
        if len(values) != len(SACCT_FIELDS):
            logger.warning("skipping sacct line with %d fields: %r", len(values), line[:200])
            continue
        row = dict(zip(SACCT_FIELDS, values, strict=True))
        tres = parse_tres(row["AllocTRES"])
        code, sig = parse_exit_code(row["ExitCode"])
        job = SlurmJob(
            job_id=row["JobIDRaw"], name=row["JobName"], state=row["State"],
            exit_code=code, signal=sig,
            elapsed_seconds=int(row["ElapsedRaw"] or 0),
            alloc_cpus=tres_cpus(tres), alloc_gpus=tres_gpus(tres),
            cpu_time_raw=int(row["CPUTimeRAW"] or 0),
            submit_time=parse_time(row["Submit"]), start_time=parse_time(row["Start"]),
            end_time=parse_time(row["End"]), reason=row["Reason"], source="sacct", native=row,
        )
        _by_task(job, row["JobID"], own, collapsed)
    return {**collapsed, **own}


def parse_squeue(text: str) -> dict[str, SlurmJob]:
    """Parse ``squeue -h -r -o SQUEUE_FORMAT`` output, keyed like ``parse_sacct``."""
    own: dict[str, SlurmJob] = {}
    collapsed: dict[str, SlurmJob] = {}
    keys = list(SQUEUE_FORMAT)
    for line in text.splitlines():
        values = line.split(SEP)
        if len(values) != len(keys):
            continue
        row = dict(zip(keys, values, strict=True))
        start = parse_time(row["Start"])
        job = SlurmJob(
            job_id=row["JobID"], name=row["JobName"], state=row["State"],
            submit_time=parse_time(row["Submit"]), start_time=start,
            reason=row["Reason"], source="squeue", native=row,
            # For a pending job squeue's start column is the controller's estimate.
            expected_start=start if normalise(row["State"]) == "PENDING" else None,
            queue_checked=True,
        )
        _by_task(job, row["JobID"], own, collapsed)
    return {**collapsed, **own}


def parse_names(text: str, names: list[str]) -> dict[str, list[str]]:
    """``JobID SEP JobName`` lines (sacct's, then squeue's ``%i SEP %j``) -> job name
    -> ids, oldest first. Every task of an array, and its range line, count once,
    as the array's own id."""
    found: dict[str, list[str]] = {}
    wanted = set(names)
    for line in text.splitlines():
        job_id, _, name = line.partition(SEP)
        job_id = base_id(job_id)
        if job_id and name in wanted and job_id not in found.setdefault(name, []):
            found[name].append(job_id)
    return {name: sorted(ids, key=lambda i: (len(i), i)) for name, ids in found.items() if ids}


_SIZE = re.compile(r"^([\d.]+)([KMGTP]?)[nc]?$")
_TO_MB = {"": 1 / 2**20, "K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2, "P": 1024.0**3}


def parse_size_mb(text: str, bare_unit: str = "") -> float | None:
    """``2728K``, ``1.5G``, ``10M`` (``10Mn``/``10Mc`` from older Slurm) as megabytes;
    a bare number is in ``bare_unit`` (bytes unless told)."""
    found = _SIZE.match(text.strip())
    if not found:
        return None
    return float(found.group(1)) * _TO_MB[found.group(2) or bare_unit]


def parse_duration(text: str) -> float | None:
    """sacct's ``[D-][HH:]MM:SS[.mmm]`` as seconds."""
    text = text.strip()
    if not text:
        return None
    days, _, rest = text.rpartition("-")
    try:
        parts = [float(p) for p in rest.split(":")]
        seconds = sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
        return seconds + (int(days) * 86400 if days else 0)
    except ValueError:
        return None


USAGE_FIELDS = ("JobID", "TotalCPU", "MaxRSS", "ReqMem")


def parse_job_usage(text: str) -> dict[str, JobUsage]:
    """sacct lines with USAGE_FIELDS, steps included: per job (``123``, ``123_4``), the
    allocation's CPU time and requested memory, and its steps' largest peak memory."""
    alloc: dict[str, tuple[float | None, float | None]] = {}
    rss: dict[str, float] = {}
    for line in text.splitlines():
        cols = line.split(SEP)
        if len(cols) < len(USAGE_FIELDS) or "[" in cols[0]:
            continue
        job_id, _, step = cols[0].partition(".")
        if step:
            peak = parse_size_mb(cols[2])
            if peak is not None:
                rss[job_id] = max(rss.get(job_id, 0.0), peak)
            else:
                rss.setdefault(job_id, 0.0)
        else:
            alloc[job_id] = (parse_duration(cols[1]), parse_size_mb(cols[3], bare_unit="M"))
    return {job_id: JobUsage(job_id, cpu, rss.get(job_id), mem, steps_seen=job_id in rss)
            for job_id, (cpu, mem) in alloc.items()}


_ASSOC_FIELD = re.compile(r"(?:^| )(Account|UserName|GrpTRESMins|GrpTRESRunMins)=(\S*)")
_TRES_LIMIT = re.compile(r"([\w/:.-]+)=(N|\d+)\((\d+)\)")


def parse_assoc_mgr(text: str) -> dict[str, AccountUsage]:
    """``scontrol -o show assoc_mgr flags=assoc`` lines: each account's own association
    (the one with no user) as limits and usage in minutes. ``GrpTRESMins=cpu=60(12)``
    is a limit of 60 (``N``: none) with 12 used; ``GrpTRESRunMins`` the minutes running
    jobs may still use."""
    found: dict[str, AccountUsage] = {}
    for line in text.splitlines():
        fields = dict(_ASSOC_FIELD.findall(line))
        if "Account" not in fields or fields.get("UserName", "") != "":
            continue
        mins = {t: (None if lim == "N" else int(lim), int(used))
                for t, lim, used in _TRES_LIMIT.findall(fields.get("GrpTRESMins", ""))}
        running = {t: int(used) for t, _, used in _TRES_LIMIT.findall(fields.get("GrpTRESRunMins", ""))}
        cpu, gpu = mins.get("cpu", (None, 0)), mins.get("gres/gpu", (None, 0))
        found[fields["Account"]] = AccountUsage(
            account=fields["Account"], cpu_minutes_limit=cpu[0], gpu_minutes_limit=gpu[0],
            cpu_minutes_used=cpu[1], gpu_minutes_used=gpu[1],
            cpu_minutes_running=running.get("cpu", 0), gpu_minutes_running=running.get("gres/gpu", 0))
    return found


class CliSlurm:
    """SlurmClient over sbatch, sacct, squeue, scancel, sinfo and sacctmgr."""

    def __init__(self, bin_dir: str = "", timeout: float = 30.0, helpers: WarmHelpers | None = None):
        self.bin_dir = bin_dir
        self.timeout = timeout
        # With submit_via = "helper": sbatch and scancel as a user go through a warm
        # helper started once through sudo, instead of one sudo per call.
        self.helpers = helpers
        self.calls = 0  # counted so tests and benchmarks can check calls per tick

    def _cmd(self, name: str) -> str:
        return os.path.join(self.bin_dir, name) if self.bin_dir else name

    def _run(self, args: list[str], stdin: str | None = None, what: str = "",
             user: str | None = None, env: dict[str, str] = BASE_ENV) -> str:
        return self._run_tool(args, stdin, what, user, env).stdout

    def _run_tool(self, args: list[str], stdin: str | None = None, what: str = "",
                  user: str | None = None, env: dict[str, str] = BASE_ENV):
        """The tool's answer (returncode, stdout, stderr) once it succeeded; Slurm's
        refusals and outages as exceptions."""
        what = what or args[0]
        self.calls += 1
        started = time.monotonic()
        if user and self.helpers:
            try:
                proc = self.helpers.run(user, os.path.basename(args[0]), args[1:], stdin, self.timeout)
            except HelperRefused as e:
                raise SlurmError(f"{what}: the gateway may not act as {user!r}: {e} "
                                 f"(see etc/sudoers.d/slurm-gateway)") from e
            except SlurmNoAnswer as e:
                raise SlurmNoAnswer(f"{what}: {e.message}") from e
        else:
            proc = self._spawn(self._as_user(user, args), stdin, what, env)
        logger.debug("%s took %.3fs rc=%s", what, time.monotonic() - started, proc.returncode)
        err = proc.stderr.strip()
        if UNAVAILABLE.search(err):
            raise SlurmUnavailable(f"{what}: Slurm is unavailable: {err.splitlines()[-1]}")
        if proc.returncode != 0 and user and err.startswith("sudo:"):
            raise SlurmError(f"{what}: the gateway may not act as {user!r}: {err.splitlines()[0]} "
                             f"(see etc/sudoers.d/slurm-gateway)")
        if proc.returncode != 0:
            raise SlurmError(f"{what} failed: {err or proc.stdout.strip() or 'exit ' + str(proc.returncode)}")
        return proc

    def _spawn(self, args: list[str], stdin: str | None, what: str,
               env: dict[str, str]) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(args, input=stdin, capture_output=True, text=True,
                                  timeout=self.timeout, cwd="/", env=env)
        except FileNotFoundError as e:
            raise SlurmUnavailable(f"{what}: command not found ({e.filename}); is Slurm installed?") from e
        except subprocess.TimeoutExpired as e:
            raise SlurmNoAnswer(f"{what}: no answer from Slurm within {self.timeout:.0f}s") from e

    def _as_user(self, user: str | None, args: list[str]) -> list[str]:
        """The command that runs ``args`` as ``user``: through sudo, whose rule allows the
        gateway's user sbatch and scancel only (and logs every use)."""
        return ["sudo", "-n", "-u", user, "--", *args] if user else args

    def submit(self, request: SubmitRequest) -> str:
        args = [self._cmd("sbatch"), "--parsable", *request.options]
        if request.workdir:
            args.append(f"--chdir={request.workdir}")
        out = self._run(args, stdin=request.script, what="sbatch", user=request.user)
        return parse_job_id(out)

    def test_only(self, request: SubmitRequest) -> datetime | None:
        """When Slurm expects the job to start if it were submitted now (``sbatch
        --test-only``: nothing is queued), as naive UTC; None if it gives no time."""
        args = [self._cmd("sbatch"), "--test-only", *request.options]
        if request.workdir:
            args.append(f"--chdir={request.workdir}")
        proc = self._run_tool(args, stdin=request.script, what="sbatch --test-only", user=request.user)
        return parse_test_only(proc.stderr + proc.stdout)

    def accounting(self, job_ids: list[str]) -> dict[str, SlurmJob]:
        """Accounting records for plain job ids and array task ids, in one sacct call.
        An array is asked for as a whole, so the answer holds every task of it."""
        if not job_ids:
            return {}
        out = self._run([
            self._cmd("sacct"), "-X", "-n", "-P", f"--delimiter={SEP}",
            "-o", ",".join(SACCT_FIELDS), "-j", ",".join(base_ids(job_ids)),
        ], what="sacct", env=QUERY_ENV)
        return parse_sacct(out)

    def find_by_names(self, names: list[str], since: datetime) -> dict[str, list[str]]:
        """Job name -> Slurm job ids (oldest first), for jobs submitted since ``since``
        (naive UTC). An array is found once, by its own id (``"123"``), not per task."""
        if not names:
            return {}
        start = since.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%dT%H:%M:%S")
        out = self._run([self._cmd("sacct"), "-X", "-n", "-P", f"--delimiter={SEP}", "-a",
                         "-o", "JobID,JobName", "-S", start, "--name", ",".join(names)],
                        what="sacct")
        # The controller too: a job submitted moments ago may not be in accounting yet.
        out += self._run([self._cmd("squeue"), "-h", "-a", "-n", ",".join(names), "-o", f"%i{SEP}%j"],
                         what="squeue")
        return parse_names(out, names)

    def queue(self, job_ids: list[str]) -> dict[str, SlurmJob]:
        """The controller's view of plain jobs and array tasks, in one squeue call;
        ``-r`` puts each pending task on its own line."""
        if not job_ids:
            return {}
        fmt = SEP.join(SQUEUE_FORMAT.values())
        try:
            out = self._run([self._cmd("squeue"), "-h", "-r", "-j", ",".join(base_ids(job_ids)),
                             "-o", fmt], what="squeue", env=QUERY_ENV)
        except SlurmError as e:
            if isinstance(e, SlurmUnavailable) or not INVALID_JOB.search(e.message):
                raise
            return {}
        return parse_squeue(out)

    def cancel(self, job_id: str, user: str | None = None) -> None:
        try:
            self._run([self._cmd("scancel"), job_id], what="scancel", user=user)
        except SlurmError as e:
            if isinstance(e, SlurmUnavailable) or "already completing or completed" not in e.message:
                raise

    def partitions(self) -> dict[str, dict[str, str]]:
        out = self._run([self._cmd("sinfo"), "-h", "-o", f"%R{SEP}%G{SEP}%a"], what="sinfo")
        parts: dict[str, dict[str, str]] = {}
        for line in out.splitlines():
            name, gres, avail = (line.split(SEP) + ["", ""])[:3]
            entry = parts.setdefault(name, {"gres": "", "avail": avail})
            entry["gres"] = ",".join(filter(None, [entry["gres"], gres if gres != "(null)" else ""]))
        return parts

    def accounts(self) -> set[str]:
        out = self._run([self._cmd("sacctmgr"), "-n", "-P", "show", "account", "format=Account"],
                        what="sacctmgr")
        return {line.strip() for line in out.splitlines() if line.strip()}

    # Associations (user, account): the gateway's service user is a Slurm operator
    # (AdminLevel=Operator), so it can keep them equal to licence membership.
    def associations(self) -> list[tuple[str, str]]:
        """Every association as (user, account); an account's own has user ""."""
        pairs = []
        for line in self._sacctmgr("show", "assoc", "format=User,Account").splitlines():
            user, _, acct = line.partition("|")
            pairs.append((user, acct.rstrip("|")))
        return pairs

    def default_accounts(self) -> dict[str, str]:
        out = self._sacctmgr("show", "user", "format=User,DefaultAccount")
        return dict(line.split("|")[:2] for line in out.splitlines() if "|" in line)

    def add_association(self, user: str, accounts: list[str]) -> None:
        self._sacctmgr("add", "user", f"name={user}", f"account={','.join(accounts)}", change=True)

    def remove_association(self, user: str, accounts: list[str] | None, new_default: str = "") -> None:
        """Take ``accounts`` from ``user`` (None: every association, the user goes).
        Slurm refuses to take a user's default account while others remain, so
        ``new_default`` is set first when given."""
        if accounts is None:
            self._sacctmgr("delete", "user", f"name={user}", change=True)
            return
        if new_default:
            self._sacctmgr("modify", "user", f"name={user}", "set", f"DefaultAccount={new_default}",
                           change=True)
        self._sacctmgr("delete", "user", f"name={user}", f"account={','.join(accounts)}", change=True)

    # Budgets: a licence's limits are its account's GrpTRESMins, which the controller
    # enforces (with priority/multifactor, AccountingStorageEnforce=limits,safe).
    def account_usage(self, accounts: list[str]) -> dict[str, AccountUsage]:
        """Limits and usage of ``accounts`` as the controller holds them, in one call."""
        if not accounts:
            return {}
        out = self._run([self._cmd("scontrol"), "-o", "show", "assoc_mgr", "flags=assoc",
                         f"accounts={','.join(accounts)}"], what="scontrol")
        return parse_assoc_mgr(out)

    def job_usage(self, job_ids: list[str]) -> dict[str, JobUsage]:
        """What ended jobs used (CPU time, peak memory), their steps read too, in one call."""
        if not job_ids:
            return {}
        out = self._run([self._cmd("sacct"), "-n", "-P", f"--delimiter={SEP}", "-o", ",".join(USAGE_FIELDS),
                         "-j", ",".join(base_ids(job_ids))], what="sacct", env=QUERY_ENV)
        wanted = set(job_ids)
        return {k: v for k, v in parse_job_usage(out).items() if k in wanted}

    def set_account_limits(self, account: str, cpu_minutes: int | None, gpu_minutes: int | None) -> None:
        """The account's GrpTRESMins for cpu and gres/gpu (None: no limit, -1 to Slurm)."""
        value = ",".join(f"{tres}={-1 if m is None else int(m)}"
                         for tres, m in (("cpu", cpu_minutes), ("gres/gpu", gpu_minutes)))
        self._sacctmgr("modify", "account", "where", f"name={account}", "set", f"GrpTRESMins={value}",
                       change=True)

    def reset_account_usage(self, account: str) -> None:
        """Start counting the account's usage again (a new budget period)."""
        self._sacctmgr("modify", "account", "where", f"name={account}", "set", "RawUsage=0",
                       change=True)

    def _sacctmgr(self, *args: str, change: bool = False) -> str:
        # -i: no "commit changes?" prompt; -n -P: no header, '|'-separated
        flags = ["-i"] if change else ["-n", "-P"]
        return self._run([self._cmd("sacctmgr"), *flags, *args], what="sacctmgr")
