"""Warm submit helpers: one sudo per person, then sbatch and scancel through a pipe.

With ``submit_via = "helper"`` the gateway starts ``submit-helper`` (submit_helper.py)
through sudo as the person it submits for, the first time it needs to, and keeps it
for later submits: sudo costs more than sbatch itself and serialises under load. Each
helper runs one request at a time; a busy one makes the pool start another, up to
MAX_PER_USER per process. Helpers idle over IDLE_S are closed on the next use.

What a failure means for a submit, so the gateway never loses or doubles a job:
- the helper was gone before it said "taken": the request never ran; it is sent
  again through a fresh helper;
- it went away, or said nothing in time, after "taken": sbatch may have run, which
  is ``SlurmNoAnswer``, the same as an sbatch that did not answer (the poller finds
  the job by its name or gives up on it);
- sudo refused to start it: ``HelperRefused`` with sudo's words.
"""
from __future__ import annotations

import json
import os
import select
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field

from ..errors import SlurmError, SlurmNoAnswer

MAX_PER_USER = 8
IDLE_S = 60.0
START_TIMEOUT_S = 10.0


def install_problems(helper_path: str) -> list[str]:
    """What is wrong with the installed helper, for `gateway check`. sudo runs whatever
    file is at the path it allows: one the gateway's user (or anyone but root) could
    write, or a folder above it they could write, would let them run anything as people."""
    problems = []
    path = os.path.abspath(helper_path)
    try:
        st = os.stat(path)
    except OSError as e:
        return [f"slurm.submit_helper: {path}: {e.strerror} (scripts/install puts it there)"]
    if not os.access(path, os.X_OK) or not stat.S_ISREG(st.st_mode):
        problems.append(f"slurm.submit_helper: {path} is not an executable file")
    here = path
    while True:
        st = os.stat(here)
        if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            problems.append(f"slurm.submit_helper: {here} must be root's and writable by root alone "
                            f"(owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o})")
        if here == "/":
            return problems
        here = os.path.dirname(here)


class HelperRefused(Exception):
    """sudo would not start the helper as that user: its stderr, as sudo wrote it."""


@dataclass
class ToolResult:
    returncode: int
    stdout: str
    stderr: str


class _Gone(Exception):
    """The helper ended before it took the request."""


@dataclass
class _Helper:
    proc: subprocess.Popen
    last_used: float = field(default_factory=time.monotonic)
    _buf: bytes = b""

    def read_line(self, deadline: float) -> dict | None:
        """The helper's next answer, or None at end of output; TimeoutError past deadline."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            # select, not a selectors object: making an epoll costs more than the wait.
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def close(self) -> None:
        """Close its input, which ends it; wait only briefly (it may be in sbatch)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(0.05)
        except subprocess.TimeoutExpired:
            threading.Thread(target=self.proc.wait, daemon=True).start()  # reap it later
        for pipe in (self.proc.stdout, self.proc.stderr):
            pipe.close()


class WarmHelpers:
    """The helpers of one process, per user; thread-safe (gthread workers)."""

    def __init__(self, bin_dir: str, helper_path: str,
                 launcher: tuple[str, ...] | None = None):
        self.bin_dir = bin_dir
        self.helper_path = helper_path
        # How a helper becomes the user; tests run it as themselves with launcher=().
        self.launcher = launcher
        self._idle: dict[str, list[_Helper]] = {}
        self._count: dict[str, int] = {}
        self._lock = threading.Condition()
        self._pid = os.getpid()
        self.started = 0  # helpers started, for tests and benchmarks

    def run(self, user: str, tool: str, args: list[str], stdin: str | None,
            timeout: float) -> ToolResult:
        deadline = time.monotonic() + timeout
        request = (json.dumps({"tool": tool, "args": args, "stdin": stdin}) + "\n").encode()
        while True:
            helper = self._take(user, deadline)
            try:
                result = self._ask(helper, request, deadline)
            except _Gone:
                self._drop(user, helper)
                continue  # it ran nothing: safe to send again
            except BaseException:
                self._drop(user, helper)
                raise
            self._give_back(user, helper)
            return result

    def _ask(self, helper: _Helper, request: bytes, deadline: float) -> ToolResult:
        try:
            helper.proc.stdin.write(request)
            helper.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise _Gone from e
        try:
            taken = helper.read_line(deadline)
            if taken is None:
                raise _Gone
            if "refused" in taken:
                raise SlurmError(f"the submit helper refused the request: {taken['refused']}")
            answer = helper.read_line(deadline)
        except TimeoutError as e:
            raise SlurmNoAnswer("no answer from Slurm in time") from e
        if answer is None:
            raise SlurmNoAnswer("the submit helper ended while Slurm was being asked")
        return ToolResult(answer["rc"], answer["stdout"], answer["stderr"])

    def _take(self, user: str, deadline: float) -> _Helper:
        with self._lock:
            if os.getpid() != self._pid:  # a forked child: its parent's helpers are not its own
                self._idle, self._count, self._pid = {}, {}, os.getpid()
            self._close_idle(time.monotonic())
            while True:
                idle = self._idle.get(user)
                if idle:
                    return idle.pop()
                if self._count.get(user, 0) < MAX_PER_USER:
                    self._count[user] = self._count.get(user, 0) + 1
                    break
                if not self._lock.wait(max(0.0, deadline - time.monotonic())):
                    raise SlurmNoAnswer("every submit helper stayed busy past the timeout")
        try:
            return self._start(user, deadline)
        except BaseException:
            with self._lock:
                self._count[user] -= 1
                self._lock.notify()
            raise

    def _start(self, user: str, deadline: float) -> _Helper:
        launcher = self.launcher if self.launcher is not None else ("sudo", "-n", "-u", user, "--")
        argv = [*launcher, self.helper_path, *([self.bin_dir] if self.bin_dir else [])]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd="/", close_fds=True)
        except FileNotFoundError as e:
            raise HelperRefused(f"{e.filename}: not found") from e
        helper = _Helper(proc)
        try:
            ready = helper.read_line(min(deadline, time.monotonic() + START_TIMEOUT_S))
        except TimeoutError:
            ready = None
        if not ready or "ready" not in ready:
            proc.kill()
            err = proc.communicate()[1].decode(errors="replace").strip()
            raise HelperRefused(err or f"{self.helper_path} did not start (exit {proc.returncode})")
        self.started += 1
        return helper

    def _give_back(self, user: str, helper: _Helper) -> None:
        helper.last_used = time.monotonic()
        with self._lock:
            self._idle.setdefault(user, []).append(helper)
            self._lock.notify()

    def _drop(self, user: str, helper: _Helper) -> None:
        helper.close()
        with self._lock:
            self._count[user] -= 1
            self._lock.notify()

    def _close_idle(self, now: float) -> None:
        """Under the lock: close helpers nobody used for IDLE_S."""
        for user, idle in self._idle.items():
            for helper in [h for h in idle if now - h.last_used > IDLE_S or h.proc.poll() is not None]:
                idle.remove(helper)
                helper.close()
                self._count[user] -= 1

    def close(self) -> None:
        with self._lock:
            for user, idle in self._idle.items():
                for helper in idle:
                    helper.close()
                    self._count[user] -= 1
            self._idle.clear()
