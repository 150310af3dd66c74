"""`gateway` subcommands for SSH users: templates, run, jobs, status, log, fetch, cancel."""
from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import click

from ..hours import format_hours
from ..slurm.states import COMPLETED, PENDING, RUNNING, WAITING
from .http import ApiClient, ClientError, save_settings, token_for_password


def _client() -> ApiClient:
    try:
        return ApiClient()
    except ClientError as e:
        raise click.ClickException(str(e)) from None


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ClientError as e:
        raise click.ClickException(str(e)) from None


def _print_job(job: dict, show_user: bool = False) -> None:
    click.echo(f"job {job['id']}  {job['status']}"
               + (f" ({job['reason']})" if job.get("reason") else "")
               + (f"  by {job['user']}" if show_user else "")
               + f"  slurm={job.get('slurm_job_id') or '-'}  license={job['license']}"
               + f"  cpu_h={format_hours(job['cpu_hours'])} gpu_h={format_hours(job['gpu_hours'])}")


def register(cli: click.Group) -> None:
    @cli.command("login")
    @click.option("--url", required=True, help="Gateway URL, e.g. https://gateway.example.org")
    @click.option("--username", default=None, help="Log in with your directory account")
    @click.option("--token", default=None, help="Use an existing API token instead")
    def login(url, username, token):
        """Save the gateway URL and an API token for later commands.

        With --username, asks for your password and creates a token for this machine.
        """
        if username:
            password = click.prompt("Password", hide_input=True)
            token = _call(token_for_password, url, username, password, f"cli@{socket.gethostname()}")
        elif not token:
            token = click.prompt("API token", hide_input=True)
        _call(ApiClient(url, token).get, "/me")
        click.echo(f"saved to {save_settings(url, token)}")

    @cli.command("templates")
    @click.option("--json", "as_json", is_flag=True)
    def templates(as_json):
        """List the Job Templates you can see."""
        rows = _call(_client().get, "/templates")
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for t in rows:
            inputs = " ".join(i["name"] for i in t["inputs"])
            click.echo(f"{t['id']:>4}  {t['name']:<24} v{t['latest_version']:<3} {t['status']:<12} "
                       f"{t['language']:<6} {inputs}")

    @cli.command("run")
    @click.argument("template")
    @click.argument("values", nargs=-1)
    @click.option("-p", "--project", required=True)
    @click.option("-e", "--experiment", required=True)
    @click.option("-m", "--machine-type", required=True)
    @click.option("-l", "--license", "license_", required=True)
    @click.option("--disk", "disk", type=int, default=None, help="Local software disk, GB")
    @click.option("--time", "time_limit", type=int, default=None, help="Time limit, minutes")
    @click.option("--version", type=int, default=None, help="Template version (default: latest)")
    @click.option("--preview", is_flag=True, help="Print the sbatch script instead of submitting")
    @click.option("--wait", is_flag=True, help="Wait until the job ends; exit 1 if it failed")
    def run(template, values, project, experiment, machine_type, license_, disk, time_limit,
            version, preview, wait):
        """Run TEMPLATE (name or id) with DC_NAME=value pairs."""
        inputs = {}
        for pair in values:
            name, eq, value = pair.partition("=")
            if not eq or not name.startswith("DC_"):
                raise click.BadParameter(f"{pair!r} is not DC_NAME=value", param_hint="VALUES")
            inputs[name] = value
        payload = {"project": project, "experiment": experiment, "machine_type": machine_type,
                   "license": license_, "inputs": inputs}
        for key, value in (("software_disk_gb", disk), ("time_limit_minutes", time_limit),
                           ("version", version)):
            if value is not None:
                payload[key] = value
        client = _client()
        if preview:
            click.echo(_call(client.post, f"/templates/{template}/preview", payload)["script"], nl=False)
            return
        job = _call(client.post, f"/templates/{template}/runs", payload)
        click.echo(f"submitted job {job['id']} (Slurm job {job['slurm_job_id']})")
        if wait:
            sys.exit(_wait(client, job["id"]))

    @cli.command("jobs")
    @click.option("--all", "every", is_flag=True, help="Every job you can see, not only yours")
    @click.option("--status", default=None)
    @click.option("--template", default=None)
    @click.option("--project", default=None)
    @click.option("--page", type=int, default=1)
    def list_jobs(every, status, template, project, page):
        """List your jobs, newest first (--all: every job you can see)."""
        params = {k: v for k, v in (("status", status), ("template", template),
                                    ("project", project), ("page", page)) if v}
        if not every:
            params["mine"] = "1"
        result = _call(_client().get, "/jobs", params=params)
        click.echo(jobs_heading(every))
        for job in result["jobs"]:
            _print_job(job, show_user=every)
        click.echo(f"page {result['page']}, {result['total']} jobs in all")

    @cli.command("status")
    @click.argument("job_id", type=int)
    @click.option("--json", "as_json", is_flag=True)
    def status(job_id, as_json):
        """Show one job: status, reason, output variables, output files."""
        job = _call(_client().get, f"/jobs/{job_id}")
        if as_json:
            click.echo(json.dumps(job, indent=2))
            return
        _print_job(job)
        for name, value in job["output_variables"].items():
            click.echo(f"  {name}={value}")
        for f in job["output_files"]:
            click.echo(f"  output: {f['path']} ({f['size']} bytes)")

    @cli.command("log")
    @click.argument("job_id", type=int)
    @click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends")
    def log(job_id, follow):
        """Print the job log (says on stderr when the job has not started, and why)."""
        client = _client()
        _call(print_log, client, job_id, follow, sys.stdout.buffer,
              lambda line: click.echo(line, err=True))

    @cli.command("fetch")
    @click.argument("job_id", type=int)
    @click.option("-d", "--dest", type=click.Path(file_okay=False), default=None)
    def fetch(job_id, dest):
        """Download the job's output files into DEST (default ./job-<id>)."""
        client = _client()
        job = _call(client.get, f"/jobs/{job_id}")
        target = Path(dest or f"job-{job_id}")
        for f in job["output_files"]:
            r = _call(client.request, "GET", f"/jobs/{job_id}/files/{f['path']}")
            out = (target / f["path"]).resolve()
            if target.resolve() not in out.parents:
                raise click.ClickException(f"refusing to write {f['path']} outside {target}")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(r.content)
            click.echo(f"{out} ({len(r.content)} bytes)")

    @cli.command("cancel")
    @click.argument("job_id", type=int)
    def cancel(job_id):
        """Cancel a pending or running job."""
        _call(_client().post, f"/jobs/{job_id}/cancel")
        click.echo(f"cancel requested for job {job_id}")


