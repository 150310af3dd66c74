"""Licence budgets held by the real Slurm: a run that could pass the budget is refused
by the gateway, a plain `sbatch --account` job on the same account is held by Slurm
itself with the budget reason, raising the budget (as the sponsor, through the API)
lets it run, and `gateway check` finds a limit changed by hand in Slurm and --fix
puts it back.

tiny-lab (tests/conftest.py): 1 CPU hour a month on account test_budget, sponsor
alice (who may set up to 5 hours)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime

from gateway import budgets
from gateway.models import Job
from tests.conftest import as_service, served, sign_in_from_directory


def assoc_limit(account: str) -> str:
    out = subprocess.run(["sacctmgr", "-n", "-P", "show", "assoc", "where", f"account={account}",
                          "user=", "format=GrpTRESMins"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def squeue_state(job_id: str) -> tuple[str, str]:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T|%r"], capture_output=True, text=True)
    state, _, reason = out.stdout.strip().partition("|")
    return state, reason


def wait_for(what, check, timeout=90.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def test_a_budget_holds_in_slurm_and_in_the_gateway(gw_sqlite):
    gw = gw_sqlite
    ctx = gw.ctx
    sign_in_from_directory(gw, "alice", "bob")
    alice = gw.client.post("/api/v1/auth/token",
                           json={"username": "alice", "password": "alice-pw"}).json["token"]
    # Start clean on this machine: the budget in Slurm, the usage of earlier runs gone.
    budgets.drift(ctx, fix=True)
    ctx.slurm.reset_account_usage("test_budget")
    assert assoc_limit("test_budget") == "cpu=60"
    gw.environment()
    gw.experiment()
    tpl = gw.template(script="echo budgeted\n")

    # The gateway refuses a run whose worst case passes the budget: 2 CPUs x 60 minutes.
    r = gw.api("POST", f"/templates/{tpl['id']}/runs",
               json={"project": "proj", "experiment": "exp", "machine_type": "double", "license": "tiny-lab",
                     "time_limit_minutes": 60, "inputs": {}})
    assert r.status_code == 400 and r.json["field"] == "license", r.json
    assert "2.0000 CPU hours (2 CPUs for 60 minutes)" in r.json["error"]
    assert "1.0000 of its 1.0000 CPU hours left this month" in r.json["error"]
    assert Job.select().where(Job.license == "tiny-lab").count() == 0
    # Its preview says so before anyone submits, with Slurm's own start estimate
    # (`sbatch --test-only` as the person it would run as; nothing is queued).
    body = {"project": "proj", "experiment": "exp", "machine_type": "double", "license": "tiny-lab",
            "time_limit_minutes": 60, "inputs": {}}
    preview = gw.ok("POST", f"/templates/{tpl['id']}/preview", json=body)
    assert preview["cost"]["cpu_hours"] == 2.0 and preview["cost"]["fits"] is False
    assert preview["cost"]["left_after"]["cpu_hours"] == -1.0
    # Slurm's --test-only does not weigh association limits: it still gives a time.
    start = preview["start_estimate"]
    assert start["at"] and start["source"].startswith("sbatch --test-only"), start
    preview = gw.ok("POST", f"/templates/{tpl['id']}/preview", json={**body, "license": "test-lab"})
    assert preview["cost"]["fits"] is None and preview["cost"]["left_after"] is None
    at = datetime.fromisoformat(preview["start_estimate"]["at"].replace("Z", "+00:00"))
    assert abs((at - datetime.now(UTC)).total_seconds()) < 3600, preview["start_estimate"]

    # A plain sbatch on the same account, not through the gateway: Slurm holds it.
    plain = subprocess.run(["sudo", "-n", "-u", "gwjob", "--", "sbatch", "--parsable",
                            "--account=test_budget", "-p", "cpu", "-n", "2", "-t", "60", "--mem=10M",
                            "-o", "/dev/null", "--wrap", "true"], capture_output=True, text=True, cwd="/tmp")
    assert plain.returncode == 0, plain.stderr
    job_id = plain.stdout.strip().split(";")[0]
    try:
        state, reason = wait_for("Slurm to give a reason", lambda: squeue_state(job_id)[1] not in ("", "None")
                                 and squeue_state(job_id))
        assert state == "PENDING" and reason == "AssocGrpCPUMinutesLimit", (state, reason)
        # The licence shows what is used and left, as Slurm counts it.
        lic = gw.ok("GET", "/licenses/tiny-lab", token=alice)
        assert lic["budget"]["cpu_hours"] == 1.0 and lic["remaining"]["cpu_hours"] == 1.0

        # The sponsor raises the budget from the command line, through the served gateway
        # (a Slurm operator, not root): Slurm's limit follows and the job runs.
        with served(gw) as url:
            env = {**os.environ, "GATEWAY_URL": url, "GATEWAY_TOKEN": alice}
            raised = subprocess.run([sys.executable, "-m", "gateway.cli", "budget", "tiny-lab",
                                     "--cpu-hours", "3"], env=env, capture_output=True, text=True, timeout=60)
            assert raised.returncode == 0, raised.stderr
            # 3 hours, less the 2 the released job may use once it runs (it may start at once).
            left = r"[13]\.0000 of 3\.0000 CPU h left this month"
            assert re.search(rf"^tiny-lab: {left}$", raised.stdout, re.M), raised.stdout
            assert "set by alice" in raised.stdout
            listed = subprocess.run([sys.executable, "-m", "gateway.cli", "licenses"], env=env,
                                    capture_output=True, text=True, timeout=60)
            assert re.search(rf"budget: {left}", listed.stdout), listed.stdout
        assert assoc_limit("test_budget") == "cpu=180"
        # Schedule it now rather than at the controller's next pass (up to a minute).
        subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], check=True)
        wait_for("the held job to start",
                 lambda: squeue_state(job_id)[0] in ("RUNNING", "COMPLETING", "")
                 or subprocess.run(["sacct", "-X", "-n", "-j", job_id, "-o", "State"], capture_output=True,
                                   text=True).stdout.strip().startswith(("RUNNING", "COMPLETED")))
    finally:
        subprocess.run(["scancel", job_id])

    # A limit changed by hand in Slurm is drift: `gateway check` says so, --fix mends it.
    subprocess.run(["sacctmgr", "-i", "modify", "account", "where", "name=test_budget", "set",
                    "GrpTRESMins=cpu=999"], check=True, capture_output=True)
    check = subprocess.run(as_service([sys.executable, "-m", "gateway.cli", "check"]), capture_output=True,
                           text=True, env={"GATEWAY_CONFIG": str(gw.config_path), "PATH": "/usr/bin:/bin"})
    assert ("problem: licenses[tiny-lab].budget: Slurm account 'test_budget' has GrpTRESMins cpu=999 min, "
            "gres/gpu=none; the budget says cpu=180 min, gres/gpu=none") in check.stderr, check.stderr
    fix = subprocess.run(as_service([sys.executable, "-m", "gateway.cli", "check", "--fix"]),
                         capture_output=True, text=True,
                         env={"GATEWAY_CONFIG": str(gw.config_path), "PATH": "/usr/bin:/bin"})
    assert "fixed: licenses[tiny-lab].budget" in fix.stdout, (fix.stdout, fix.stderr)
    assert assoc_limit("test_budget") == "cpu=180"
    assert budgets.drift(ctx) == []
    # Back to the config's budget for the next run on this machine.
    gw.ok("PUT", "/licenses/tiny-lab/budget", json={"cpu_hours": 1})
