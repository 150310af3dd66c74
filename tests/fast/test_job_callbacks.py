"""Jobs calling back when they start and end: the token, the endpoint and its limits,
the accounting read it causes (the tick's own code, safe beside a tick), and the
callback lines of the rendered script (present only when configured, silent, never
failing or delaying the job, the token never on a command line)."""
from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import gateway.poller as poller
from gateway import job_callbacks
from gateway.charging import license_usage
from gateway.models import Job
from gateway.slurm.states import COMPLETED, PENDING, RUNNING

HEADER = job_callbacks.HEADER


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gw(fake_gw_ready):
    """Callbacks on, with the endpoint's limit and reader on a clock the test moves and
    the reads made by the test (``gw.refresher.run_due()``), not a thread."""
    g = fake_gw_ready
    g.ctx.config = replace(g.ctx.config, callback_url="http://127.0.0.1:9")
    g.clock = Clock()
    g.limit = job_callbacks.RateLimit(clock=g.clock)
    g.refresher = job_callbacks.Refresher(g.ctx, background=False, clock=g.clock)
    g.app.extensions["job_callbacks"] = (g.limit, g.refresher)
    return g


def call(gw, job_id, event="end", token: str | None = "right", headers=None):
    if token == "right":
        token = job_callbacks.token_for(gw.ctx.config, job_id)
    h = {} if token is None else {HEADER: token}
    return gw.client.post(f"/api/v1/jobs/{job_id}/callback", json={"event": event},
                          headers={**h, **(headers or {})})


def row(job) -> Job:
    return Job.get_by_id(job["id"])


# --- the token --------------------------------------------------------------------------

def test_the_token_is_the_jobs_own_and_the_secrets(gw):
    cfg = gw.ctx.config
    token = job_callbacks.token_for(cfg, 5)
    assert len(token) == 64 and token == job_callbacks.token_for(cfg, "5")
    assert token != job_callbacks.token_for(cfg, 6)
    assert token != job_callbacks.token_for(replace(cfg, secret_key="another-secret-of-16+"), 5)
    assert job_callbacks.token_matches(cfg, 5, token) and job_callbacks.token_matches(cfg, 5, f" {token}\n")
    for wrong in (None, "", token[:-1], token.upper(), job_callbacks.token_for(cfg, 6), "é" * 64, "\udcff"):
        assert not job_callbacks.token_matches(cfg, 5, wrong)


# --- the endpoint -----------------------------------------------------------------------

def test_a_callback_schedules_a_read_and_needs_no_session(gw):
    job = gw.run("tpl")
    r = call(gw, job["id"], "start")  # no cookie, no CSRF header, no bearer token
    assert r.status_code == 202, r.json
    assert r.json == {"job": job["id"], "event": "start", "read": "scheduled"}
    assert list(gw.refresher.waiting()) == [job["id"]]


@pytest.mark.parametrize("token", [None, "", "0" * 64, "other-job"])
def test_a_wrong_or_missing_token_is_refused_and_changes_nothing(gw, token):
    job = gw.run("tpl")
    other = gw.run("tpl")
    if token == "other-job":  # a hostile job's own token, for someone else's job
        token = job_callbacks.token_for(gw.ctx.config, other["id"])
    r = call(gw, job["id"], token=token)
    assert r.status_code == 403 and r.json["field"] == HEADER
    assert gw.refresher.waiting() == {}
    # A person's API token is not a job's token either.
    r = call(gw, job["id"], token=gw.token, headers={"Authorization": f"Bearer {gw.token}"})
    assert r.status_code == 403


def test_callbacks_off_means_no_endpoint(gw):
    job = gw.run("tpl")
    gw.ctx.config = replace(gw.ctx.config, callback_url="")
    assert call(gw, job["id"]).status_code == 404


def test_the_event_is_checked_after_the_token(gw):
    job = gw.run("tpl")
    r = call(gw, job["id"], event="finished")
    assert r.status_code == 400 and r.json["field"] == "event"
    r = gw.client.post(f"/api/v1/jobs/{job['id']}/callback", data="x", headers={
        HEADER: job_callbacks.token_for(gw.ctx.config, job["id"])})
    assert r.status_code == 400 and r.json["field"] == "body"
    assert gw.client.post("/api/v1/jobs/x/callback").status_code == 404


