"""The warm submit helper for real: started through sudo by the gateway's service user,
as gwjob and as people, submitting to the real cluster.

What could a hostile party do with it? The gateway's user gets nothing it did not
have (sbatch and scancel as the people of hpc-users, never root); the person a
helper runs as cannot trace it or read its memory; a helper that is killed costs no
job and doubles none (unit tests: tests/unit/test_warm_helpers.py)."""
from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import textwrap
from pathlib import Path

from gateway.config import HELPER_PATH
from tests.conftest import as_service

# Run as the service user: helpers through sudo, as gwjob, alice and root.
PROBE = textwrap.dedent(f"""
    import json, os, sys
    from gateway.errors import SlurmError
    from gateway.slurm.cli import CliSlurm, SubmitRequest
    from gateway.slurm.warm_helpers import WarmHelpers

    helpers = WarmHelpers("", {HELPER_PATH!r})
    slurm = CliSlurm("", 30, helpers)
    out = {{"ids": {{}}, "refused": {{}}}}
    script = "#!/bin/sh\\n#SBATCH -p cpu -t 1 --mem=10M -o /dev/null\\nid -un\\n"
    for user in ("gwjob", "alice", "gwjob", "alice", "gwjob"):
        out["ids"].setdefault(user, []).append(
            slurm.submit(SubmitRequest(script=script, options=["--hold"], user=user, workdir="/tmp")))
    for user in ("root", "gateway"):
        try:
            slurm.submit(SubmitRequest(script=script, options=["--hold"], user=user))
        except SlurmError as e:
            out["refused"][user] = e.message
    out["started"] = helpers.started
    out["helpers"] = {{u: [h.proc.pid for h in hs] for u, hs in helpers._idle.items()}}
    print(json.dumps(out), flush=True)
    sys.stdin.read()  # keep the helpers while the test looks at them
    for ids_user, ids in out["ids"].items():
        slurm.cancel(",".join(ids), user=ids_user)
""")


def helper_children(sudo_pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(sudo_pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_helpers_run_as_the_person_and_nobody_else(slurm_up):
    log = Path("/var/log/slurm-gateway-sudo.log")
    log_before = log.read_text() if log.exists() else ""
    proc = subprocess.Popen(as_service([sys.executable, "-c", PROBE]), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=str(Path(__file__).parents[2]))
    try:
        out = json.loads(proc.stdout.readline())
        # One helper for each person, reused: two starts for five submits.
        assert out["started"] == 2
        assert sorted(out["helpers"]) == ["alice", "gwjob"]
        for user, (sudo_pid,) in out["helpers"].items():
            (pid,) = helper_children(sudo_pid)
            assert pwd.getpwuid(os.stat(f"/proc/{pid}/mem").st_uid).pw_name == "root", \
                "a non-dumpable process's /proc files belong to root"
            status = Path(f"/proc/{pid}/status").read_text()
            uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
            assert pwd.getpwuid(uid).pw_name == user
            # The person cannot read the helper's memory or trace it.
            peek = subprocess.run(["runuser", "-u", user, "--", "cat", f"/proc/{pid}/environ"],
                                  capture_output=True, text=True)
            assert peek.returncode != 0 and "Permission denied" in peek.stderr
        # Slurm has each job under the person's name.
        for user, ids in out["ids"].items():
            sacct = subprocess.run(["squeue", "-h", "-o", "%i %u", "-j", ",".join(ids)],
                                   capture_output=True, text=True, check=True).stdout.split("\n")
            assert sorted(line.split()[1] for line in sacct if line) == [user] * len(ids)
        # Never root, nor the gateway's own user: sudo's words, and the rule named.
        assert set(out["refused"]) == {"root", "gateway"}
        for message in out["refused"].values():
            assert "may not act as" in message and "sudoers" in message
        # sudo logged each helper's start (who, as whom, what), not every submit.
        new = log.read_text()[len(log_before):] if log.exists() else ""
        assert new.count(f"COMMAND={HELPER_PATH}") >= 2 and "COMMAND=/usr/bin/sbatch" not in new
    finally:
        proc.stdin.close()
        proc.wait(30)
    assert proc.returncode == 0


def test_per_call_sudo_still_submits(gw):
    """submit_via = "sudo": no helper, one sudo for every sbatch and scancel."""
    from gateway.slurm.cli import CliSlurm

    gw.ctx.slurm = CliSlurm(gw.config.slurm.bin_dir, gw.config.slurm.command_timeout_seconds)
    gw.environment()
    gw.experiment()
    tpl = gw.template(script="echo per-call\n")
    job = gw.run(tpl["id"])
    done = gw.wait(job["id"])
    assert done["status"] == "Completed"
    assert gw.ok("GET", f"/jobs/{job['id']}/log").get_data(as_text=True).count("per-call") == 1


def test_the_installed_helper_passes_gateway_check():
    from gateway.slurm.warm_helpers import install_problems

    assert install_problems(HELPER_PATH) == []
    st = os.stat(HELPER_PATH)
    assert st.st_uid == 0 and st.st_mode & 0o022 == 0
