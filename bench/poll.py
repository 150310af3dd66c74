"""One poller tick over N unfinished (held) jobs vs one raw `sacct` for the same ids.

Prints the Slurm calls per tick (target <= 2 whatever N), and the median tick time
against the median raw sacct time (target ratio <= 1.5).

Usage: .venv/bin/python bench/poll.py [N]   (dev cluster running; default N=2000)
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from common import bench_gateway, scancel, summary


def submit_held(count: int) -> list[str]:
    def one(_):
        out = subprocess.run(["sbatch", "--parsable", "--hold", "-A", "demo_lab", "-J", "bench-held",
                              "-o", "/dev/null", "--wrap", "true"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip().split(";")[0]
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def main(n: int) -> None:
    from gateway.slurm.cli import SACCT_FIELDS, SEP

    t = time.perf_counter()
    ids = submit_held(n)
    print(f"submitted {n} held jobs in {time.perf_counter() - t:.1f}s")
    try:
        with bench_gateway() as (ctx, base):
            from gateway.db import database
            from gateway.models import Job, User
            from gateway.poller import tick

            user = User.create(username="bench", is_admin=True)
            with database.atomic():
                for chunk in range(0, n, 500):
                    Job.insert_many([{"kind": "sbatch", "name": "bench-held", "user": user.id,
                                      "license": "demo-lab", "slurm_account": "demo_lab",
                                      "time_limit_minutes": 10, "slurm_job_id": i}
                                     for i in ids[chunk:chunk + 500]]).execute()
            raw_cmd = ["sacct", "-X", "-n", "-P", f"--delimiter={SEP}", "-o", ",".join(SACCT_FIELDS),
                       "-j", ",".join(ids)]
            deadline = time.monotonic() + 120
            while len(subprocess.run(raw_cmd, capture_output=True, text=True).stdout.splitlines()) < n:
                if time.monotonic() > deadline:
                    raise SystemExit("accounting did not receive all held jobs in 120s")
                time.sleep(1)

            def raw_sacct() -> float:
                t = time.perf_counter()
                subprocess.run(raw_cmd, capture_output=True, text=True, check=True)
                return time.perf_counter() - t

            def one_tick():
                t = time.perf_counter()
                result = tick(ctx)
                return time.perf_counter() - t, result

            first_time, first = one_tick()
            raw, ticks, calls, writes = [], [], [], []
            for _ in range(7):
                raw.append(raw_sacct())
                elapsed, result = one_tick()
                ticks.append(elapsed)
                calls.append(result.slurm_calls)
                writes.append(result.updated)
            pending = Job.select().where(Job.status == "Pending").count()
    finally:
        scancel(ids)
    print(f"first tick (writes {first.updated} state changes): {first_time * 1000:.0f} ms, "
          f"{first.slurm_calls} Slurm call(s)")
    print(f"steady tick over {n} unfinished jobs: {summary(ticks)}; Slurm calls per tick: {max(calls)}, "
          f"rows written per steady tick: {max(writes)}")
    print(f"raw sacct for the same {n} ids:       {summary(raw)}")
    print(f"ratio tick / raw sacct (medians): {statistics.median(ticks) / statistics.median(raw):.2f}"
          f"   target <= 1.5; jobs shown Pending: {pending}/{n}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
