"""Sweep submit: N tasks through the API (one Slurm array) vs N raw `sbatch` calls of
the same task script; then the first poller tick after it vs one raw `sacct` of the
same array. Both sides measured in the same run.

Targets (issue 11): sweep submit <= 0.05 x the raw sbatch calls; tick <= 2 x raw sacct.
The sweep answers once Slurm holds its array; its tasks' folders are made just after
(a task that starts first waits for its script): the time until the last one is
ready is printed too.

Usage: .venv/bin/python bench/sweep.py [N]   (dev cluster running; default N=1000)
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

import requests
from common import bench_gateway, bench_world, scancel, served


def main(n: int) -> None:
    with bench_gateway() as (ctx, base):
        from gateway.poller import tick
        from gateway.slurm.cli import SACCT_FIELDS, SEP

        token, tpl = bench_world(ctx, "sleep 600\n", [{"name": "DC_I", "type": "integer", "default": 0}])
        body = {"project": "p", "experiment": "e", "machine_type": "cpu-small", "license": "demo-lab",
                "software_disk_gb": 1, "throttle": 1,
                "inputs": {"DC_I": {"range": {"start": 1, "stop": n}}}}
        raw_ids: list[str] = []
        with served(base) as url:
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {token}"
            # A running gateway is warm: one small sweep first (its code loaded, its
            # templates compiled, a database connection in the pool).
            warm = http.post(f"{url}/api/v1/templates/{tpl.id}/sweeps", timeout=60, json={
                **body, "inputs": {"DC_I": {"values": [1, 2]}}})
            warm.raise_for_status()
            arrays_warm = warm.json()["array_job_ids"]
            t = time.perf_counter()
            r = http.post(f"{url}/api/v1/templates/{tpl.id}/sweeps", json=body, timeout=600)
            sweep_s = time.perf_counter() - t
            r.raise_for_status()
            made = r.json()
            # The tasks' folders are made after the answer, in task order: the last one.
            last = base / "jobs" / str(made["jobs"][-1]["id"]) / "job.sbatch"
            while not last.exists() and time.perf_counter() - t < 600:
                time.sleep(0.01)
            ready_s = time.perf_counter() - t
        arrays = made["array_job_ids"]
        try:
            # The same task script, N times, held so that none of them runs.
            script = (base / "jobs" / str(made["jobs"][0]["id"]) / "job.sbatch").read_text()
            t = time.perf_counter()
            for _ in range(n):
                out = subprocess.run(["sbatch", "--parsable", "--hold", "-A", "demo_lab", "-o", "/dev/null"],
                                     input=script, text=True, capture_output=True, check=True)
                raw_ids.append(out.stdout.strip().split(";")[0])
            raw_s = time.perf_counter() - t

            ticks, raws = [], []
            for _ in range(5):
                t = time.perf_counter()
                result = tick(ctx)
                ticks.append(time.perf_counter() - t)
                t = time.perf_counter()
                subprocess.run(["sacct", "-X", "-n", "-P", f"--delimiter={SEP}", "-o", ",".join(SACCT_FIELDS),
                                "-j", ",".join(arrays)], capture_output=True, check=True,
                               env={"SLURM_BITSTR_LEN": "0", "PATH": "/usr/bin:/bin"})
                raws.append(time.perf_counter() - t)
        finally:
            scancel([*arrays_warm, *arrays, *raw_ids])
    print(f"sweep of {n} tasks through the API ({len(arrays)} array(s)): {sweep_s * 1000:8.1f} ms")
    print(f"  every task's folder and script made {ready_s * 1000:8.1f} ms after the submit began")
    print(f"{n} raw sbatch calls of the same task script:   {raw_s * 1000:8.1f} ms")
    print(f"ratio sweep / raw: {sweep_s / raw_s:.3f}   target <= 0.05")
    print(f"first ticks over the sweep: median {statistics.median(ticks) * 1000:.1f} ms, "
          f"{result.slurm_calls} Slurm call(s) per tick, {result.unfinished} unfinished jobs")
    print(f"raw sacct of the same array(s): median {statistics.median(raws) * 1000:.1f} ms")
    print(f"ratio tick / raw sacct: {statistics.median(ticks) / statistics.median(raws):.2f}   target <= 2")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