def test_a_job_calling_too_often_is_told_to_wait_and_only_its_own_token_counts(gw):
    job = gw.run("tpl")
    for _ in range(10):  # strangers' attempts do not use up the job's allowance
        assert call(gw, job["id"], token="0" * 64).status_code == 403
    for _ in range(gw.limit.per_minute):
        assert call(gw, job["id"]).status_code == 202
    r = call(gw, job["id"])
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    other = gw.run("tpl")
    assert call(gw, other["id"]).status_code == 202  # per job
    gw.clock.now += 61
    assert call(gw, job["id"]).status_code == 202


def test_unknown_and_finished_jobs_get_no_read(gw):
    assert call(gw, 987654).json["read"] == "none"
    job = gw.run("tpl")
    gw.wait(job["id"])
    r = call(gw, job["id"])
    assert r.status_code == 202 and r.json["read"] == "none"
    assert gw.refresher.waiting() == {}


# --- the read it causes -----------------------------------------------------------------

def test_start_and_end_are_read_from_accounting_at_once(gw):
    job = gw.run("tpl", machine_type="double")
    sid = job["slurm_job_id"]
    gw.slurm.start(sid)
    call(gw, job["id"], "start")
    calls = gw.slurm.calls
    assert gw.refresher.run_due() == [job["id"]]
    assert gw.slurm.calls == calls + 1  # one sacct, for this job only
    assert row(job).status == RUNNING and row(job).started_at is not None
    assert gw.refresher.waiting() == {}  # "start": one read
    gw.slurm.finish(sid, elapsed=42)
    call(gw, job["id"], "end")
    assert gw.refresher.run_due() == []  # the end is read once Slurm has had a moment
    gw.clock.now += job_callbacks.END_READS[0]
    gw.refresher.run_due()
    r = row(job)
    assert r.finalized and r.status == COMPLETED and r.cpu_seconds == 84 and r.output_variables is not None
    assert gw.refresher.waiting() == {}
    assert license_usage()["test-lab"][0] == 84


def test_the_job_saying_it_ended_changes_nothing_until_accounting_does(gw):
    job = gw.run("tpl")
    sid = job["slurm_job_id"]
    call(gw, job["id"], "end")  # a lie: it has not even started
    gw.clock.now += 1
    gw.refresher.run_due()
    assert row(job).status == PENDING and not row(job).finalized
    # The reads carry on, backing off, until accounting shows the end or they run out.
    gw.slurm.start(sid)
    gw.clock.now += 1
    gw.refresher.run_due()
    assert row(job).status == RUNNING and list(gw.refresher.waiting()) == [job["id"]]
    gw.slurm.finish(sid, elapsed=7)
    for _ in range(len(job_callbacks.END_READS)):
        gw.clock.now += 20
        gw.refresher.run_due()
    assert row(job).finalized and row(job).cpu_seconds == 7
    assert gw.refresher.waiting() == {}


def test_reads_stop_when_the_schedule_runs_out(gw):
    job = gw.run("tpl")
    call(gw, job["id"], "end")
    for _ in range(len(job_callbacks.END_READS) + 3):
        gw.clock.now += 20
        gw.refresher.run_due()
    assert gw.refresher.waiting() == {} and not row(job).finalized  # the tick carries on


def test_many_callbacks_are_read_in_one_sacct(gw):
    jobs = [gw.run("tpl") for _ in range(5)]
    for j in jobs:
        gw.slurm.start(j["slurm_job_id"])
        call(gw, j["id"], "start")
    calls = gw.slurm.calls
    assert sorted(gw.refresher.run_due()) == sorted(j["id"] for j in jobs)
    assert gw.slurm.calls == calls + 1
    assert all(row(j).status == RUNNING for j in jobs)


def test_slurm_down_during_a_read_changes_nothing(gw):
    job = gw.run("tpl")
    gw.slurm.start(job["slurm_job_id"])
    call(gw, job["id"], "start")
    gw.slurm.down()
    gw.refresher.run_due()
    assert row(job).status == PENDING
    gw.slurm.up()


