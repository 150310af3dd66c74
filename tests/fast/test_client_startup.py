"""The command-line client starts lean and still behaves as before: `gateway status`,
`gateway jobs` and `gateway-sbatch` load none of the server's libraries (nor click or
requests); they send the token, show every problem of an API error, read their
settings from the environment or client.toml, retry a read — never a submit — on a
broken connection, and refuse a redirect in words. (Their start-up time is measured
by bench/startup.py, not here.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gateway.client import commands, http
from gateway.errors import ClientError
from gateway.slurm import states

ROOT = Path(__file__).resolve().parent.parent.parent
HEAVY = ("flask", "peewee", "requests", "urllib3", "jinja2", "apscheduler", "ldap3", "click",
         "werkzeug", "gateway.models", "gateway.db", "gateway.slurm", "gateway.admin_cli",
         "gateway.config")
JOB = {"id": 7, "status": "Failed", "reason": "out of memory", "user": "alice", "slurm_job_id": "107",
       "license": "lab", "cpu_hours": 0.5, "gpu_hours": 0.0, "finalized": True, "exit_code": 3,
       "output_variables": {"OUT_A": "1"}, "output_files": []}

# Runs an entry point as its console script would, then writes what it imported.
RUNNER = """
import json, sys
entry, modules_file, *argv = sys.argv[1:]
sys.argv = [entry, *argv]
try:
    if entry == "gateway":
        from gateway.cli import main
    else:
        from gateway.client.sbatch_wrapper import main
    main()
finally:
    with open(modules_file, "w") as f:
        json.dump(sorted(sys.modules), f)
