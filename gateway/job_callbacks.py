"""Jobs that tell the gateway they started or ended, so it reads their accounting now.

A rendered job script calls ``POST <callback_url>/api/v1/jobs/<id>/callback`` when it
starts and when it ends (see ``sbatch_templates/job_callback.sh.j2``). The call only
moves that job's next accounting read forward: what it says is never believed. The
read is the poller's own (``poller.refresh_jobs``), so the job's status, reason and
charge still come from Slurm alone, and the poller's tick stays the source of truth
and the fallback for every callback that never comes (an unreachable gateway, a job
killed before its exit trap, a node without curl or bash's /dev/tcp).

The token is stateless: an HMAC of the job id under the gateway's secret key, so no
table holds it and a gateway restart changes nothing. A job can learn only its own.
Whoever holds one can make the gateway read that one job's accounting a few times a
minute (``RateLimit``), and all callbacks of a process share one background reader
(``Refresher``) that batches them into one ``sacct`` call, so many jobs calling at once
cost the gateway what one tick does.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable

from .config import Config
from .context import Context
from .db import database

logger = logging.getLogger(__name__)

HEADER = "X-Gateway-Job-Token"
EVENTS = ("start", "end")
_PURPOSE = b"gateway job callback\0"


def enabled(config: Config) -> bool:
    return bool(config.callback_url)


def token_for(config: Config, job_id: int | str) -> str:
    """The secret a job's script sends with its callbacks (64 hex digits).

    The purpose prefix keeps it apart from anything else the secret key signs."""
    message = _PURPOSE + str(int(job_id)).encode()
    return hmac.new(config.secret_key.encode(), message, hashlib.sha256).hexdigest()


def url_for(config: Config, job_id: int | str) -> str:
    """Where job ``job_id`` calls back ("" when callbacks are off)."""
    if not enabled(config):
        return ""
    return f"{config.callback_url}/api/v1/jobs/{job_id}/callback"


_TOKEN_LINE = re.compile(r"(?m)^gateway_callback_token=.*$")


def redact(script: str) -> str:
    """A rendered script as people are shown it: the job's token is the job's alone."""
    return _TOKEN_LINE.sub("gateway_callback_token='(hidden)'", script)


def token_matches(config: Config, job_id: int, given: str | None) -> bool:
    """Whether ``given`` is job ``job_id``'s token; constant time whatever it holds."""
    expected = token_for(config, job_id).encode()
    return hmac.compare_digest(expected, (given or "").strip().encode("utf-8", "surrogateescape"))


# --- how often a job may ask ------------------------------------------------------------

