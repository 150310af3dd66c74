"""The command-line client and the sbatch wrapper, against `gateway serve` on loopback."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import as_service, hand_to_service, served

SBATCH = "gateway.client.sbatch_wrapper"


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
    script.write_text("#!/bin/bash\n#SBATCH --cpus-per-task=1\n#SBATCH --time=0:05:00\n"
                      "echo plain job in $(pwd)\necho data > $JOB_OUTPUT_DIR/o.txt\nsleep 2\n")
    workdir = Path("/var/tmp")  # readable by the job user, like a shared home dir
    # -A is the Slurm account, as in sbatch: it charges the licence that uses it; -c on
    # the command line wins over the script's #SBATCH line.
    out = cli(server, gw.token, "-A", "test_other", "-c", "2", str(script), cwd=workdir, module=SBATCH)
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
    # The gateway licence by name; over the 72-hour ceiling: refused with the reason.
    script.write_text("#!/bin/bash\n#SBATCH --time=4-00:00:00\necho x\n")
    long = cli(server, gw.token, "--gw-license", "test-lab", str(script), module=SBATCH)
    assert long.returncode != 0 and "time_limit_minutes: must be at most 4320" in long.stderr
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_LICENSE"}
    nolic = subprocess.run([sys.executable, "-m", SBATCH, str(script)],
                           env={**env, "GATEWAY_URL": server, "GATEWAY_TOKEN": gw.token},
                           capture_output=True, text=True)
    assert nolic.returncode != 0 and "--gw-license NAME or -A SLURM_ACCOUNT" in nolic.stderr


def test_a_sweep_from_the_command_line(gw_sqlite):
    """`gateway run ... DC_N=1..3 --throttle 2 --wait` runs one array and waits for it;
    `gateway sweep N` lines the tasks up, `--csv` prints the results table."""
    gw = gw_sqlite  # once, on SQLite: what this tests is Slurm's part, not the database's
    gw.environment()
    gw.experiment()
    gw.template(name="square", script="OUT_SQ=$((DC_N * DC_N))\n", outputs=[{"name": "OUT_SQ"}],
                inputs=[{"name": "DC_N", "type": "integer", "default": 1},
                        {"name": "DC_WORD", "type": "string", "default": "x"}])
    with served(gw, poller=True) as url:
        out = cli(url, gw.token, "run", "square", "DC_N=1..3", "DC_WORD=a,b", "-p", "proj", "-e", "exp",
                  "-m", "small", "-l", "test-lab", "--throttle", "2", "--wait")
        assert out.returncode == 0, out.stdout + out.stderr
        sweep_id = int(out.stdout.split()[2].rstrip(":"))
        assert "6 tasks as Slurm array" in out.stdout and "Completed 6" in out.stdout
        shown = cli(url, gw.token, "sweep", str(sweep_id))
        assert shown.returncode == 0 and shown.stdout.count("  task ") == 6, shown.stdout
        assert "DC_N=3 DC_WORD=b  OUT_SQ=9" in shown.stdout
        table = cli(url, gw.token, "sweep", str(sweep_id), "--csv")
        assert table.stdout.splitlines()[0].startswith("task,job,status,DC_N,DC_WORD,OUT_SQ")
        # Without --sweep a comma is just part of the value.
        plain = cli(url, gw.token, "run", "square", "DC_WORD=a,b", "-p", "proj", "-e", "exp", "-m", "small",
                    "-l", "test-lab")
        assert plain.returncode == 0 and plain.stdout.startswith("submitted job "), plain.stderr
        bad = cli(url, gw.token, "run", "square", "DC_N=1..20000", "-p", "proj", "-e", "exp", "-m", "small",
                  "-l", "test-lab", "--sweep")
        assert bad.returncode == 1 and "inputs.DC_N:" in bad.stderr and "10000" in bad.stderr


def test_sbatch_wrapper_wait_exits_with_the_jobs_own_code(gw, tmp_path):
    """As `sbatch -W`: the wrapper returns when the job ends, with the job's exit code."""
    script = tmp_path / "three.sh"
    script.write_text("#!/bin/bash\necho failing on purpose\nexit 3\n")
    with served(gw, poller=True) as url:
        out = cli(url, gw.token, "-A", "test_lab", "-W", str(script), cwd="/var/tmp", module=SBATCH)
        assert out.returncode == 3, (out.stdout, out.stderr)
        assert "Failed" in out.stdout
        script.write_text("#!/bin/bash\necho fine\n")
        ok = cli(url, gw.token, "-A", "test_lab", "--wait", str(script), cwd="/var/tmp", module=SBATCH)
        assert ok.returncode == 0 and "Completed" in ok.stdout, (ok.stdout, ok.stderr)