def jobs_heading(every: bool) -> str:
    """The first line of `gateway jobs`: which jobs it lists."""
    return "every job you can see:" if every else "your jobs (use --all for every job you can see):"


def why_waiting(job: dict) -> str:
    """Why a pending job has not started, from the reason the gateway gives (plain words,
    Slurm's code after them), worded to follow "waiting to start: "."""
    reason = (job.get("reason") or "").strip().removeprefix(WAITING).removeprefix("waiting ")
    if reason == "submitting":
        return "being submitted to Slurm"
    return reason or "in Slurm's queue"


def print_log(client: ApiClient, job_id: int, follow: bool, out: BinaryIO, say: Callable[[str], None],
              sleep: Callable[[float], None] = time.sleep, interval: float = 2.0) -> None:
    """Write the job's log to ``out``; with ``follow``, until the job has ended.

    While the job is pending there is no log yet: ``say`` (stderr) tells that it is
    waiting and why, again whenever the reason changes, and when it starts running.
    """
    offset, said = 0, ""
    while True:
        r = client.request("GET", f"/jobs/{job_id}/log", params={"offset": offset})
        out.write(r.content)
        out.flush()
        offset = int(r.headers.get("X-Log-Offset", offset))
        pending = r.headers.get("X-Job-Status") == PENDING
        if pending and not r.content:
            why = why_waiting(client.get(f"/jobs/{job_id}"))
            if why != said:
                say(f"job {job_id} is waiting to start: {why}; "
                    + ("its log follows once it runs" if follow
                       else f"`gateway log {job_id} --follow` waits for it"))
                said = why
        elif said and not pending:
            status = r.headers.get("X-Job-Status", RUNNING)
            say(f"job {job_id} is running" if status == RUNNING else f"job {job_id} has ended: {status}")
            said = ""
        if not follow or (r.headers.get("X-Job-Finalized") == "true" and not r.content):
            return
        if not r.content:
            sleep(interval)


def _wait(client: ApiClient, job_id: int, interval: float = 2.0, job_exit_code: bool = False) -> int:
    """Wait for the job to end; exit 0 if it completed, else 1 — or, as ``sbatch --wait``
    does, with the job's own exit code (``job_exit_code``; never 0 for a job that failed)."""
    while True:
        job = _call(client.get, f"/jobs/{job_id}")
        if job["finalized"]:
            _print_job(job)
            if job["status"] == COMPLETED:
                return 0
            code = job.get("exit_code")
            return code if job_exit_code and isinstance(code, int) and 0 < code < 256 else 1
        time.sleep(interval)