"""


class Stub:
    """A stand-in for the gateway's API: answers from ``answers`` ((method, path) ->
    (status, body, headers)), records every request, and can drop a connection without
    answering (``drop``: (method, path) -> how many times)."""

    def __init__(self):
        self.answers: dict[tuple[str, str], tuple[int, object, dict]] = {}
        self.drop: dict[tuple[str, str], int] = {}
        self.seen: list[tuple[str, str, str, bytes]] = []  # method, path, Authorization, body
        self.close_after_answer = False
        self.url = ""


@contextmanager
def stub_api(keep_alive: bool = False) -> Iterator[Stub]:
    stub = Stub()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

        def _answer(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            key = (self.command, self.path)
            stub.seen.append((self.command, self.path, self.headers.get("Authorization", ""), body))
            if stub.drop.get(key):
                stub.drop[key] -= 1
                self.close_connection = True  # closed with no answer, as a reset connection
                return
            status, payload, headers = stub.answers.get(key, (404, {"error": "not found"}, {}))
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if stub.close_after_answer:  # a kept-alive connection the server then closes
                self.close_connection = True

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    stub.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


def run_entry(entry: str, *argv: str, tmp_path: Path, env: dict | None = None,
              stdin: str = "") -> tuple[subprocess.CompletedProcess, set[str]]:
    modules_file = tmp_path / "modules.json"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    done = subprocess.run([sys.executable, "-c", RUNNER, entry, str(modules_file), *argv],
                          env={**clean, "XDG_CONFIG_HOME": str(tmp_path / "config"), **(env or {})},
                          cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=60)
    return done, set(json.loads(modules_file.read_text()))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.partition(".")[0] in HEAVY or m in HEAVY
                  or any(m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("argv", [("status", "7"), ("jobs", "--all"), ("status", "--help")])
def test_gateway_client_commands_load_no_server_library(tmp_path, argv):
    with stub_api() as api:
        api.answers[("GET", "/api/v1/jobs/7")] = (200, JOB, {})
        api.answers[("GET", "/api/v1/jobs?page=1")] = (200, {"jobs": [JOB], "page": 1, "total": 1}, {})
        done, modules = run_entry("gateway", *argv, tmp_path=tmp_path,
                                  env={"GATEWAY_URL": api.url, "GATEWAY_TOKEN": "gw_t"})
    assert done.returncode == 0, done.stderr
    assert heavy_in(modules) == []
    if argv[0] == "status" and argv[1] == "7":
        assert done.stdout.startswith("job 7  Failed (out of memory)  slurm=107  license=lab")
        assert "  OUT_A=1" in done.stdout
        assert api.seen[0][:3] == ("GET", "/api/v1/jobs/7", "Bearer gw_t")


@pytest.mark.parametrize("argv", [("--help",), ("--gw-license", "lab", "--parsable", "--wrap", "hostname")])
def test_gateway_sbatch_loads_no_server_library(tmp_path, argv):
    with stub_api() as api:
        api.answers[("POST", "/api/v1/jobs/sbatch")] = (201, {"id": 7, "slurm_job_id": "107"}, {})
        done, modules = run_entry("gateway-sbatch", *argv, tmp_path=tmp_path,
                                  env={"GATEWAY_URL": api.url, "GATEWAY_TOKEN": "gw_t"})
    assert done.returncode == 0, done.stderr
    assert heavy_in(modules) == []
    if "--wrap" in argv:
        assert done.stdout == "107\n"
        method, path, auth, body = api.seen[0]
        assert (method, path, auth) == ("POST", "/api/v1/jobs/sbatch", "Bearer gw_t")
        assert json.loads(body)["license"] == "lab"


def test_server_side_still_lists_and_forwards_the_client_commands(tmp_path):
    done, modules = run_entry("gateway", "--help", tmp_path=tmp_path)
    assert done.returncode == 0
    for name in ("serve", "worker", "check", "teams", "status", "jobs", "log", "run", "login"):
        assert f"\n  {name} " in done.stdout, done.stdout
    assert "click" in modules
    with stub_api() as api:
        api.answers[("GET", "/api/v1/jobs/7")] = (200, JOB, {})
        verbose, _ = run_entry("gateway", "-v", "status", "7", "--json", tmp_path=tmp_path,
                               env={"GATEWAY_URL": api.url, "GATEWAY_TOKEN": "gw_t"})
    assert verbose.returncode == 0 and json.loads(verbose.stdout)["id"] == 7, verbose.stderr


def test_api_errors_show_every_problem_and_exit_1(tmp_path):
    problems = {"error": "must be a whole number", "field": "inputs.DC_N",
                "problems": [{"field": "inputs.DC_N", "error": "must be a whole number"},
                             {"field": None, "error": "the template is archived"}]}
    with stub_api() as api:
        api.answers[("POST", "/api/v1/templates/t/runs")] = (400, problems, {})
        api.answers[("GET", "/api/v1/jobs/9")] = (404, {"error": "no job 9", "field": "id"}, {})
        run, _ = run_entry("gateway", "run", "t", "DC_N=x", "-p", "p", "-e", "e", "-m", "m", "-l", "l",
                           tmp_path=tmp_path, env={"GATEWAY_URL": api.url, "GATEWAY_TOKEN": "gw_t"})
        missing, _ = run_entry("gateway", "status", "9", tmp_path=tmp_path,
                               env={"GATEWAY_URL": api.url, "GATEWAY_TOKEN": "gw_t"})
        sbatch, _ = run_entry("gateway-sbatch", "--gw-license", "l", "-", tmp_path=tmp_path, stdin="true\n",
                              env={"GATEWAY_URL": api.url + "/nowhere", "GATEWAY_TOKEN": "gw_t"})
    assert run.returncode == 1
    assert run.stderr.splitlines() == ["Error: 2 problems:", "inputs.DC_N: must be a whole number",
                                       "the template is archived"]
    assert missing.returncode == 1 and missing.stderr == "Error: id: no job 9\n"
    assert sbatch.returncode == 1 and sbatch.stderr.startswith("gateway-sbatch: error: not found")
    bad_pair, _ = run_entry("gateway", "run", "t", "N=1", "-p", "p", "-e", "e", "-m", "m", "-l", "l",
                            tmp_path=tmp_path)
    assert bad_pair.returncode == 2 and "'N=1' is not DC_NAME=value" in bad_pair.stderr


def test_settings_from_the_environment_or_client_toml(tmp_path, monkeypatch):
    config = tmp_path / "client.toml"
    monkeypatch.setattr(http, "CONFIG_PATH", str(config))
    monkeypatch.delenv("GATEWAY_URL", raising=False)
    monkeypatch.delenv("GATEWAY_TOKEN", raising=False)
    with pytest.raises(ClientError, match="no gateway configured"):
        http.client_settings()
    saved = http.save_settings("https://gw.example.org/", "gw_saved")
    assert saved == str(config) and config.stat().st_mode & 0o777 == 0o600
    assert http.client_settings() == ("https://gw.example.org", "gw_saved")
    monkeypatch.setenv("GATEWAY_TOKEN", "gw_env")  # the environment wins, key by key
    assert http.client_settings() == ("https://gw.example.org", "gw_env")
    # Any TOML a person writes by hand is read too; a broken file is named.
    config.write_text("# mine\nurl = 'https://other.example.org'  # literal string\n[extra]\nx = 1\n")
    assert http.client_settings() == ("https://other.example.org", "gw_env")
    config.write_text('url = "https://a.example.org"\nurl = "https://b.example.org"\n')
    with pytest.raises(ClientError, match="client.toml"):
        http.client_settings()
    assert http.read_client_config('url = "http://x" # c\n\n token="gw_1"\n') == {
        "url": "http://x", "token": "gw_1"}


def test_a_read_is_retried_on_a_broken_connection_a_submit_never(tmp_path):
    with stub_api() as api:
        api.answers[("GET", "/api/v1/jobs/7")] = (200, JOB, {})
        api.answers[("POST", "/api/v1/jobs/7/cancel")] = (200, {}, {})
        api.drop[("GET", "/api/v1/jobs/7")] = 1
        api.drop[("POST", "/api/v1/jobs/7/cancel")] = 1
        client = http.ApiClient(api.url, "gw_t", timeout=5)
        assert client.get("/jobs/7")["id"] == 7
        assert [s[:2] for s in api.seen] == [("GET", "/api/v1/jobs/7")] * 2
        with pytest.raises(ClientError, match="cannot reach.*may have reached the gateway all the same"):
            client.post("/jobs/7/cancel")
        assert [s[:2] for s in api.seen].count(("POST", "/api/v1/jobs/7/cancel")) == 1


def test_a_kept_alive_connection_closed_by_the_server_is_not_reused_for_a_submit():
    with stub_api(keep_alive=True) as api:
        api.answers[("GET", "/api/v1/licenses")] = (200, [], {})
        api.answers[("POST", "/api/v1/jobs/sbatch")] = (201, {"id": 1, "slurm_job_id": "1"}, {})
        api.close_after_answer = True
        client = http.ApiClient(api.url, "gw_t", timeout=5)
        assert client.get("/licenses") == []
        deadline = time.monotonic() + 5  # until the server's close has reached us
        while not http._dropped(client._conn.sock) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.post("/jobs/sbatch", {"script": "x"})["id"] == 1
        assert [s[0] for s in api.seen] == ["GET", "POST"]


def test_paths_are_quoted_and_redirects_refused_in_words(monkeypatch):
    with stub_api() as api:
        api.answers[("GET", "/api/v1/jobs/7/files/a%20b%3F%23%25.txt")] = (200, b"data", {})
        api.answers[("GET", "/api/v1/me")] = (301, b"", {"Location": "https://gw.example.org/api/v1/me"})
        client = http.ApiClient(api.url + "/", "gw_t", timeout=5)
        assert client.request("GET", "/jobs/7/files/a b?#%.txt").content == b"data"
        with pytest.raises(ClientError, match="redirect to https://gw.example.org/api/v1/me"):
            client.get("/me")
    with pytest.raises(ClientError, match="not a gateway URL"):
        http.ApiClient("gw.example.org", "gw_t")
    monkeypatch.setattr(http, "BACKOFF_SECONDS", 0)  # refused: tried again, then said
    with pytest.raises(ClientError, match="cannot reach the gateway at http://127.0.0.1:9/api/v1"):
        http.ApiClient("http://127.0.0.1:9", "gw_t", timeout=5).get("/me")


def test_login_saves_a_token_that_works(tmp_path):
    with stub_api() as api:
        api.answers[("GET", "/api/v1/me")] = (200, {"username": "alice"}, {})
        api.answers[("POST", "/api/v1/auth/token")] = (201, {"token": "gw_new"}, {})
        done, modules = run_entry("gateway", "login", "--url", api.url, "--token", "gw_mine",
                                  tmp_path=tmp_path)
        assert done.returncode == 0, done.stderr
        config = tmp_path / "config" / "slurm-gateway" / "client.toml"
        assert done.stdout == f"saved to {config}\n" and config.stat().st_mode & 0o777 == 0o600
        assert config.read_text() == f'url = "{api.url}"\ntoken = "gw_mine"\n'
        assert api.seen[-1][:3] == ("GET", "/api/v1/me", "Bearer gw_mine")
        assert heavy_in(modules) == []
        # With a directory password: exchanged for a new token, sent without any token.
        assert http.token_for_password(api.url, "alice", "pw", "cli@here") == "gw_new"
        method, path, auth, body = api.seen[-1]
        assert (method, path, auth) == ("POST", "/api/v1/auth/token", "")
        assert json.loads(body) == {"username": "alice", "password": "pw", "name": "cli@here"}
        api.answers[("GET", "/api/v1/templates")] = (200, b"<html>sign in</html>", {})
        with pytest.raises(ClientError, match="did not answer in JSON: HTTP 200: <html>sign in"):
            http.ApiClient(api.url, "gw_t").get("/templates")


def test_https_checks_certificates_and_host_names(monkeypatch):
    import ssl

    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    context = http._tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_the_clients_status_words_are_the_apis():
    assert (commands.PENDING, commands.RUNNING, commands.COMPLETED) == (
        states.PENDING, states.RUNNING, states.COMPLETED)
    assert commands.WAITING == states.WAITING
