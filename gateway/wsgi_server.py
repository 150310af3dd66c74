"""gunicorn, started from `gateway serve`; each worker may run the poller (lease-guarded)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger


class RedactingLogger(Logger):
    """gunicorn's logger, with share-link tokens taken out of the access log."""

    def atoms(self, resp, req, environ, request_time):
        from .share_links import redact

        atoms = super().atoms(resp, req, environ, request_time)
        return {k: redact(v) if isinstance(v, str) else v for k, v in atoms.items()}


class GatewayServer(BaseApplication):
    def __init__(self, options: dict, config_path: str | None, poller: bool):
        self.options = options
        self.config_path = config_path
        self.poller = poller
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from . import create_app
        from .poller import start_scheduler

        app = create_app(self.config_path)
        if self.poller:
            start_scheduler(app.extensions["gateway"])
        return app


def run(bind: str, workers: int, poller: bool, config_path: str | None) -> None:
    # gthread: keep-alive for API clients, and a worker waiting on sbatch does not block
    # its other requests.
    GatewayServer({"bind": bind, "workers": workers, "worker_class": "gthread", "threads": 8,
                   "keepalive": 15, "accesslog": "-", "timeout": 120,
                   "logger_class": RedactingLogger},
                  config_path, poller).run()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def as_user(user: str, args: list[str]) -> list[str]:
    """``args`` run as ``user`` by a root caller (tests, benchmarks, scripts/up): the
    gateway itself never runs as root."""
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *args]


@contextmanager
def serve_in_background(env: dict | None = None, log=subprocess.DEVNULL, timeout: float = 20,
                        poller: bool = False, run_as: str | None = None, workers: int = 1):
    """`gateway serve` (one worker unless told) on a free loopback port; yields its URL.

    For the tests and benchmarks, which need a real HTTP server next to them; a caller
    running as root names the service user to serve as (``run_as``).
    """
    port = free_port()
    # Jobs it submits call back to it (the dev cluster's node is this host), unless the
    # caller says where, or "" for not at all.
    env = dict(os.environ if env is None else env)
    env.setdefault("GATEWAY_CALLBACK_URL", f"http://127.0.0.1:{port}")
    args = [sys.executable, "-m", "gateway.cli", "serve", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--poller" if poller else "--no-poller"]
    if run_as:
        args = as_user(run_as, args)
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"gateway serve exited with status {proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gateway serve did not listen within {timeout:.0f}s") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
