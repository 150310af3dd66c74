"""Job lists' server time with 100,000 jobs in the database (SQLite and PostgreSQL).

Measures, in-process through the WSGI app so only server time counts, as an admin and
as a project Member (whose visibility filter applies), p50 and p95 of 40 requests:
- the portal's /jobs page over every job one may see: first page, a filtered page, a
  tag, a deep page;
- the API's GET /api/v1/jobs: first page, filtered (status and template, tag, sweep),
  the last page by ``page``, the same depth by the ``before`` cursor, and the largest
  page (per_page=500);
- GET /api/v1/sweeps/<id> (its first and last page of tasks, 500 tasks, and every
  task at once) and its results.csv, for sweeps of 1,000 and 10,000 tasks (with OUT_ values) among
  the jobs.
Target: p95 <= 100 ms.

Usage: .venv/bin/python bench/jobs_page.py [N_JOBS] [sqlite|postgres|both] [portal|api]
(PostgreSQL: `scripts/dev-postgres start`; the bench uses a database of its own,
gateway_bench, so it never clears the test suite's.)
"""
from __future__ import annotations

import statistics
import sys
import time
from datetime import timedelta

from common import bench_gateway

PG_SERVER = "postgresql://gateway@127.0.0.1:5433"
PG_URL = f"{PG_SERVER}/gateway_bench"
SWEEP_SIZES = (1_000, 10_000)


