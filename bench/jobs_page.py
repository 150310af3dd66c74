"""Jobs page server time with 100,000 jobs in the database (SQLite and PostgreSQL).

Measures the portal's /jobs page (first page, a filtered page, a deep page) as an
admin and as a project Member (whose visibility filter applies), in-process through
the WSGI app so only server time counts. Target: p95 <= 100 ms.

Usage: .venv/bin/python bench/jobs_page.py [N_JOBS] [sqlite|postgres|both]
"""
from __future__ import annotations

import statistics
import sys
import time
from datetime import timedelta

from common import bench_gateway

PG_URL = "postgresql://gateway@127.0.0.1:5433/gateway_test"


def seed(ctx, n: int):
    from gateway import data, environments, job_templates
    from gateway.access import Role
    from gateway.db import database, utcnow
    from gateway.models import Grant, Job, Tag
    from gateway.users import add_user

    admin = add_user("admin", is_admin=True)
    member = add_user("member")
    env = environments.create_environment(ctx, admin, {"name": "env"})
    environments.add_version(ctx, admin, env, {"version": "1", "setup": ""})
    tpls = [job_templates.create_template(ctx, admin, {"name": f"t{i}", "language": "bash",
                                                       "environment": "env", "script": "true"})
            for i in range(5)]
    projects = [data.create_project(ctx, admin, {"name": f"p{i}"}) for i in range(10)]
    exps = [data.create_experiment(ctx, admin, p, {"name": "e"}) for p in projects]
    Grant.create(kind="project", object_key=str(projects[0].id), user=member, role=Role.MEMBER.name.lower())
    statuses = ["Completed"] * 6 + ["Failed", "Running", "Pending", "Completed"]
    now = utcnow()
    rows = []
    for i in range(n):
        t = tpls[i % 5]
        p = i % 10
        rows.append({"kind": "template", "name": t.name, "template": t.id,
                     "template_version": t.latest_version, "user": admin.id, "project": projects[p].id,
                     "experiment": exps[p].id, "license": "demo-lab", "slurm_account": "demo_lab",
                     "machine_type": "cpu-small", "time_limit_minutes": 60, "slurm_job_id": str(10**7 + i),
                     "status": statuses[i % 10], "finalized": statuses[i % 10] in ("Completed", "Failed"),
                     "cpu_seconds": i % 500, "submitted_at": now - timedelta(seconds=n - i)})
    with database.atomic():
        for k in range(0, n, 2000):
            Job.insert_many(rows[k:k + 2000]).execute()
        tags = [{"job": j, "name": "ref", "created_by": admin.id} for j in range(1, n, 97)]
        Tag.insert_many(tags).execute()
    return admin, member


def measure(client, path: str, n: int = 40) -> str:
    client.get(path)  # warm caches
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, (path, r.status_code)
    s = sorted(times)
    return f"median {statistics.median(s) * 1000:6.1f} ms  p95 {s[int(0.95 * (len(s) - 1))] * 1000:6.1f} ms"


def run(backend: str, n: int) -> None:
    import os

    if backend == "postgres":
        import psycopg2
        conn = psycopg2.connect(PG_URL)
        conn.autocommit = True
        conn.cursor().execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
        conn.close()
        os.environ["BENCH_DATABASE_URL"] = PG_URL
    else:
        os.environ.pop("BENCH_DATABASE_URL", None)
    with bench_gateway() as (ctx, base):
        from gateway import create_app
        from gateway.auth.login import set_local_password

        t = time.perf_counter()
        admin, member = seed(ctx, n)
        print(f"[{backend}] seeded {n} jobs in {time.perf_counter() - t:.1f}s")
        app = create_app(ctx.config, context=ctx)
        app.config["WTF_CSRF_ENABLED"] = False
        for who in (admin, member):
            set_local_password(who, "bench-password")
            client = app.test_client()
            client.post("/login", data={"username": who.username, "password": "bench-password"})
            for label, path in (("first page", "/jobs"),
                                ("filtered  ", "/jobs?status=Failed&template=t3"),
                                ("by tag    ", "/jobs?tag=ref"),
                                ("page 150  ", "/jobs?page=150")):
                print(f"[{backend}] {who.username:<6} {label} {measure(client, path)}")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    which = sys.argv[2] if len(sys.argv) > 2 else "both"
    for backend in (["sqlite", "postgres"] if which == "both" else [which]):
        run(backend, n)
