"""A gateway killed (SIGKILL, master and workers) in the middle of submits loses no job
and charges none twice: a row left "submitting" is adopted by its unique Slurm job
name if Slurm has the job, and failed as not submitted otherwise, within a bounded
time of the next poller tick. Real gunicorn, real sbatch, real Slurm."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from gateway import poller
from gateway.config import HELPER_PATH
from gateway.db import utcnow
from gateway.models import Job
from gateway.runs import slurm_job_name
from gateway.slurm.states import COMPLETED, FAILED
from gateway.wsgi_server import free_port
from tests.conftest import SERVICE_USER, as_service, hand_to_service

SLURM_TOOLS = ("sacct", "squeue", "scancel", "sinfo", "sacctmgr", "scontrol")


@pytest.fixture
def slow_sbatch(gw_sqlite):
    """A Slurm bin dir whose sbatch waits 6 s after Slurm took the job, before it
    answers: a kill in that window leaves a job in Slurm whose id the gateway never
    recorded. The config points `slurm.bin_dir` at it."""
    gw = gw_sqlite
    bindir = gw.base / "slurm-bin"
    bindir.mkdir()
    (bindir / "sbatch").write_text("#!/bin/sh\n/usr/bin/sbatch \"$@\"\nrc=$?\nsleep 6\nexit $rc\n")
    os.chmod(bindir / "sbatch", 0o755)
    for tool in SLURM_TOOLS:
        os.symlink(f"/usr/bin/{tool}", bindir / tool)
    os.chmod(bindir, 0o755)
    text = gw.config_path.read_text().replace('[slurm]\n', f'[slurm]\nbin_dir = "{bindir}"\n', 1)
    config_path = gw.base / "gateway-slow-sbatch.toml"
    config_path.write_text(text)
    os.chmod(config_path, 0o600)
    # The gateway reaches sbatch only through sudo, whose rule names /usr/bin/sbatch and
    # the submit helper without arguments: this test's slow one, and the helper that runs
    # it, get a rule of their own while it runs.
    rule = Path("/etc/sudoers.d/gateway-test-slow-sbatch")
    rule.write_text(f"{SERVICE_USER} ALL=(gwjob) NOPASSWD: {bindir}/sbatch, {HELPER_PATH} {bindir}\n")
    os.chmod(rule, 0o440)
    hand_to_service(gw.base)
    yield config_path
    rule.unlink()


def a_template(gw, script: str) -> dict:
    gw.environment()
    gw.experiment()
    return gw.template(script=script)


def start_server(config_path):
    port = free_port()
    proc = subprocess.Popen(as_service([sys.executable, "-m", "gateway.cli", "serve", "--bind",
                                        f"127.0.0.1:{port}", "--workers", "2", "--no-poller"]),
                            env={**os.environ, "GATEWAY_CONFIG": str(config_path)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/machine-types", timeout=1)
        except urllib.error.HTTPError:
            break  # 401: it answers
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "gateway serve did not start"
            time.sleep(0.2)
    return proc, f"http://127.0.0.1:{port}"


def kill_all(proc):
    os.killpg(proc.pid, signal.SIGKILL)  # master, workers and their sbatch children
    proc.wait()


def post_run(url, token, template_id, results):
    body = json.dumps({"project": "proj", "experiment": "exp", "machine_type": "small",
                       "license": "test-lab", "inputs": {}}).encode()
    req = urllib.request.Request(f"{url}/api/v1/templates/{template_id}/runs", data=body, method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            results.append((r.status, json.loads(r.read())))
    except urllib.error.HTTPError as e:
        results.append((e.code, None))
    except OSError:
        results.append((None, None))  # the server died under it


def later(monkeypatch, seconds):
    """The poller's clock, ``seconds`` ahead: time passing without waiting for it."""
    real = poller.utcnow
    monkeypatch.setattr(poller, "utcnow", lambda: real() + timedelta(seconds=seconds))


def slurm_jobs_since(start):
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-a", "-S", start, "-o", "JobIDRaw,JobName"],
                         capture_output=True, text=True, check=True).stdout
    return {line.split("|")[0]: line.split("|", 1)[1] for line in out.splitlines() if line}


def settle(gw, monkeypatch):
    """What the poller does after a restart: adopt, then (past the give-up time) fail
    what Slurm never had, then follow the adopted jobs to their end."""
    later(monkeypatch, poller.UNCONFIRMED_GRACE_S + 30)
    gw.tick()
    later(monkeypatch, poller.UNCONFIRMED_GIVE_UP_S + 60)
    gw.tick()
    monkeypatch.undo()
    deadline = time.monotonic() + 120
    while Job.select().where(Job.finalized == False).exists():  # noqa: E712
        assert time.monotonic() < deadline, list(Job.select().where(Job.finalized == False).dicts())  # noqa: E712
        gw.tick()
        time.sleep(0.5)


