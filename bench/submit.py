"""Submit latency: a run through the REST API vs a raw `sbatch` of the same script.

Both are measured in the same run, interleaved, so machine noise hits both alike.
Prints medians and the ratio gateway / raw (target <= 2.0).

With --concurrency C: C clients at once, N submits in all, through the API (a
gateway with --workers W) and as raw sbatch processes: throughput of each and their
ratio (target >= 0.7), errors, and every gateway job checked against accounting
(each exactly one Slurm job, no Slurm job of the gateway's name left unaccounted).

Usage: .venv/bin/python bench/submit.py [N] [--concurrency C] [--workers W]
       (dev cluster running; default N=100, C=1, W=2)
"""
from __future__ import annotations

import argparse
import os
import pwd
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from common import SERVICE_USER, bench_gateway, bench_world, scancel, served, summary

from gateway.config import HELPER_PATH
from gateway.slurm.warm_helpers import WarmHelpers

JOB_USER = "gwjob"  # the dev config's job user
# What a gateway with submit_via = "sudo" runs for every submit (etc/sudoers.d/slurm-gateway).
SUDO_SBATCH = ["sudo", "-n", "-u", JOB_USER, "--", "/usr/bin/sbatch", "--parsable"]


def warm_helpers() -> WarmHelpers:
    """What the gateway runs with submit_via = "helper" (the default): warm helpers,
    started through sudo as the job user once, then sbatch through a pipe."""
    return WarmHelpers("", HELPER_PATH)


def helper_sbatch(helpers: WarmHelpers, script: str) -> subprocess.CompletedProcess:
    r = helpers.run(JOB_USER, "sbatch", ["--parsable"], script, 60)
    return subprocess.CompletedProcess([], r.returncode, r.stdout, r.stderr)


def main(n: int, concurrency: int, workers: int) -> None:
    if concurrency > 1:
        return concurrent(n, concurrency, workers)
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

            helpers = warm_helpers()

            def floor_submit() -> float:
                t = time.perf_counter()
                out = helper_sbatch(helpers, script)
                elapsed = time.perf_counter() - t
                slurm_ids.append(out.stdout.strip().split(";")[0])
                return elapsed

            def sudo_submit() -> float:
                t = time.perf_counter()
                out = subprocess.run(SUDO_SBATCH, input=script, text=True, capture_output=True, check=True,
                                     cwd="/tmp", user=SERVICE_USER, group=SERVICE_USER, extra_groups=[])
                elapsed = time.perf_counter() - t
                slurm_ids.append(out.stdout.strip().split(";")[0])
                return elapsed

            for _ in range(5):  # warm-up: connections, caches, gunicorn worker, helpers
                gateway_submit()
                raw_submit()
                floor_submit()
                sudo_submit()
            api, raw, floor, sudo = [], [], [], []
            sides = [(api, gateway_submit), (raw, raw_submit), (floor, floor_submit), (sudo, sudo_submit)]
            for i in range(n):
                # Each order in turn, so machine noise hits all three alike.
                for samples, submit in sides[i % 4:] + sides[:i % 4]:
                    samples.append(submit())
            helpers.close()
        scancel(slurm_ids)
    ratio = statistics.median(api) / statistics.median(raw)
    print(f"submit, gateway API (HTTP, gunicorn):  {summary(api)}")
    print(f"submit, raw sbatch of the same script: {summary(raw)}")
    print(f"sbatch through a warm helper as {JOB_USER}:   {summary(floor)}")
    print(f"sudo -u {JOB_USER} sbatch (submit_via sudo): {summary(sudo)}")
    print(f"ratio gateway / raw (medians): {ratio:.2f}   target <= 2.0")
    print(f"  of which helper + sbatch (the floor for an unprivileged gateway): "
          f"{statistics.median(floor) / statistics.median(raw):.2f}; the gateway's own work: "
          f"{(statistics.median(api) - statistics.median(floor)) * 1000:.1f} ms; "
          f"sudo + sbatch per call would be {statistics.median(sudo) / statistics.median(raw):.2f}")


TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> float:
    """CPU seconds the whole machine has spent (user + system), from /proc/stat."""
    fields = open("/proc/stat").readline().split()[1:]
    return (int(fields[0]) + int(fields[1]) + int(fields[2])) * TICK_S  # user, nice, system


def process_cpu_s(user: str) -> float:
    """CPU seconds used so far by the live processes of ``user`` (the gateway's workers),
    children that ended included."""
    uid = pwd.getpwnam(user).pw_uid
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in stat[11:15]) * TICK_S  # utime, stime, cutime, cstime
    return total