class RateLimit:
    """At most ``per_minute`` callbacks per job per minute, in this process.

    A job needs two (start, end); the rest is a job hammering the gateway, which is
    told 429 and read by the tick like any other. Counted only after the token
    checked out, so nobody else can use up a job's allowance."""

    def __init__(self, per_minute: int = 4, clock: Callable[[], float] = time.monotonic,
                 max_jobs: int = 100_000):
        self.per_minute = per_minute
        self.clock = clock
        self.max_jobs = max_jobs
        self._seen: dict[int, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_needed(self, job_id: int) -> float:
        """0 if job ``job_id`` may call now (and the call is counted), else the seconds
        until it may."""
        now = self.clock()
        with self._lock:
            if len(self._seen) >= self.max_jobs:
                self._forget_before(now - 60)
            times = self._seen.setdefault(job_id, deque())
            while times and times[0] <= now - 60:
                times.popleft()
            if len(times) >= self.per_minute:
                return times[0] + 60 - now
            times.append(now)
            return 0.0

    def _forget_before(self, cutoff: float) -> None:
        for job_id in [j for j, t in self._seen.items() if not t or t[-1] <= cutoff]:
            del self._seen[job_id]


# --- the reads they cause ---------------------------------------------------------------

# Seconds after a callback when the job's accounting is read (each delay counted from
# the end of the read before). A job's "end" comes from its exit trap, just before the
# script exits: accounting has the end 0.05-0.15 s later on the dev cluster, and a
# sacct there takes about 0.18 s, so the first read starts after 0.1 s and the next
# ones follow quickly, then back off until the job is final in accounting; after about
# half a minute the tick alone carries on. "start" comes from a running script: one read.
START_READS = (0.0,)
END_READS = (0.1, 0.15, 0.2, 0.25, 0.25, 0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
# Reads of this process are at least this far apart; whatever falls due in between is
# read in the same sacct call.
MIN_GAP_SECONDS = 0.1
# Jobs waiting for a read, at most (a flood beyond it is left to the tick).
MAX_WAITING = 10_000


class Refresher:
    """Reads the accounting of jobs that called back, in one background thread.

    Why a thread and not the request: the job waits on the answer (up to 2 s) and
    Slurm records its end only once its script has exited, which it does after the
    answer; a read inside the request would come too early and hold the job back.
    The thread batches every job due into one ``poller.refresh_jobs`` call (one
    sacct), whose writes are guarded as a tick's are, so it may run beside the tick
    of another process. ``background=False`` leaves the reads to ``run_due`` (tests).
    """

    def __init__(self, ctx: Context, background: bool = True, clock: Callable[[], float] = time.monotonic):
        self.ctx = ctx
        self.background = background
        self.clock = clock
        self._cond = threading.Condition()
        # job id -> (when its next read is due, the delays of the reads after it)
        self._due: dict[int, tuple[float, tuple[float, ...]]] = {}
        self._thread: threading.Thread | None = None

    def request(self, job_id: int, event: str) -> bool:
        """Schedule reads of job ``job_id`` for ``event``; False if too many wait already."""
        delays = END_READS if event == "end" else START_READS
        with self._cond:
            current = self._due.get(job_id)
            if current is not None and (event == "start" or len(current[1]) >= len(delays) - 1):
                return True  # already scheduled as soon or sooner, with as many reads
            if current is None and len(self._due) >= MAX_WAITING:
                return False
            self._due[job_id] = (self.clock() + delays[0], delays[1:])
            self._cond.notify()
        if self.background:
            self._start()
        return True

    def waiting(self) -> dict[int, float]:
        """Job id -> seconds until its next read (for tests and logs)."""
        now = self.clock()
        with self._cond:
            return {j: max(0.0, t - now) for j, (t, _) in self._due.items()}

    def run_due(self) -> list[int]:
        """Read accounting once for every job whose read is due; the jobs read."""
        from . import poller
        from .errors import SlurmUnavailable
        from .models import Job

        now = self.clock()
        with self._cond:
            picked = {j: entry for j, entry in self._due.items() if entry[0] <= now}
        if not picked:
            return []
        ids = sorted(picked)
        unfinished: set[int] = set(ids)
        try:
            poller.refresh_jobs(self.ctx, ids)
            unfinished = {j for (j,) in Job.select(Job.id).where(
                Job.id.in_(ids), Job.finalized == False).tuples()}  # noqa: E712
        except SlurmUnavailable as e:
            logger.warning("callback read of jobs %s skipped, nothing changed: %s", ids, e.message)
        except Exception:
            logger.exception("callback read of jobs %s failed", ids)
        finally:
            if not database.is_closed():
                database.close()
        after = self.clock()
        with self._cond:
            for j, entry in picked.items():
                if self._due.get(j) is not entry:
                    continue  # a new callback came meanwhile: its schedule stands
                rest = entry[1]
                if j in unfinished and rest:
                    self._due[j] = (after + rest[0], rest[1:])
                else:
                    del self._due[j]
        return ids

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._loop, name="job-callbacks", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    soonest = min((t for t, _ in self._due.values()), default=None)
                    wait = None if soonest is None else soonest - self.clock()
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
            try:
                self.run_due()
            except Exception:  # never let the thread die: the next callback would wait forever
                logger.exception("job callback reader")
            time.sleep(MIN_GAP_SECONDS)