def test_reads_beside_ticks_neither_double_charge_nor_copy_twice(gw, monkeypatch):
    """A callback's read finalises the job while a tick (another process) is between
    reading Slurm and finishing the job: the tick then leaves it alone."""
    job = gw.run("tpl", machine_type="double")
    sid = job["slurm_job_id"]
    gw.slurm.finish(sid, elapsed=30)
    out = gw.base / "jobs" / str(job["id"]) / "output"
    (out / "result.txt").write_text("42")
    real_read = poller.read_records
    collected = []
    real_collect = poller._collect

    def tick_reads_then_a_callback_finishes_first(slurm, ids, known=()):
        records = real_read(slurm, ids, known)
        monkeypatch.setattr(poller, "read_records", real_read)
        assert poller.refresh_jobs(gw.ctx, [job["id"]]).finalized == 1
        return records

    monkeypatch.setattr(poller, "_collect", lambda *a: collected.append(a[1].id) or real_collect(*a))
    monkeypatch.setattr(poller, "read_records", tick_reads_then_a_callback_finishes_first)
    result = gw.tick()
    assert result.finalized == 0 and collected == [job["id"]]
    r = row(job)
    assert r.finalized and r.cpu_seconds == 60 and license_usage()["test-lab"][0] == 60
    for _ in range(2):
        assert poller.refresh_jobs(gw.ctx, [job["id"]]).updated == 0
        assert gw.tick().updated == 0
    processed = gw.config.data_root / "projects" / "proj" / "exp" / "Processed"
    assert [p.name for p in processed.iterdir()] == [f"tpl-{job['id']}"]
    assert license_usage()["test-lab"][0] == 60


def test_finishing_the_same_job_is_one_at_a_time(gw):
    """Two threads finishing one job (a tick and a callback's read in one process): the
    second leaves it to the first, which finalises it."""
    job = gw.run("tpl")
    gw.slurm.finish(job["slurm_job_id"], elapsed=5)
    inside, order = threading.Event(), []
    real_collect = poller._collect

    def slow_collect(*a):
        order.append("collect")
        inside.set()
        time.sleep(0.3)
        return real_collect(*a)

    poller_collect = poller._collect
    poller._collect = slow_collect
    try:
        t = threading.Thread(target=lambda: poller.refresh_jobs(gw.ctx, [job["id"]]))
        t.start()
        inside.wait(5)
        result = poller.refresh_jobs(gw.ctx, [job["id"]])
        t.join()
    finally:
        poller._collect = poller_collect
    assert order == ["collect"] and result.finalized == 0 and row(job).finalized


# --- the rendered script ----------------------------------------------------------------

def _script(gw, job) -> str:
    return (gw.base / "jobs" / str(job["id"]) / "job.sbatch").read_text()


def test_callback_lines_only_when_configured(gw):
    job = gw.run("tpl")
    text = _script(gw, job)
    token = job_callbacks.token_for(gw.ctx.config, job["id"])
    assert f"gateway_callback_url=http://127.0.0.1:9/api/v1/jobs/{job['id']}/callback" in text
    assert f"gateway_callback_token={token}\n" in text and text.count(token) == 1
    assert "gateway_callback start &" in text and "gateway_callback end || true" in text
    assert "export gateway_callback" not in text
    preview = gw.ok("POST", "/templates/tpl/preview", json={
        "project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab"})["script"]
    assert "/api/v1/jobs/'<job id>'/callback" in preview or "/api/v1/jobs/<job id>/callback" in preview
    assert "gateway_callback_token='(made for each job at submit)'" in preview
    # Those who may read the job's script (the template's editors, say) do not get its token.
    shown = gw.ok("GET", f"/jobs/{job['id']}/script").get_data(as_text=True)
    assert token not in shown and "gateway_callback_token='(hidden)'" in shown
    assert shown.replace("'(hidden)'", token) == text
    gw.ctx.config = replace(gw.ctx.config, callback_url="")
    plain = _script(gw, gw.run("tpl"))
    assert "gateway_callback" not in plain and "X-Gateway-Job-Token" not in plain


class _Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", 0))
        self.seen.append((self.path, dict(self.headers), self.rfile.read(length).decode()))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.seen
    server.shutdown()
    server.server_close()