def test_killed_after_slurm_took_the_job_before_the_id_was_recorded(gw_sqlite, slow_sbatch, monkeypatch):
    gw = gw_sqlite
    tpl = a_template(gw, "echo ran; sleep 1\n")
    proc, url = start_server(slow_sbatch)
    results = []
    t = threading.Thread(target=post_run, args=(url, gw.token, tpl["id"], results))
    t.start()
    deadline = time.monotonic() + 30
    while not (Job.select().exists() and in_slurm(slurm_job_name(Job.get()))):
        assert time.monotonic() < deadline, "the job never reached Slurm"
        time.sleep(0.2)
    kill_all(proc)
    t.join()
    row = Job.get()
    assert row.slurm_job_id is None and row.reason == "submitting"  # the crash left it so
    # A row written by a crash just before sbatch ran: Slurm never had it.
    never = Job.create(**{**{k: v for k, v in row.__data__.items() if k != "id"},
                          "submitted_at": utcnow() - timedelta(seconds=5)})
    gw.tick()  # too young yet: nothing is decided
    assert Job.get_by_id(row.id).slurm_job_id is None and not Job.get_by_id(never.id).finalized
    settle(gw, monkeypatch)
    adopted, failed = Job.get_by_id(row.id), Job.get_by_id(never.id)
    assert adopted.status == COMPLETED and adopted.slurm_job_id, adopted.reason
    acct = final_accounting(gw, adopted)
    assert adopted.cpu_seconds == int(acct["CPUTimeRAW"])
    assert failed.status == FAILED and failed.reason.startswith("not submitted")


def in_slurm(name: str) -> bool:
    """Slurm has a job of that name (a one-second job may have left squeue already)."""
    queued = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True)
    if queued.stdout.strip():
        return True
    acct = subprocess.run(["sacct", "-X", "-n", "-P", "-a", "--name", name, "-o", "JobIDRaw",
                           "-S", "now-5minutes"], capture_output=True, text=True)
    return bool(acct.stdout.strip())


def final_accounting(gw, row):
    """The job's accounting record once it is whole (for a moment right after the end,
    sacct can show a record without its name)."""
    deadline = time.monotonic() + 20
    while True:
        acct = gw.sacct(row.slurm_job_id, "CPUTimeRAW,JobName,State")
        if acct["JobName"] == slurm_job_name(row) and acct["State"] == "COMPLETED":
            return acct
        assert time.monotonic() < deadline, acct
        time.sleep(0.5)


def test_killed_at_random_during_a_burst_leaves_nothing_behind(gw_sqlite, slow_sbatch, monkeypatch):
    gw = gw_sqlite
    tpl = a_template(gw, "echo ran\n")
    started = time.time()
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started - 2))
    proc, url = start_server(slow_sbatch)
    results = []

    def client():
        for _ in range(3):
            post_run(url, gw.token, tpl["id"], results)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(random.uniform(2.0, 9.0))
    deadline = time.monotonic() + 10
    while not Job.select().where(Job.slurm_job_id.is_null()).exists():  # some submit in flight
        assert time.monotonic() < deadline, "no submit was in flight"
        time.sleep(0.05)
    kill_all(proc)
    for t in threads:
        t.join()
    acknowledged = [body["id"] for status, body in results if status == 201]
    assert Job.select().where(Job.slurm_job_id.is_null()).count() >= 1  # the kill caught some mid-submit
    settle(gw, monkeypatch)
    rows = list(Job.select())
    assert all(Job.get_or_none(Job.id == i) for i in acknowledged)  # no acknowledged job lost
    assert not [r.id for r in rows if not r.finalized or (r.slurm_job_id is None and r.status != FAILED)]
    # Every Slurm job the burst made belongs to exactly one row, and is charged from it.
    # Ours: named by a row submitted during this test (the name carries its time, in µs).
    ours = {i: n for i, n in slurm_jobs_since(start).items()
            if (m := re.fullmatch(r"gw-\d+-(\d+)", n)) and int(m.group(1)) >= started * 1e6 - 1e6}
    by_slurm_id = {r.slurm_job_id: r for r in rows if r.slurm_job_id}
    assert set(ours) <= set(by_slurm_id), set(ours) - set(by_slurm_id)
    for slurm_id, name in ours.items():
        row = by_slurm_id[slurm_id]
        assert name == slurm_job_name(row) and row.status == COMPLETED
        assert row.cpu_seconds == int(final_accounting(gw, row)["CPUTimeRAW"])