def concurrent(n: int, clients: int, workers: int) -> None:
    with bench_gateway() as (ctx, base):
        token, tpl = bench_world(ctx, "true\n", [{"name": "DC_X", "type": "string", "default": "x"}])
        body = {"project": "p", "experiment": "e", "machine_type": "cpu-small",
                "license": "demo-lab", "software_disk_gb": 1, "inputs": {"DC_X": "a b"}}
        made: list[dict] = []
        errors: list[str] = []
        raw_ids: list[str] = []
        with served(base, workers=workers) as url:
            run_url = f"{url}/api/v1/templates/{tpl.id}/runs"
            sessions = [requests.Session() for _ in range(clients)]
            for http in sessions:
                http.headers["Authorization"] = f"Bearer {token}"
                # Warm-up: each client's connection, every worker's code and pool.
                made.append(http.post(run_url, json=body, timeout=60).json())
            script = (base / "jobs" / str(made[0]["id"]) / "job.sbatch").read_text()

            def gateway_client(k: int) -> None:
                http = sessions[k]
                for _ in range(k, n, clients):
                    r = http.post(run_url, json=body, timeout=120)
                    if r.status_code == 201:
                        made.append(r.json())
                    else:
                        errors.append(f"{r.status_code} {r.text[:200]}")

            helpers = warm_helpers()

            def raw_client(k: int, helper: bool = False) -> None:
                for _ in range(k, n, clients):
                    if helper:  # what the gateway runs: sbatch through warm helpers
                        out = helper_sbatch(helpers, script)
                    else:
                        out = subprocess.run(["sbatch", "--parsable"], input=script, text=True,
                                             capture_output=True)
                    if out.returncode == 0:
                        raw_ids.append(out.stdout.strip().split(";")[0])
                    else:
                        errors.append(f"raw sbatch: {out.stderr.strip()}")

            times, cpu, gateway_cpu = {}, {}, 0.0
            # Raw first and last, the gateway between: drift on a noisy machine shows.
            for side, client in (("raw", raw_client), ("gateway", gateway_client),
                                 ("helper", lambda k: raw_client(k, helper=True)), ("raw again", raw_client)):
                t, c0, g0 = time.perf_counter(), machine_cpu_s(), process_cpu_s(SERVICE_USER)
                with ThreadPoolExecutor(clients) as pool:
                    list(pool.map(client, range(clients)))
                times[side] = time.perf_counter() - t
                cpu[side] = machine_cpu_s() - c0
                if side == "gateway":
                    gateway_cpu = process_cpu_s(SERVICE_USER) - g0
            helpers.close()
        from gateway.models import Job

        rows = {j.id: j.slurm_job_id for j in Job.select(Job.id, Job.slurm_job_id)}
        answered = {m["id"]: m["slurm_job_id"] for m in made}
        ids = [i for i in rows.values() if i]
        in_acct: set[str] = set()
        for _ in range(60):  # accounting records a job a moment after sbatch answers
            acct = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobIDRaw", "-j", ",".join(ids)],
                                  capture_output=True, text=True, check=True).stdout.split()
            in_acct = set(acct)
            if in_acct >= set(ids):
                break
            time.sleep(1)
        scancel([*ids, *raw_ids])
    raw_s = (times["raw"] + times["raw again"]) / 2
    print(f"{n} submits by {clients} clients at once, gateway with {workers} gunicorn worker(s) x 8 threads")
    print(f"  gateway API:  {times['gateway']:6.2f} s  {n / times['gateway']:6.1f} submits/s")
    print(f"  raw sbatch:   {raw_s:6.2f} s  {n / raw_s:6.1f} submits/s  "
          f"(before {times['raw']:.2f} s, after {times['raw again']:.2f} s)")
    print(f"  sbatch through warm helpers as {JOB_USER}: {times['helper']:6.2f} s  "
          f"{n / times['helper']:6.1f} submits/s (the floor for an unprivileged gateway: "
          f"{raw_s / times['helper']:.2f} x raw)")
    print(f"  throughput ratio gateway / raw: {raw_s / times['gateway']:.2f}   target >= 0.7")
    ms = {side: used / n * 1000 for side, used in cpu.items()}
    print(f"  CPU a submit, whole machine ({os.cpu_count()} cores): gateway {ms['gateway']:.1f} ms "
          f"(its own processes {gateway_cpu / n * 1000:.1f} ms), raw sbatch "
          f"{(ms['raw'] + ms['raw again']) / 2:.1f} ms, through helpers {ms['helper']:.1f} ms")
    lost = [i for i, sid in rows.items() if not sid or sid not in in_acct]
    doubled = len(ids) - len(set(ids))
    print(f"  errors {len(errors)}, jobs {len(rows)} (answered {len(answered)}), without a Slurm job in "
          f"accounting {len(lost)}, Slurm ids given twice {doubled}")
    for e in errors[:5]:
        print("   ", e)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("n", type=int, nargs="?", default=100)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    main(a.n, a.concurrency, a.workers)