def _callback_part(base_url: str, token: str = "t0k3n" * 8) -> str:
    """The callback lines of a rendered script, for a job 17 calling ``base_url``."""
    from gateway.job_paths import JobPaths
    from gateway.render import RenderRequest, render_job_script

    text = render_job_script(RenderRequest(
        job_id=17, slurm_job_name="gw-17", template_name="t", template_version=1, language="bash",
        script="true\n", python_executable="", environment="e", environment_version="1",
        environment_setup="", inputs=(), partition="cpu", account="a", cpus=1, memory_mb=1, gpus=0,
        gres=None, software_disk_gb=1, time_limit_minutes=1, paths=JobPaths(Path("/nowhere/17")),
        scratch_root="/tmp", callback_url=f"{base_url}/api/v1/jobs/17/callback", callback_token=token))
    start = text.index("gateway_callback_url=")
    return text[start:text.index("# JOB_WORK_DIR")]


def _run_job(part: str, path_dirs: str, extra: str = "") -> tuple[subprocess.CompletedProcess, float]:
    """A stand-in job: the callback lines, the script's trap and start call, some
    output, then exit 7 (as the rendered script does, under ``set -e`` too)."""
    body = (f"set -e\n{part}{extra}\ntrap 'gateway_callback end || true' EXIT\n"
            "gateway_callback start &\necho job-output\nexit 7\n")
    t = time.monotonic()
    proc = subprocess.run(["/bin/bash", "-c", body], capture_output=True, text=True, timeout=30,
                          env={"PATH": path_dirs, "HOME": "/nonexistent", "http_proxy": "http://127.0.0.1:1"})
    return proc, time.monotonic() - t


def _bin_without_curl(tmp_path: Path) -> str:
    d = tmp_path / "bin"
    d.mkdir()
    for tool in ("bash", "timeout", "sleep"):
        os.symlink(subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True,
                                  text=True).stdout.strip(), d / tool)
    return str(d)


def _events(seen) -> list[tuple[str, str, str]]:
    return sorted((path, headers.get(HEADER), body) for path, headers, body in seen)


def _wait_for(seen, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(seen) < n and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.skipif(not os.path.exists("/usr/bin/curl"), reason="curl is not installed here")
def test_the_script_calls_back_with_curl_silently_keeping_its_status(listener):
    url, seen = listener
    proc, _ = _run_job(_callback_part(url), "/usr/bin:/bin")
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "job-output\n", "")
    _wait_for(seen, 2)
    token = "t0k3n" * 8
    assert _events(seen) == [("/api/v1/jobs/17/callback", token, '{"event":"end"}'),
                             ("/api/v1/jobs/17/callback", token, '{"event":"start"}')]
    assert all(h.get("Content-Type") == "application/json" for _, h, _ in seen)


def test_the_script_calls_back_without_curl(listener, tmp_path):
    url, seen = listener
    proc, _ = _run_job(_callback_part(url), _bin_without_curl(tmp_path))
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "job-output\n", "")
    _wait_for(seen, 2)
    token = "t0k3n" * 8
    assert _events(seen) == [("/api/v1/jobs/17/callback", token, '{"event":"end"}'),
                             ("/api/v1/jobs/17/callback", token, '{"event":"start"}')]


def test_the_token_is_never_on_a_command_line(tmp_path):
    """curl gets it on its standard input; a stand-in curl records both."""
    d = tmp_path / "bin"
    d.mkdir()
    fake = d / "curl"
    fake.write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" >> {tmp_path}/argv\ncat >> {tmp_path}/stdin\n')
    fake.chmod(0o755)
    token = "s3cr3t" * 10
    proc, _ = _run_job(_callback_part("http://127.0.0.1:9", token), f"{d}:/usr/bin:/bin")
    assert proc.returncode == 7
    stdin = tmp_path / "stdin"
    deadline = time.monotonic() + 5
    while not (stdin.exists() and stdin.read_text().count(token) == 2):  # start (in the background), end
        assert time.monotonic() < deadline
        time.sleep(0.02)
    argv = (tmp_path / "argv").read_text()
    assert token not in argv and "--noproxy" in argv and "-q" in argv.splitlines()[0]
    assert f'header = "X-Gateway-Job-Token: {token}"' in stdin.read_text()


