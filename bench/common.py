"""Shared set-up for the benchmarks: a throw-away gateway on the dev cluster.

It uses etc/dev-gateway.toml (the dev cluster's machine types and licences) with
state redirected into a temporary folder, so a benchmark never touches `scripts/up`'s
gateway.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import SERVICE_USER, hand_to_service  # noqa: E402 - needs ROOT on the path


@contextmanager
def bench_gateway():
    base = Path("/var/tmp/gateway-bench") / uuid.uuid4().hex[:8]
    for sub in ("data", "jobs", "store"):
        (base / sub).mkdir(parents=True)
    for p in (base.parent, base, *(base / s for s in ("data", "jobs", "store"))):
        os.chmod(p, 0o755)
    os.environ.update({
        "GATEWAY_CONFIG": str(ROOT / "etc" / "dev-gateway.toml"),
        "GATEWAY_DATA_ROOT": str(base / "data"), "GATEWAY_JOBS_ROOT": str(base / "jobs"),
        "GATEWAY_STORE_ROOT": str(base / "store"),
        "GATEWAY_DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{base}/gateway.db"),
        "GATEWAY_SECRET_KEY": "bench-secret-not-for-production",
    })
    from gateway import config
    from gateway.context import Context
    from gateway.db import bind
    from gateway.migrate import upgrade

    cfg = config.load()
    bind(cfg.database_url)
    upgrade()
    hand_to_service(base)
    try:
        yield Context.from_config(cfg), base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def bench_world(ctx, script: str, inputs: list[dict]):
    """An admin with an API token, environment "base", project p / experiment e, and a
    template "noop" running ``script`` with ``inputs``: (token, template)."""
    from gateway import data, environments, job_templates
    from gateway.users import add_user, create_token

    user = add_user("bench", is_admin=True)
    token = create_token(user)
    env = environments.create_environment(ctx, user, {"name": "base"})
    environments.add_version(ctx, user, env, {"version": "1", "setup": ""})
    tpl = job_templates.create_template(ctx, user, {
        "name": "noop", "language": "bash", "environment": "base", "script": script, "inputs": inputs})
    project = data.create_project(ctx, user, {"name": "p"})
    data.create_experiment(ctx, user, project, {"name": "e"})
    return token, tpl


@contextmanager
def served(base: Path, workers: int = 1, callbacks: bool = False):
    """`gateway serve` (gunicorn, one worker unless told, no poller) on a free loopback
    port, as the service user. Jobs call back only when asked: a benchmark of submits
    should not also serve the calls of the jobs it started."""
    from gateway.wsgi_server import serve_in_background

    hand_to_service(base)
    env = None if callbacks else {**os.environ, "GATEWAY_CALLBACK_URL": ""}
    with serve_in_background(env=env, log=open(base / "serve.log", "w"), run_as=SERVICE_USER,
                             workers=workers) as url:
        yield url


def summary(samples: list[float]) -> str:
    s = sorted(samples)
    p90 = s[int(0.9 * (len(s) - 1))]
    return f"median {statistics.median(s) * 1000:7.1f} ms  p90 {p90 * 1000:7.1f} ms  (n={len(s)})"


def scancel(ids: list[str]) -> None:
    for i in range(0, len(ids), 500):
        subprocess.run(["scancel", *ids[i:i + 500]], capture_output=True)