def test_sbatch_wrapper_array_is_tracked_and_charged_per_task(gw_sqlite, tmp_path):
    """An SSH user's own array script: each task a gateway job with its own log,
    result files, status and charge, equal to its own accounting record."""
    gw = gw_sqlite  # once, on SQLite: what this tests is Slurm's part, not the database's
    script = tmp_path / "array.sh"
    script.write_text("#!/bin/bash\n#SBATCH --array=0-2\n#SBATCH --time=0:05:00\n"
                      "echo task $SLURM_ARRAY_TASK_ID in $(pwd)\n"
                      "echo $SLURM_ARRAY_TASK_ID > $GATEWAY_TASKS/$SLURM_ARRAY_TASK_ID/output/i.txt\n"
                      "sleep 1\n[ $SLURM_ARRAY_TASK_ID -ne 2 ] || exit 4\n")
    with served(gw, poller=True) as url:
        # -a on the command line wins over the script's line; -W waits for every task.
        out = cli(url, gw.token, "-A", "test_lab", "-a", "0-2%2", "-W", str(script), cwd="/var/tmp",
                  module=SBATCH)
        assert out.returncode == 4, (out.stdout, out.stderr)  # the highest exit code, as sbatch -W
        base = out.stdout.split()[3]
        sweep_id = int(out.stdout.split("gateway sweep ")[1].split(",")[0])
        s = gw.ok("GET", f"/sweeps/{sweep_id}")
    assert s["array_job_ids"] == [base] and s["tasks"] == 3 and s["throttle"] == 2
    assert [j["status"] for j in s["jobs"]] == ["Completed", "Completed", "Failed"]
    for j in s["jobs"]:
        i = j["array_task"]
        assert j["slurm_job_id"] == f"{base}_{i}" and j["kind"] == "sbatch" and j["license"] == "test-lab"
        acct = gw.sacct(j["slurm_job_id"], "CPUTimeRAW,ExitCode")
        assert j["cpu_seconds"] == int(acct["CPUTimeRAW"]) > 0
        assert acct["ExitCode"] == ("4:0" if i == 2 else "0:0") and j["exit_code"] == (4 if i == 2 else 0)
        assert j["output_files"] == [{"path": "i.txt", "size": 2}]
        log = gw.api("GET", f"/jobs/{j['id']}/log").get_data(as_text=True)
        assert f"task {i} in /var/tmp" in log and log.count("task ") == 1  # its own log, nobody else's


def test_sbatch_wrapper_refuses_what_it_cannot_honour_by_name(gw, server, tmp_path):
    script = tmp_path / "x.sh"
    script.write_text("#!/bin/bash\necho x\n")
    before = gw.ok("GET", "/jobs")["total"]
    for argv, words in ((["--frobnicate", "yes"], "--frobnicate: gateway-sbatch does not know this option"),
                        (["--license", "test-lab"], "--license is refused: in sbatch it is short for "
                                                    "-L/--licenses"),
                        (["-A", "test_lab", "-o", "out.txt"], "-o/--output is refused"),
                        (["-A", "no_such_account"], "no gateway licence you may use charges this Slurm "
                                                    "account"),
                        (["-A", "test_other", "--gw-license", "test-lab"], "disagree")):
        out = cli(server, gw.token, *argv, str(script), module=SBATCH)
        assert out.returncode != 0 and words in out.stderr, (argv, out.stderr)
    # -L is Slurm's licences, passed on: this cluster has none, and Slurm says so.
    slurm_licence = cli(server, gw.token, "-A", "test_lab", "-L", "nosuch:1", str(script), module=SBATCH)
    assert slurm_licence.returncode != 0 and "licen" in slurm_licence.stderr.lower(), slurm_licence.stderr
    assert gw.ok("GET", "/jobs")["total"] == before + 1  # only that one reached Slurm


def test_jobs_mine_or_all_and_log_follow_of_a_pending_job(gw, server, tmp_path):
    script = tmp_path / "held.sh"
    script.write_text("#!/bin/bash\necho started after release\n")
    held = cli(server, gw.token, "--gw-license", "test-lab", "--hold", "--parsable", str(script),
               cwd="/var/tmp", module=SBATCH)
    assert held.returncode == 0, held.stderr
    slurm_id = held.stdout.strip()
    job_id = next(j["id"] for j in gw.ok("GET", "/jobs")["jobs"] if j["slurm_job_id"] == slurm_id)
    theirs = cli(server, gw.alice_token, "-A", "test_other", "-Q", str(script), cwd="/var/tmp",
                 module=SBATCH)
    assert theirs.returncode == 0 and theirs.stdout == "", theirs.stderr
    alice_job = gw.ok("GET", "/jobs?mine=1", token=gw.alice_token)["jobs"][0]["id"]
    mine = cli(server, gw.token, "jobs").stdout.splitlines()
    assert mine[0] == "your jobs (use --all for every job you can see):"
    assert any(line.startswith(f"job {job_id} ") for line in mine)
    assert not any(line.startswith(f"job {alice_job} ") for line in mine)
    every = cli(server, gw.token, "jobs", "--all").stdout.splitlines()
    assert every[0] == "every job you can see:"
    assert any(line.startswith(f"job {alice_job} ") and "by alice" in line for line in every)
    assert any(line.startswith(f"job {job_id} ") and "by admin" in line for line in every)

    # Held: `log --follow` says it is waiting, and why, then follows the log once it runs.
    env = {**os.environ, "GATEWAY_URL": server, "GATEWAY_TOKEN": gw.token}
    follow = subprocess.Popen([sys.executable, "-m", "gateway.cli", "log", str(job_id), "--follow"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # One reader per pipe (communicate() would race the stderr reader for its lines).
    said: list[str] = []
    printed: list[str] = []
    readers = [threading.Thread(target=lambda: said.extend(follow.stderr), daemon=True),
               threading.Thread(target=lambda: printed.extend(follow.stdout), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        gw.wait(job_id, timeout=60, until=lambda j: "JobHeldUser" in j["reason"])
        deadline = time.monotonic() + 30
        while not any("JobHeldUser" in line for line in said) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert any(line.startswith(f"job {job_id} is waiting to start: held by the person who ran it")
                   and "(Slurm: JobHeldUser); its log follows once it runs" in line for line in said), said
        subprocess.run(["scontrol", "release", slurm_id], check=True)
        assert gw.wait(job_id)["status"] == "Completed"
        follow.wait(timeout=60)
    finally:
        follow.kill()
    for reader in readers:
        reader.join(10)
    assert follow.returncode == 0 and "started after release" in "".join(printed)
    assert any(line.startswith(f"job {job_id} is running") or f"job {job_id} has ended" in line
               for line in said), said
    gw.wait(alice_job)

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
