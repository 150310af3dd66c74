"""Freshness: how long after a job ends the gateway shows its final status.

N short jobs run one after another through `gateway serve` (gunicorn, with its
poller at the given interval), first with job callbacks (the job tells the gateway it
ended; the gateway reads that job's accounting at once), then without (the poller
alone). For each job the lag is the time from its end to the first moment the
gateway's database holds it as finalised (read every 10 ms; the API answers from it).

Slurm's End (sacct) has whole-second resolution, truncated: the real end lies in
[End, End + 1 s), so "now - End" overstates the lag by up to 1 s (0.5 s on average).
The job therefore also records its own end, to the nanosecond, as its last command
(``OUT_END=$(date +%s.%N)``; Slurm's end follows it within milliseconds): the lag is
measured from that, and "now - sacct End" is printed beside it as an upper bound.
The job lengths are spread over a second so that the ends fall anywhere in it.

Targets (issue 11): median lag <= 1 s with callbacks; <= 1.2 x the poll interval
without.

Usage: .venv/bin/python bench/freshness.py [N] [--poll SECONDS]
       (dev cluster running; default N=10, poll interval 5 s as in etc/dev-gateway.toml)
"""
from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import time
from contextlib import contextmanager
from datetime import datetime

import requests
from common import ROOT, SERVICE_USER, bench_gateway, bench_world, hand_to_service

SCRIPT = 'sleep "$DC_S"\nOUT_END=$(date +%s.%N)\n'


@contextmanager
def gateway_serve(base, callbacks: bool, poll_s: float):
    """`gateway serve` with its poller every ``poll_s`` seconds, calling-back jobs or not."""
    from gateway.wsgi_server import serve_in_background

    text = (ROOT / "etc" / "dev-gateway.toml").read_text()
    text = re.sub(r"(?m)^poll_interval_seconds = .*$", f"poll_interval_seconds = {poll_s}", text)
    (base / "gateway.toml").write_text(text)
    os.chmod(base / "gateway.toml", 0o600)
    hand_to_service(base)
    env = {**os.environ, "GATEWAY_CONFIG": str(base / "gateway.toml")}
    if not callbacks:
        env["GATEWAY_CALLBACK_URL"] = ""  # the config's: none
    with serve_in_background(env=env, log=open(base / "serve.log", "w"), poller=True,
                             run_as=SERVICE_USER) as url:
        yield url


def sacct_end(slurm_id: str) -> float:
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", slurm_id, "-o", "End"],
                         capture_output=True, text=True, check=True).stdout.split()
    return datetime.strptime(out[0], "%Y-%m-%dT%H:%M:%S").timestamp()  # Slurm prints local time


def one_mode(n: int, callbacks: bool, poll_s: float) -> list[dict]:
    with bench_gateway() as (ctx, base):
        from gateway.db import database
        from gateway.models import Job

        token, tpl = bench_world(ctx, SCRIPT, [{"name": "DC_S", "type": "string", "default": "0.5"}])
        results = []
        with gateway_serve(base, callbacks, poll_s) as url:
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {token}"
            for i in range(n):
                length = f"{0.3 + random.random():.3f}"
                r = http.post(f"{url}/api/v1/templates/{tpl.id}/runs", timeout=60, json={
                    "project": "p", "experiment": "e", "machine_type": "cpu-small",
                    "license": "demo-lab", "software_disk_gb": 1, "inputs": {"DC_S": length}})
                r.raise_for_status()
                job_id = r.json()["id"]
                deadline = time.monotonic() + 120 + 3 * poll_s
                while True:
                    row = Job.select(Job.finalized, Job.status, Job.output_variables, Job.slurm_job_id).where(
                        Job.id == job_id).get()
                    if row.finalized:
                        seen = time.time()
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"job {job_id} was not final in the gateway in time")
                    database.close()
                    time.sleep(0.01)
                database.close()
                if row.status != "Completed":
                    raise SystemExit(f"job {job_id} ended {row.status}; see {base}/jobs/{job_id}")
                script_end = float(row.output_variables["OUT_END"])
                end = sacct_end(row.slurm_job_id)
                results.append({"lag": seen - script_end, "lag_sacct": seen - end,
                                "script_after_end": script_end - end})
                print(f"  {'with' if callbacks else 'without'} callbacks, job {i + 1}/{n}: "
                      f"lag {seen - script_end:6.3f} s (now - sacct End {seen - end:6.3f} s)", flush=True)
        return results


def describe(results: list[dict]) -> str:
    lags = sorted(r["lag"] for r in results)
    upper = sorted(r["lag_sacct"] for r in results)
    return (f"median {statistics.median(lags):6.3f} s  max {lags[-1]:6.3f} s  "
            f"(now - sacct End: median {statistics.median(upper):6.3f} s)  (n={len(lags)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=10)
    parser.add_argument("--poll", type=float, default=5.0, help="poll interval in seconds")
    args = parser.parse_args()
    with_cb = one_mode(args.n, True, args.poll)
    without = one_mode(args.n, False, args.poll)
    offsets = [r["script_after_end"] for r in with_cb + without]
    med_with = statistics.median(r["lag"] for r in with_cb)
    med_without = statistics.median(r["lag"] for r in without)
    print(f"job end -> final status in the gateway, poll interval {args.poll:g} s:")
    print(f"  with callbacks:    {describe(with_cb)}   target median <= 1 s")
    print(f"  without callbacks: {describe(without)}")
    print(f"ratio lag / poll interval without callbacks (medians): {med_without / args.poll:.2f}"
          f"   target <= 1.2")
    print(f"with / without callbacks (medians): {med_with / med_without:.3f}")
    print(f"the job's own end after sacct's whole-second End: {min(offsets):.3f} to {max(offsets):.3f} s "
          f"(in [-0.1, 1) when both agree: Slurm's end follows the script's by milliseconds)")


if __name__ == "__main__":
    main()
