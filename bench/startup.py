"""Client start-up: `gateway-sbatch` and `gateway status` as whole processes vs a bare
Python that imports http.client and json, the least a client of the REST API loads.

All are run in the same run, interleaved, so machine noise hits them alike; the
clients talk to a stub API (http.server in this process, answering as the gateway
would) and read their URL and token from a client.toml as `gateway login` writes it,
as people on a login node do. The bare Python is the interpreter the console scripts
run on (not a pyenv shim or another python3 on the PATH). Prints medians and the
ratios to the bare Python (target <= 1.5).

Usage: .venv/bin/python bench/startup.py [N]   (no services needed; default N=40)
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from common import summary

JOB = {"id": 1, "status": "Completed", "reason": "", "user": "alice", "slurm_job_id": "101",
       "license": "lab", "cpu_hours": 0.25, "gpu_hours": 0.0, "finalized": True, "exit_code": 0,
       "output_variables": {"OUT_A": "1"}, "output_files": [{"path": "o.txt", "size": 5}]}
ANSWERS = {("GET", "/api/v1/jobs/1"): (200, JOB),
           ("GET", "/api/v1/licenses"): (200, [{"name": "lab", "slurm_account": "lab"}]),
           ("POST", "/api/v1/jobs/sbatch"): (201, {"id": 1, "slurm_job_id": "101"})}


class StubApi(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.headers.get("Authorization") != "Bearer gw_bench":
            status, body = 401, {"error": "no token", "field": None}
        else:
            status, body = ANSWERS.get((self.command, self.path), (404, {"error": "not found"}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


def console_script(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} is not installed next to {sys.executable} nor on the PATH")
    return found


def main(n: int) -> None:
    bare_python = os.path.realpath(sys.executable)  # what the console scripts' shebang runs
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config_home = tempfile.mkdtemp(prefix="gateway-bench-")
    (Path(config_home) / "slurm-gateway").mkdir()
    (Path(config_home) / "slurm-gateway" / "client.toml").write_text(
        f'url = "http://127.0.0.1:{server.server_port}"\ntoken = "gw_bench"\n')
    # As in a login shell: no GATEWAY_* or PYTHON* settings of this session. Compiled
    # modules are kept (in a folder of the bench's own, not beside the sources), as an
    # installed package has them: compiling the gateway's modules at every start would
    # be measured otherwise.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "PYTHON"))}
    env["XDG_CONFIG_HOME"] = config_home
    env["PYTHONPYCACHEPREFIX"] = str(Path(config_home) / "pycache")
    sbatch, gateway = console_script("gateway-sbatch"), console_script("gateway")
    runs = {
        "bare python3 -I -S, import http.client, json": [bare_python, "-I", "-S", "-c",
                                                        "import http.client, json"],
        "gateway-sbatch --help (no network)": [sbatch, "--help"],
        "gateway-sbatch --gw-license lab --wrap hostname": [sbatch, "--gw-license", "lab", "--wrap",
                                                          "hostname"],
        "gateway status 1": [gateway, "status", "1"],
        "gateway --help (server side, click)": [gateway, "--help"],
    }

    def once(argv: list[str]) -> float:
        t = time.perf_counter()
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True)
        elapsed = time.perf_counter() - t
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()}")
        return elapsed

    try:
        for argv in runs.values():  # warm-up: page cache, .pyc files
            once(argv)
            once(argv)
        samples: dict[str, list[float]] = {label: [] for label in runs}
        for i in range(n):
            order = list(runs.items())
            for label, argv in order[i % len(order):] + order[:i % len(order)]:
                samples[label].append(once(argv))
    finally:
        server.shutdown()
        shutil.rmtree(config_home, ignore_errors=True)

    base = statistics.median(samples[next(iter(runs))])
    width = max(len(label) for label in runs)
    print(f"interpreter: {bare_python} (Python {sys.version.split()[0]}), {os.cpu_count()} cores")
    for label, s in samples.items():
        print(f"{label:<{width}}  {summary(s)}  ratio {statistics.median(s) / base:4.2f}")
    print("target: gateway-sbatch and gateway status <= 1.5 x the bare python3")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