def _silent_port() -> socket.socket:
    """A port that takes connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


@pytest.mark.parametrize("curl", [True, False])
def test_an_unreachable_or_silent_gateway_costs_the_job_at_most_about_2_s(tmp_path, curl):
    if curl and not os.path.exists("/usr/bin/curl"):
        pytest.skip("curl is not installed here")
    dirs = "/usr/bin:/bin" if curl else _bin_without_curl(tmp_path)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = f"http://127.0.0.1:{closed.getsockname()[1]}"  # bound, not listening
    silent = _silent_port()
    try:
        for url, most in ((refused, 1.0), (silent and f"http://127.0.0.1:{silent.getsockname()[1]}", 3.5),
                          ("http://no-such-host.invalid:8080", 3.5)):
            proc, took = _run_job(_callback_part(url), dirs)
            assert (proc.returncode, proc.stdout, proc.stderr) == (7, "job-output\n", ""), url
            assert took < most, (url, took)
    finally:
        closed.close()
        silent.close()


@pytest.mark.skipif(not os.path.exists("/usr/bin/curl"), reason="curl is not installed here")
def test_a_gateway_refusing_the_call_changes_nothing_for_the_job():
    """Whatever the gateway answers (403, 404, 429, 500), the job goes on as before."""
    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.send_response(500)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"boom\n")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        proc, _ = _run_job(_callback_part(f"http://127.0.0.1:{server.server_address[1]}"), "/usr/bin:/bin")
        assert (proc.returncode, proc.stdout, proc.stderr) == (7, "job-output\n", "")
    finally:
        server.shutdown()
        server.server_close()


def test_xtrace_in_the_script_does_not_print_the_token(listener):
    url, _ = listener
    token = "x7r4c3" * 10
    part = _callback_part(url, token)
    before, _, after = part.partition("gateway_callback() {")
    proc, _ = _run_job(before + "set -x\ngateway_callback() {" + after, "/usr/bin:/bin")
    assert proc.returncode == 7 and token not in proc.stderr and token not in proc.stdout


def test_a_job_another_process_is_finishing_is_left_to_it(gw):
    """The lock of a job being finished by another process (a byte of jobs_root's lock
    file): a tick leaves that job alone, and finishes it once the lock is let go."""
    job = gw.run("tpl")
    gw.slurm.finish(job["slurm_job_id"], elapsed=5)
    gw.tick()  # opens the lock file
    job = gw.run("tpl")
    gw.slurm.finish(job["slurm_job_id"], elapsed=5)
    holder = subprocess.Popen(
        ["python3", "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
         "fcntl.lockf(fd, fcntl.LOCK_EX, 1, int(sys.argv[2])); print('held', flush=True); sys.stdin.read()",
         str(gw.base / "jobs" / ".finishing.lock"), str(job["id"])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert gw.tick().finalized == 0 and not row(job).finalized
    finally:
        holder.stdin.close()
        holder.wait(5)
    assert gw.tick().finalized == 1 and row(job).finalized


def test_the_callback_url_is_checked_at_start(monkeypatch):
    from gateway.config import from_dict
    from gateway.errors import ConfigError

    for name in ("GATEWAY_CALLBACK_URL", "GATEWAY_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)

    def load(url=None):
        return from_dict({"gateway": {"secret_key": "s" * 16, **({"callback_url": url} if url else {})}})

    assert load().callback_url == "" and not job_callbacks.enabled(load())
    assert load("http://gw.cluster:8080/").callback_url == "http://gw.cluster:8080"
    assert job_callbacks.url_for(load("https://gw/base"), 3) == "https://gw/base/api/v1/jobs/3/callback"
    for bad in ("gw:8080", "ftp://gw", "http://", "http://gw/?a=1", "http://gw/#x", "http://gw/'$(id)'",
                "http://gw/ x", 'http://gw/"'):
        with pytest.raises(ConfigError) as e:
            load(bad)
        assert e.value.key == "gateway.callback_url", bad
    monkeypatch.setenv("GATEWAY_CALLBACK_URL", "http://10.0.0.1:8080")
    assert load("http://gw:1").callback_url == "http://10.0.0.1:8080"
    monkeypatch.setenv("GATEWAY_CALLBACK_URL", "")  # empty: the file's
    assert load("http://gw:1").callback_url == "http://gw:1"
    monkeypatch.setenv("GATEWAY_CALLBACK_URL", "gw:1")
    with pytest.raises(ConfigError) as e:
        load()
    assert e.value.key == "GATEWAY_CALLBACK_URL"
