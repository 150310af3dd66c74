"""The command-line client and the sbatch wrapper, against `gateway serve` on loopback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import as_service, hand_to_service


def cli(server, token, *args, cwd=None, input=None, module="gateway.cli"):
    env = {**os.environ, "GATEWAY_URL": server, "GATEWAY_TOKEN": token}
    return subprocess.run([sys.executable, "-m", module, *args], env=env, cwd=cwd, input=input,
                          capture_output=True, text=True, timeout=180)


def test_run_follow_and_fetch_from_a_terminal(gw, server, tmp_path):
    gw.environment()
    gw.experiment()
    gw.template(name="greet", script='echo "hello $DC_WHO"\necho "$DC_WHO" > $JOB_OUTPUT_DIR/who.txt\n'
                'OUT_WHO=$DC_WHO\n',
                inputs=[{"name": "DC_WHO", "type": "string", "default": "world"}],
                outputs=[{"name": "OUT_WHO"}])
    out = cli(server, gw.token, "templates")
    assert out.returncode == 0 and "greet" in out.stdout and "DC_WHO" in out.stdout
    bad = cli(server, gw.token, "run", "greet", "-p", "proj", "-e", "exp", "-m", "nope",
              "-l", "test-lab")
    assert bad.returncode != 0 and "machine_type: unknown machine type" in bad.stderr
    preview = cli(server, gw.token, "run", "greet", "DC_WHO=it's me", "-p", "proj", "-e", "exp",
                  "-m", "small", "-l", "test-lab", "--preview")
    assert preview.returncode == 0 and "export DC_WHO='it'\"'\"'s me'" in preview.stdout
    sub = cli(server, gw.token, "run", "greet", "DC_WHO=$(id)", "-p", "proj", "-e", "exp",
              "-m", "small", "-l", "test-lab")
    assert sub.returncode == 0, sub.stderr
    job_id = int(sub.stdout.split()[2])
    done = gw.wait(job_id)
    assert done["status"] == "Completed"
    status = cli(server, gw.token, "status", str(job_id))
    assert "Completed" in status.stdout and "OUT_WHO=$(id)" in status.stdout
    log = cli(server, gw.token, "log", str(job_id))
    assert "hello $(id)" in log.stdout
    fetched = cli(server, gw.token, "fetch", str(job_id), "-d", str(tmp_path / "out"))
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "out" / "who.txt").read_text() == "$(id)\n"
    jobs = cli(server, gw.token, "jobs", "--status", "Completed")
    assert f"job {job_id}" in jobs.stdout


def test_poller_worker_follows_jobs_by_itself(gw, server):
    """`gateway worker` (APScheduler) moves jobs on with no manual tick; `run --wait` sees it."""
    gw.environment()
    gw.experiment()
    gw.template(name="quick", script="OUT_A=1\n", outputs=[{"name": "OUT_A"}])
    env = {**os.environ, "GATEWAY_CONFIG": str(gw.config_path)}
    hand_to_service(gw.base)
    worker = subprocess.Popen(as_service([sys.executable, "-m", "gateway.cli", "worker"]), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        out = cli(server, gw.token, "run", "quick", "-p", "proj", "-e", "exp", "-m", "small",
                  "-l", "test-lab", "--wait")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Completed" in out.stdout
    finally:
        worker.terminate()
        worker.wait(10)


def test_sbatch_wrapper_submits_a_plain_script_charged_to_a_license(gw, server, tmp_path):
    script = tmp_path / "plain.sh"
    script.write_text("#!/bin/bash\n#SBATCH --cpus-per-task=2\n#SBATCH --time=0:05:00\n"
                      "echo plain job in $(pwd)\necho data > $JOB_OUTPUT_DIR/o.txt\nsleep 2\n")
    workdir = Path("/var/tmp")  # readable by the job user, like a shared home dir
    out = cli(server, gw.token, str(script), "--license", "other-lab", cwd=workdir,
              module="gateway.client.sbatch_wrapper")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Submitted batch job ")
    slurm_id = out.stdout.split()[3]
    job_id = int(out.stdout.split("gateway job ")[1].rstrip(")\n"))
    job = gw.wait(job_id)
    assert job["status"] == "Completed" and job["slurm_job_id"] == slurm_id
    assert job["kind"] == "sbatch" and job["license"] == "other-lab"
    assert job["time_limit_minutes"] == 5
    acct = gw.sacct(slurm_id, "Account,CPUTimeRAW,AllocCPUS")
    assert acct["Account"] == "test_other" and acct["AllocCPUS"] == "2"
    assert job["cpu_seconds"] == int(acct["CPUTimeRAW"]) > 0
    assert job["output_files"] == [{"path": "o.txt", "size": 5}]
    log = cli(server, gw.token, "log", str(job_id))
    assert "plain job in /var/tmp" in log.stdout
    # Over the 72-hour ceiling, and without a licence: refused with the reason.
    script.write_text("#!/bin/bash\n#SBATCH --time=4-00:00:00\necho x\n")
    long = cli(server, gw.token, str(script), "--license", "test-lab",
               module="gateway.client.sbatch_wrapper")
    assert long.returncode != 0 and "time_limit_minutes: must be at most 4320" in long.stderr
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_LICENSE"}
    nolic = subprocess.run([sys.executable, "-m", "gateway.client.sbatch_wrapper", str(script)],
                           env={**env, "GATEWAY_URL": server, "GATEWAY_TOKEN": gw.token},
                           capture_output=True, text=True)
    assert nolic.returncode != 0 and "--license" in nolic.stderr


def test_admin_commands(gw):
    env = {**os.environ, "GATEWAY_CONFIG": str(gw.config_path)}
    def run(*args, service=False):
        cmd = [sys.executable, "-m", "gateway.cli", *args]
        return subprocess.run(as_service(cmd) if service else cmd, env=env,
                              capture_output=True, text=True)
    exp = gw.experiment()
    hand_to_service(gw.base)
    # The commands that make or serve the gateway's state never run as root.
    for cmd in (("db", "upgrade"), ("serve",), ("worker", "--once"), ("check",), ("demo",)):
        as_root = run(*cmd)
        assert as_root.returncode != 0 and "does not run as root" in as_root.stderr, (cmd, as_root.stderr)
    assert "up to date" in run("db", "upgrade", service=True).stdout
    assert run("users", "add", "dora").returncode == 0
    dup = run("users", "add", "dora")
    assert dup.returncode != 0 and "already exists" in dup.stderr
    token = run("tokens", "create", "dora").stdout.strip()
    assert token.startswith("gw_")
    r = gw.client.get("/api/v1/licenses", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    run("check", "--fix", service=True)  # associations other tests' people left
    check = run("check", service=True)
    assert check.returncode == 1 and "not_in_slurm" in check.stderr
    assert "test_lab" not in check.stderr and "ACL" not in check.stderr, check.stderr
    # Folder access changed behind the gateway's back is reported, then put right.
    subprocess.run(["setfacl", "-m", "u:carol:rwx", str(exp)], check=True)
    drift = run("check", service=True)
    assert f"{exp}: ACL is" in drift.stderr and "u:carol:rwx" in drift.stderr
    assert f"fixed: {exp}: ACL is" in run("check", "--fix", service=True).stdout
    assert "carol" not in subprocess.run(["getfacl", "-p", str(exp)], capture_output=True,
                                         text=True).stdout
