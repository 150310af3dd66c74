"""A job is hostile input: what its script says and what it leaves on disk must never
make the gateway read or serve a file the job's own user could not read. Real jobs on
the real cluster, against a secret only root can read."""
from __future__ import annotations

import os
import signal
import subprocess
from contextlib import contextmanager

import pytest

SBATCH_IO = """#!/bin/bash
#SBATCH --output={secret}
#SBATCH --error={secret}
#SBATCH --input={secret}
echo mine-out
echo mine-err >&2
"""

# Everything a job can leave behind in its own folders, pointing at the secret.
HOSTILE = r"""
out="$JOB_OUTPUT_DIR"
echo result > "$out/real.txt"
mkdir "$out/sub" && echo deeper > "$out/sub/real2.txt"
ln -s {secret} "$out/leak.txt"
ln -s / "$out/root"
mkfifo "$out/pipe"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$out/sock"
touch "$out/$(printf 'bad-\377-name')"
OUT_FINE=yes
ln -sf {outputs_secret} "$GATEWAY_RUN_DIR/outputs.env"
rm -f "$GATEWAY_RUN_DIR/job.log" && ln -s {secret} "$GATEWAY_RUN_DIR/job.log"
"""

FIFO_THEN_DIE = r"""
echo about to go
rm -f "$GATEWAY_RUN_DIR/exit_status" && mkfifo "$GATEWAY_RUN_DIR/exit_status"
rm -f "$GATEWAY_RUN_DIR/job.log" && mkfifo "$GATEWAY_RUN_DIR/job.log"
kill -KILL $$
"""


@pytest.fixture
def secrets(gw):
    """Files only root may read, like the gateway's secret key and database."""
    secret = gw.base / "root-only-secret"
    secret.write_text("STOLEN-SECRET-KEY\n")
    outputs = gw.base / "root-only-outputs"
    outputs.write_bytes(b"OUT_STOLEN=STOLEN-VALUE\0")
    for p in (secret, outputs):
        os.chmod(p, 0o600)
    return secret, outputs


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging: before the fix a FIFO blocked the poller for ever."""
    def expired(*_):
        raise AssertionError(f"the poller blocked for more than {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _share_log(gw, job_id):
    token = gw.ok("POST", f"/jobs/{job_id}/share-links", 201, json={})["token"]
    return gw.client.get(f"/api/v1/shared/{token}/log").get_data()


def test_a_script_cannot_choose_the_log_the_gateway_serves(gw, secrets):
    """#SBATCH --output/--error/--input naming a root-only file: the gateway sets all
    three on sbatch's command line, and serves only the log it placed."""
    secret, _ = secrets
    gw.environment()
    job = gw.ok("POST", "/jobs/sbatch", 201, json={"script": SBATCH_IO.format(secret=secret),
                                                   "license": "test-lab"})
    job = gw.wait(job["id"])
    log = gw.ok("GET", f"/jobs/{job['id']}/log").get_data()
    assert b"STOLEN" not in log and b"STOLEN" not in _share_log(gw, job["id"])
    assert job["status"] == "Completed", job
    assert b"mine-out" in log and b"mine-err" in log
    assert secret.read_text() == "STOLEN-SECRET-KEY\n"  # and Slurm did not write there


def test_links_fifos_and_sockets_a_job_leaves_are_not_followed(gw, secrets):
    secret, outputs_secret = secrets
    gw.environment()
    exp = gw.experiment()
    tpl = gw.template(script=HOSTILE.format(secret=secret, outputs_secret=outputs_secret),
                      outputs=[{"name": "OUT_FINE"}])
    with deadline(150):
        job = gw.wait(gw.run(tpl["id"])["id"])
    assert job["status"] == "Completed", job
    assert job["output_files"] == [{"path": "real.txt", "size": 7}, {"path": "sub/real2.txt", "size": 7}]
    notes = "\n".join(job["notes"])
    for what in ("leak.txt: a link", "root: a link", "pipe: a FIFO", "sock: a socket", "not UTF-8"):
        assert what in notes, notes
    assert "OUT_STOLEN" not in job["output_variables"]
    # Neither the log nor a file download nor a share link reaches the secret.
    assert b"STOLEN" not in gw.ok("GET", f"/jobs/{job['id']}/log").get_data()
    assert b"STOLEN" not in _share_log(gw, job["id"])
    for name in ("leak.txt", "root/etc/passwd", "pipe", "sock", "../run/job.log"):
        r = gw.api("GET", f"/jobs/{job['id']}/files/{name}")
        assert r.status_code in (400, 404), (name, r.status_code)
        assert b"STOLEN" not in r.get_data()
    assert gw.ok("GET", f"/jobs/{job['id']}/files/sub/real2.txt").get_data() == b"deeper\n"
    # Processed holds the regular files only: no links, nothing else.
    processed = exp / "Processed" / f"tpl-{job['id']}"
    found = sorted(str(p.relative_to(processed)) for p in processed.rglob("*"))
    assert found == ["real.txt", "sub", "sub/real2.txt"]
    assert not any(p.is_symlink() for p in processed.rglob("*"))


def test_a_fifo_in_place_of_the_exit_status_does_not_block_accounting(gw_sqlite):
    """The script makes its exit status and log FIFOs and kills its batch shell, so no
    one writes them: the poller reads neither, and the job ends Failed, not stuck."""
    gw = gw_sqlite
    gw.environment()
    gw.experiment()
    other = gw.run(gw.template(name="fine", script="echo ok\n")["id"])
    bad = gw.run(gw.template(name="bad", script=FIFO_THEN_DIE)["id"])
    with deadline(150):
        bad_job = gw.wait(bad["id"])
        other_job = gw.wait(other["id"])
    assert bad_job["status"] == "Failed" and other_job["status"] == "Completed"
    with deadline(20):
        assert gw.ok("GET", f"/jobs/{bad['id']}/log").get_data() == b""


@pytest.mark.parametrize("script,field,word", [
    # An array is followed task by task, but its tasks share one working directory.
    ("#!/bin/bash\n#SBATCH --array=0-3\necho $SLURM_ARRAY_TASK_ID\n", "workdir", "working directory"),
    ("#!/bin/bash\n#SBATCH -a 1-2000\necho\n", "array", "above the cluster's largest"),
    ("#!/bin/bash\n#SBATCH -c 1\n#SBATCH hetjob\n#SBATCH -c 1\nsrun hostname\n", "script",
     "heterogeneous"),
])
def test_jobs_the_gateway_cannot_follow_whole_are_refused(gw, script, field, word):
    before = set(subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split())
    r = gw.api("POST", "/jobs/sbatch", json={"script": script, "license": "test-lab"})
    assert r.status_code == 400 and r.json["field"] == field and word in r.json["error"], r.json
    assert gw.ok("GET", "/jobs")["total"] == 0
    after = set(subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split())
    assert after <= before  # nothing reached Slurm
