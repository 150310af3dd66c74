"""Submit latency: a run through the REST API vs a raw `sbatch` of the same script.

Both are measured in the same run, interleaved, so machine noise hits both alike.
Prints medians and the ratio gateway / raw (target <= 1.5, heading for <= 1.2).

Usage: .venv/bin/python bench/submit.py [N]   (dev cluster running; default N=100)
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

import requests
from common import bench_gateway, bench_world, scancel, served, summary


def main(n: int) -> None:
    with bench_gateway() as (ctx, base):
        token, tpl = bench_world(ctx, "true\n", [{"name": "DC_X", "type": "string", "default": "x"}])
        body = {"project": "p", "experiment": "e", "machine_type": "cpu-small",
                "license": "demo-lab", "software_disk_gb": 1, "inputs": {"DC_X": "a b"}}
        slurm_ids: list[str] = []
        with served(base) as url:
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {token}"
            run_url = f"{url}/api/v1/templates/{tpl.id}/runs"

            def gateway_submit() -> float:
                t = time.perf_counter()
                r = http.post(run_url, json=body, timeout=60)
                elapsed = time.perf_counter() - t
                r.raise_for_status()
                slurm_ids.append(r.json()["slurm_job_id"])
                return elapsed

            first = http.post(run_url, json=body, timeout=60).json()
            slurm_ids.append(first["slurm_job_id"])
            script = (base / "jobs" / str(first["id"]) / "job.sbatch").read_text()

            def raw_submit() -> float:
                t = time.perf_counter()
                out = subprocess.run(["sbatch", "--parsable"], input=script, text=True,
                                     capture_output=True, check=True)
                elapsed = time.perf_counter() - t
                slurm_ids.append(out.stdout.strip().split(";")[0])
                return elapsed

            for _ in range(5):  # warm-up: connections, caches, gunicorn worker
                gateway_submit()
                raw_submit()
            api, raw = [], []
            for i in range(n):
                if i % 2:
                    api.append(gateway_submit())
                    raw.append(raw_submit())
                else:
                    raw.append(raw_submit())
                    api.append(gateway_submit())
        scancel(slurm_ids)
    ratio = statistics.median(api) / statistics.median(raw)
    print(f"submit, gateway API (HTTP, gunicorn):  {summary(api)}")
    print(f"submit, raw sbatch of the same script: {summary(raw)}")
    print(f"ratio gateway / raw (medians): {ratio:.2f}   target <= 1.5 (goal 1.2)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