def seed(ctx, n: int):
    """``n`` jobs of 5 templates over 10 projects, the admin's; a Member of project p0;
    sweeps of SWEEP_SIZES tasks in p0 among them: (admin, member, {size: sweep id})."""
    from gateway import data, environments, job_templates
    from gateway.access import Role
    from gateway.db import database, utcnow
    from gateway.models import Grant, Job, Sweep, Tag
    from gateway.users import add_user

    admin = add_user("admin", is_admin=True)
    member = add_user("member")
    env = environments.create_environment(ctx, admin, {"name": "env"})
    environments.add_version(ctx, admin, env, {"version": "1", "setup": ""})
    tpls = [job_templates.create_template(ctx, admin, {
        "name": f"t{i}", "language": "bash", "environment": "env", "script": "true",
        "inputs": [{"name": "DC_N", "type": "integer", "default": 1},
                   {"name": "DC_DATA", "type": "string", "default": "raw"}],
        "outputs": [{"name": "OUT_LOSS"}, {"name": "OUT_ACCURACY"}]}) for i in range(5)]
    projects = [data.create_project(ctx, admin, {"name": f"p{i}"}) for i in range(10)]
    exps = [data.create_experiment(ctx, admin, p, {"name": "e"}) for p in projects]
    Grant.create(kind="project", object_key=str(projects[0].id), user=member, role=Role.MEMBER.name.lower())
    statuses = ["Completed"] * 6 + ["Failed", "Running", "Pending", "Completed"]
    now = utcnow()
    # The sweeps' tasks sit among the other jobs, each sweep's tasks one after another
    # (as a sweep makes them).
    sweep_at = {n * (k + 1) // (len(SWEEP_SIZES) + 1): size for k, size in enumerate(SWEEP_SIZES)}
    sweep_ids: dict[int, int] = {}
    rows = []
    i = 0
    while len(rows) < n:
        if i in sweep_at:
            size = min(sweep_at[i], n - len(rows))
            s = Sweep.create(template=tpls[0], template_version=tpls[0].latest_version, user=admin,
                             project=projects[0], experiment=exps[0], license="demo-lab", throttle=50,
                             swept=["DC_N", "DC_DATA"], array_job_ids=[str(2 * 10**7 + i)])
            sweep_ids[sweep_at[i]] = s.id
            for task in range(size):
                st = statuses[task % 10]
                outputs = {"OUT_LOSS": f"{1 / (task + 1):.6f}", "OUT_ACCURACY": f"{task % 97}.5"}
                rows.append(_job(tpls[0], admin, projects[0], exps[0], str(2 * 10**7 + i) + f"_{task}", st,
                                 now - timedelta(seconds=n - len(rows)), sweep=s.id, array_task=task,
                                 inputs={"DC_N": str(task // 100), "DC_DATA": f"raw/{task % 100}.h5"},
                                 outputs=outputs if st == "Completed" else {}))
        # Status varies apart from template and project, so filters combine.
        t, p, st = tpls[i % 5], i % 10, statuses[(i // 3) % 10]
        rows.append(_job(t, admin, projects[p], exps[p], str(10**7 + i), st,
                         now - timedelta(seconds=n - len(rows)),
                         inputs={"DC_N": str(i % 7), "DC_DATA": "raw"},
                         outputs={"OUT_LOSS": "0.5"} if st == "Completed" else {}))
        i += 1
    with database.atomic():
        for k in range(0, n, 2000):
            Job.insert_many(rows[k:k + 2000]).execute()
        tags = [{"job": j, "name": "ref", "created_by": admin.id} for j in range(1, n, 97)]
        Tag.insert_many(tags).execute()
    return admin, member, sweep_ids


def _job(tpl, user, project, exp, slurm_id, status, submitted_at, sweep=None, array_task=None,
         inputs=None, outputs=None) -> dict:
    return {"kind": "template", "name": tpl.name, "template": tpl.id, "template_version": tpl.latest_version,
            "user": user.id, "project": project.id, "experiment": exp.id, "license": "demo-lab",
            "slurm_account": "demo_lab", "machine_type": "cpu-small", "time_limit_minutes": 60,
            "slurm_job_id": slurm_id, "status": status, "finalized": status in ("Completed", "Failed"),
            "cpu_seconds": int(slurm_id.split("_")[-1]) % 500, "submitted_at": submitted_at,
            "sweep": sweep, "array_task": array_task, "inputs": inputs or {},
            "output_variables": outputs or {}}


def measure(client, path: str, n: int = 40, headers=None) -> tuple[float, float, int]:
    """(median, p95) in ms of ``n`` GETs of ``path``, and the response's size in bytes."""
    r = client.get(path, headers=headers)  # warm caches
    assert r.status_code == 200, (path, r.status_code, r.get_data(as_text=True)[:300])
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path, headers=headers)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, (path, r.status_code)
    s = sorted(times)
    return statistics.median(s) * 1000, s[int(0.95 * (len(s) - 1))] * 1000, len(r.get_data())


def line(backend: str, who: str, label: str, figures: tuple[float, float, int]) -> str:
    median, p95, size = figures
    flag = "" if p95 <= 100 else "  over 100 ms"
    return (f"[{backend}] {who:<6} {label:<28} median {median:6.1f} ms  p95 {p95:6.1f} ms"
            f"  ({size / 1024:,.0f} KiB){flag}")


def reset_postgres() -> None:
    import psycopg2

    conn = psycopg2.connect(f"{PG_SERVER}/gateway_test")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT 1 FROM pg_database WHERE datname = 'gateway_bench'")
    if cur.fetchone() is None:
        cur.execute("CREATE DATABASE gateway_bench")
    conn.close()
    conn = psycopg2.connect(PG_URL)
    conn.autocommit = True
    conn.cursor().execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    conn.close()


def run(backend: str, n: int, only: str = "") -> None:
    import os

    if backend == "postgres":
        reset_postgres()
        os.environ["BENCH_DATABASE_URL"] = PG_URL
    else:
        os.environ.pop("BENCH_DATABASE_URL", None)
    with bench_gateway() as (ctx, base):
        from gateway import create_app
        from gateway.auth.login import set_local_password
        from gateway.db import database
        from gateway.users import create_token

        t = time.perf_counter()
        admin, member, sweep_ids = seed(ctx, n)
        if backend == "postgres":
            database.execute_sql("ANALYZE")
        print(f"[{backend}] seeded {n} jobs (sweeps of {', '.join(map(str, sweep_ids))} tasks among them) "
              f"in {time.perf_counter() - t:.1f}s")
        app = create_app(ctx.config, context=ctx)
        app.config["WTF_CSRF_ENABLED"] = False
        for who in (admin, member):
            set_local_password(who, "bench-password")
            client = app.test_client()
            if only in ("", "portal"):
                client.post("/login", data={"username": who.username, "password": "bench-password"})
                # Every job they may see (the page's own default is their own jobs).
                for label, path in (("/jobs first page", "/jobs?scope=all"),
                                    ("/jobs filtered", "/jobs?scope=all&status=Failed&template=t0"),
                                    ("/jobs by tag", "/jobs?scope=all&tag=ref"),
                                    ("/jobs page 150", "/jobs?scope=all&page=150")):
                    print(line(backend, who.username, label, measure(client, path)))
            if only in ("", "api"):
                api_cases(backend, client, who, create_token(who), sweep_ids)


def api_cases(backend: str, client, who, token: str, sweep_ids: dict[int, int]) -> None:
    from gateway.sweeps import TASKS_PAGE

    headers = {"Authorization": f"Bearer {token}"}
    first = client.get("/api/v1/jobs", headers=headers).json
    last_page = max(1, -(-first["total"] // first["per_page"]))
    # The id a client following ``next_before`` from the first page would reach at the
    # last page: the cursor's deep page.
    deep_before = client.get(f"/api/v1/jobs?page={last_page - 1}", headers=headers).json["jobs"][-1]["id"]
    big = sweep_ids[max(sweep_ids)]
    cases = [("api jobs first page", "/api/v1/jobs"),
             ("api jobs status+template", "/api/v1/jobs?status=Failed&template=t0"),
             ("api jobs by tag", "/api/v1/jobs?tag=ref"),
             (f"api jobs sweep={max(sweep_ids)}", f"/api/v1/jobs?sweep={big}"),
             (f"api jobs page {last_page} (last)", f"/api/v1/jobs?page={last_page}"),
             ("api jobs before= (last)", f"/api/v1/jobs?before={deep_before}"),
             ("api jobs per_page=500", "/api/v1/jobs?per_page=500")]
    for size, sid in sorted(sweep_ids.items()):
        last = size - TASKS_PAGE
        cases += [(f"api sweep {size} (first {TASKS_PAGE})", f"/api/v1/sweeps/{sid}"),
                  (f"api sweep {size} (last {TASKS_PAGE})", f"/api/v1/sweeps/{sid}?offset={last}"),
                  (f"api sweep {size} (500 tasks)", f"/api/v1/sweeps/{sid}?limit=500"),
                  (f"api sweep {size} (all tasks)", f"/api/v1/sweeps/{sid}?limit={size}"),
                  (f"api sweep {size} results.csv", f"/api/v1/sweeps/{sid}/results.csv")]
    print(f"[{backend}] {who.username:<6} sees {first['total']} jobs")
    for label, path in cases:
        # The big responses take long enough that fewer rounds tell the same.
        rounds = 10 if "all tasks" in label or "csv" in label else 40
        print(line(backend, who.username, label, measure(client, path, rounds, headers)))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    which = sys.argv[2] if len(sys.argv) > 2 else "both"
    only = sys.argv[3] if len(sys.argv) > 3 else ""  # portal | api: one half only
    for backend in (["sqlite", "postgres"] if which == "both" else [which]):
        run(backend, n, only)
