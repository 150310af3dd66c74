"""`gateway` subcommands for SSH users: login, templates, run, sweep, compare, jobs,
status, log, fetch, cancel, licenses, budget.

They start as a new process for every status check, so they import only the standard
library's argparse, http.client and json: click's import alone takes about as long as
a bare Python with http.client, and the server's modules (Flask, peewee, the Slurm
client) are never needed to speak the REST API. `gateway.cli` sends these names here
before it loads anything else.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

from ..errors import ClientError
from ..hours import format_hours
from .http import ApiClient, save_settings, token_for_password

TYPE_CHECKING = False  # importing typing would cost more than this whole module
if TYPE_CHECKING:
    import argparse
    from typing import BinaryIO

# The API's status words and pending-reason prefix, as gateway/slurm/states.py defines
# them (a fast test keeps the two equal): importing that module would load dataclasses
# and the Slurm client into every client start.
PENDING, RUNNING, COMPLETED = "Pending", "Running", "Completed"
WAITING = "waiting: "


class UsageError(Exception):
    """The command line is wrong: shown with the command's usage, exit status 2."""


def _argument_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """An argparse parser laid out for the terminal's width. argparse is imported here
    because gateway-sbatch loads this module but parses its own options; the width is
    given because argparse, left to find it, imports shutil (with bz2 and lzma) for
    every parser it builds."""
    import argparse

    class HelpLayout(argparse.RawDescriptionHelpFormatter):
        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                     width: int | None = None):
            super().__init__(prog, indent_increment, max_help_position, width or _columns() - 2)

    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpLayout)


def _columns() -> int:
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80


class Command:
    """One subcommand: its function, which gets the parsed arguments, and those arguments
    as argparse.add_argument calls."""

    def __init__(self, name: str, run: Callable[[argparse.Namespace], int | None],
                 arguments: tuple[tuple[tuple, dict], ...]):
        self.name, self.run, self.arguments = name, run, arguments

    @property
    def summary(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0]

    def parser(self) -> argparse.ArgumentParser:
        parser = _argument_parser(f"gateway {self.name}", self.run.__doc__)
        for names, options in self.arguments:
            parser.add_argument(*names, **options)
        return parser


COMMANDS: dict[str, Command] = {}


def arg(*names: str, **options) -> tuple[tuple, dict]:
    return names, options


def command(name: str, *arguments: tuple[tuple, dict]):
    def register(run):
        COMMANDS[name] = Command(name, run, arguments)
        return run
    return register


def main(argv: list[str]) -> int:
    """Run ``argv`` (a command name and its arguments); the exit status. Errors are
    printed as `gateway`'s other commands print them ("Error: ...")."""
    cmd = COMMANDS[argv[0]]
    parser = cmd.parser()
    args = parser.parse_intermixed_args(argv[1:])
    try:
        return cmd.run(args) or 0
    except UsageError as e:
        parser.error(str(e))
    except ClientError as e:
        sys.stdout.flush()
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # how `log --follow` is stopped
        return 130
    except BrokenPipeError:  # `gateway jobs | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


def _client() -> ApiClient:
    return ApiClient()


def _echo_err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _print_job(job: dict, show_user: bool = False) -> None:
    print(f"job {job['id']}  {job['status']}"
          + (f" ({job['reason']})" if job.get("reason") else "")
          + (f"  by {job['user']}" if show_user else "")
          + f"  slurm={job.get('slurm_job_id') or '-'}  license={job['license']}"
          + f"  cpu_h={format_hours(job['cpu_hours'])} gpu_h={format_hours(job['gpu_hours'])}",
          flush=True)


@command("login",
         arg("--url", required=True, help="Gateway URL, e.g. https://gateway.example.org"),
         arg("--username", default=None, help="Log in with your directory account"),
         arg("--token", default=None, help="Use an existing API token instead"))
def login(args: argparse.Namespace) -> None:
    """Save the gateway URL and an API token for later commands.

    With --username, asks for your password and creates a token for this machine.
    """
    import getpass
    import socket

    token = args.token
    if args.username:
        password = getpass.getpass("Password: ")
        token = token_for_password(args.url, args.username, password, f"cli@{socket.gethostname()}")
    elif not token:
        token = getpass.getpass("API token: ")
    ApiClient(args.url, token).get("/me")
    print(f"saved to {save_settings(args.url, token)}")


@command("templates", arg("--json", dest="as_json", action="store_true"))
def templates(args: argparse.Namespace) -> None:
    """List the Job Templates you can see."""
    rows = _client().get("/templates")
    if args.as_json:
        print(json.dumps(rows, indent=2))
        return
    for t in rows:
        inputs = " ".join(i["name"] for i in t["inputs"])
        print(f"{t['id']:>4}  {t['name']:<24} v{t['latest_version']:<3} {t['status']:<12} "
              f"{t['language']:<6} {inputs}")


@command("run",
         arg("template", help="template name or id"),
         arg("values", nargs="*", metavar="DC_NAME=value"),
         arg("-p", "--project", required=True),
         arg("-e", "--experiment", required=True),
         arg("-m", "--machine-type", required=True),
         arg("-l", "--license", dest="license_", metavar="LICENSE", required=True),
         arg("--disk", type=int, default=None, metavar="GB", help="Local software disk, GB"),
         arg("--time", dest="time_limit", type=int, default=None, metavar="MINUTES",
             help="Time limit, minutes"),
         arg("--version", type=int, default=None, metavar="N",
             help="Template version (default: latest)"),
         arg("--preview", action="store_true", help="Print the sbatch script instead of submitting"),
         arg("--wait", action="store_true", help="Wait until the job ends; exit 1 if it failed"),
         arg("--notify", choices=("end", "failure", "none"),
             help="Be told (e-mail, webhook) when it ends, or only if it fails (default: your setting)"),
         arg("--sweep", action="store_true",
             help="Run over many values: DC_X=1,2,3, DC_X=1..10 or DC_X='1..10 step 2', "
                  "DC_DATA='raw/*.h5'; one task per value (per combination), as one Slurm array"),
         arg("--throttle", type=int, default=None, metavar="N",
             help="A sweep's tasks running at once (implies --sweep)"),
         arg("--zip", action="store_true",
             help="Take the swept inputs' values side by side, not every combination (implies --sweep)"))
def run(args: argparse.Namespace) -> int | None:
    """Run TEMPLATE (name or id) with DC_NAME=value pairs."""
    sweep = args.sweep or args.throttle is not None or args.zip
    inputs: dict = {}
    for pair in args.values:
        name, eq, value = pair.partition("=")
        if not eq or not name.startswith("DC_"):
            raise UsageError(f"{pair!r} is not DC_NAME=value")
        # In a sweep, a value with a list, a range or a pattern is many values; the
        # gateway reads it by the input's type. Outside one, every value is taken as typed.
        inputs[name] = {"many": value} if sweep and any(m in value for m in MANY_MARKS) else value
    payload = {"project": args.project, "experiment": args.experiment,
               "machine_type": args.machine_type, "license": args.license_, "inputs": inputs}
    for key, value in (("software_disk_gb", args.disk), ("time_limit_minutes", args.time_limit),
                       ("version", args.version), ("notify", args.notify)):
        if value is not None:
            payload[key] = value
    client = _client()
    if sweep:
        if args.preview:
            raise UsageError("--preview shows one job's script: preview a sweep's first task by "
                             "giving its values without --sweep")
        payload["mode"] = "zip" if args.zip else "product"
        if args.throttle is not None:
            payload["throttle"] = args.throttle
        made = client.post(f"/templates/{args.template}/sweeps", payload)
        print(f"submitted sweep {made['id']}: {made['tasks']} tasks as Slurm array "
              f"{', '.join(made['array_job_ids'])}", flush=True)
        return _wait_sweep(client, made["id"]) if args.wait else None
    if args.preview:
        shown = client.post(f"/templates/{args.template}/preview", payload)
        sys.stdout.write(shown["script"])
        for line in estimate_lines(shown):
            _echo_err(line)
        return None
    job = client.post(f"/templates/{args.template}/runs", payload)
    print(f"submitted job {job['id']} (Slurm job {job['slurm_job_id']})", flush=True)
    return _wait(client, job["id"]) if args.wait else None


@command("sweep",
         arg("sweep_id", type=int),
         arg("--csv", action="store_true", help="Print the results table as CSV"),
         arg("--cancel", action="store_true", help="Cancel every unfinished task"),
         arg("--rerun-failed", action="store_true", help="Run the failed tasks again, as a new sweep"),
         arg("--json", dest="as_json", action="store_true"))
def sweep_command(args: argparse.Namespace) -> None:
    """Show a sweep: its tasks by status, each task's inputs and OUT_ values."""
    client = _client()
    if args.csv:
        sys.stdout.write(client.request("GET", f"/sweeps/{args.sweep_id}/results.csv").text)
        return
    if args.cancel:
        client.post(f"/sweeps/{args.sweep_id}/cancel")
        print(f"cancel sent for every unfinished task of sweep {args.sweep_id}")
    if args.rerun_failed:
        again = client.post(f"/sweeps/{args.sweep_id}/rerun-failed")
        print(f"submitted sweep {again['id']}: the {again['tasks']} failed task(s) of sweep {args.sweep_id}")
        return
    s = client.get(f"/sweeps/{args.sweep_id}")
    if len(s["jobs"]) < s["tasks"]:  # the API lists a page of tasks unless asked for all
        s = client.get(f"/sweeps/{args.sweep_id}", {"limit": s["tasks"]})
    if args.as_json:
        print(json.dumps(s, indent=2))
        return
    print(_sweep_line(s))
    for job in s["jobs"]:
        swept = " ".join(f"{n}={job['inputs'].get(n)}" for n in s["swept"])
        outs = " ".join(f"{k}={v}" for k, v in job["output_variables"].items())
        print(f"  task {job['array_task']:>4}  job {job['id']}  {job['status']:<9} {swept}  {outs}".rstrip())


def _sweep_line(s: dict) -> str:
    counts = ", ".join(f"{status} {n}" for status, n in s["status_counts"].items())
    return f"sweep {s['id']}: {s['tasks']} tasks ({counts})"


def _wait_sweep(client: ApiClient, sweep_id: int, interval: float = 3.0) -> int:
    """Wait for every task; exit 0 if all completed, else 1."""
    while True:
        s = client.get(f"/sweeps/{sweep_id}")
        if s["finished"]:
            print(_sweep_line(s))
            return 0 if s["status_counts"].get(COMPLETED, 0) == s["tasks"] else 1
        time.sleep(interval)


@command("compare",
         arg("job_ids", nargs="+", type=int, metavar="JOB", help="two or more runs of one template"),
         arg("--csv", action="store_true", help="Print the table as CSV"),
         arg("--json", dest="as_json", action="store_true"))
def compare(args: argparse.Namespace) -> None:
    """Show runs of one template side by side: inputs that differ, OUT_ values, status."""
    ids = ",".join(str(i) for i in args.job_ids)
    client = _client()
    if args.csv:
        sys.stdout.write(client.request("GET", "/jobs/compare.csv", params={"ids": ids}).text)
        return
    c = client.get("/jobs/compare", params={"ids": ids})
    if args.as_json:
        print(json.dumps(c, indent=2))
        return
    print(f"{len(c['rows'])} runs of {_shown(c['template']['name'])}")
    if c["same"]:
        print("same in all: " + "  ".join(f"{_shown(k)}={_shown(v)}" for k, v in c["same"].items()))
    table = [[_shown(h) for h in c["columns"]]] + [[_shown(v) for v in row] for row in c["rows"]]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _shown(value) -> str:
    """A value a job set, for the terminal: control characters (escape sequences a
    hostile job could print into someone's terminal) shown as '?'."""
    text = "-" if value is None else str(value)
    return "".join(ch if ch.isprintable() else "?" for ch in text)


@command("jobs",
         arg("--all", dest="every", action="store_true", help="Every job you can see, not only yours"),
         arg("--status", default=None),
         arg("--template", default=None),
         arg("--project", default=None),
         arg("--page", type=int, default=1))
def list_jobs(args: argparse.Namespace) -> None:
    """List your jobs, newest first (--all: every job you can see)."""
    params = {k: v for k, v in (("status", args.status), ("template", args.template),
                                ("project", args.project), ("page", args.page)) if v}
    if not args.every:
        params["mine"] = "1"
    result = _client().get("/jobs", params=params)
    print(jobs_heading(args.every))
    for job in result["jobs"]:
        _print_job(job, show_user=args.every)
    print(f"page {result['page']}, {result['total']} jobs in all")


@command("status", arg("job_id", type=int), arg("--json", dest="as_json", action="store_true"))
def status(args: argparse.Namespace) -> None:
    """Show one job: status, reason, output variables, output files, what it used."""
    job = _client().get(f"/jobs/{args.job_id}")
    if args.as_json:
        print(json.dumps(job, indent=2))
        return
    _print_job(job)
    for name, value in job["output_variables"].items():
        print(f"  {name}={value}")
    for f in job["output_files"]:
        print(f"  output: {f['path']} ({f['size']} bytes)")
    for line in efficiency_lines(job.get("efficiency")):
        print(f"  {line}")


def efficiency_lines(shown: dict | None) -> list[str]:
    """What an ended job used and its warnings; how to run it again with more."""
    if not shown:
        return []
    def pct(v):
        return "?" if v is None else f"{v:g} %"
    lines = [f"used: CPU {pct(shown['cpu_percent'])}, memory {pct(shown['memory_percent'])}, "
             f"time {pct(shown['time_percent'])} of what it asked for"]
    lines += [f"note: {w}" for w in shown["warnings"]]
    if shown.get("rerun_with_more"):
        lines.append("run it again with more: POST /api/v1/jobs/<id>/rerun-with-more, or the job's page")
    return lines


@command("log",
         arg("job_id", type=int),
         arg("-f", "--follow", action="store_true", help="Keep printing until the job ends"))
def log(args: argparse.Namespace) -> None:
    """Print the job log (says on stderr when the job has not started, and why)."""
    print_log(_client(), args.job_id, args.follow, sys.stdout.buffer, _echo_err)


@command("fetch",
         arg("job_id", type=int),
         arg("-d", "--dest", default=None, help="folder to write into (default ./job-<id>)"))
def fetch(args: argparse.Namespace) -> None:
    """Download the job's output files into DEST (default ./job-<id>)."""
    from pathlib import Path

    client = _client()
    job = client.get(f"/jobs/{args.job_id}")
    target = Path(args.dest or f"job-{args.job_id}")
    if target.exists() and not target.is_dir():
        raise UsageError(f"-d/--dest: {target} is a file, not a folder")
    for f in job["output_files"]:
        out = (target / f["path"]).resolve()
        if target.resolve() not in out.parents:
            raise ClientError(f"refusing to write {f['path']} outside {target}")
        r = client.request("GET", f"/jobs/{args.job_id}/files/{f['path']}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(r.content)
        print(f"{out} ({len(r.content)} bytes)")


@command("cancel", arg("job_id", type=int))
def cancel(args: argparse.Namespace) -> None:
    """Cancel a pending or running job."""
    _client().post(f"/jobs/{args.job_id}/cancel")
    print(f"cancel requested for job {args.job_id}")


@command("licenses", arg("--json", dest="as_json", action="store_true"))
def list_licenses(args: argparse.Namespace) -> None:
    """List the licences you may charge or sponsor, with what their budgets have left."""
    rows = _client().get("/licenses")
    if args.as_json:
        print(json.dumps(rows, indent=2))
        return
    for lic in rows:
        print(f"{lic['name']:<20} {lic['slurm_account']:<16} used {format_hours(lic['cpu_hours'])} CPU h, "
              f"{format_hours(lic['gpu_hours'])} GPU h   budget: {budget_line(lic['budget'])}")


def estimate_lines(preview: dict) -> list[str]:
    """A preview's cost and start estimate, for the terminal (the script goes to stdout)."""
    cost, start = preview["cost"], preview["start_estimate"]
    gpu = f" and {format_hours(cost['gpu_hours'])} GPU h" if cost["gpu_hours"] else ""
    lines = [f"at most {format_hours(cost['cpu_hours'])} CPU h{gpu} ({cost['worst_case']}), "
             f"charged to {cost['license']}"]
    after = cost.get("left_after")
    if after:
        left = {k.split("_")[0].upper(): v for k, v in after.items() if v is not None}
        if cost["fits"]:
            lines.append("the budget would have " + ", ".join(f"{format_hours(v)} {k} h"
                                                             for k, v in left.items()) + " left after it")
        else:
            over = ", ".join(f"{format_hours(-v)} {k} h" for k, v in left.items() if v < 0)
            lines.append(f"would be refused: it may use {over} more than the budget has left")
    lines.append(f"Slurm expects it could start at {start['at']} (an estimate)" if start.get("at")
                 else f"no start estimate from Slurm{': ' + start['error'] if start.get('error') else ''}")
    return lines


def budget_line(budget: dict) -> str:
    """A budget in a line: each limit with what is left of it this period."""
    parts = []
    for kind in ("cpu", "gpu"):
        limit = budget.get(f"{kind}_hours")
        if limit is None:
            continue
        left = (budget.get("remaining") or {}).get(f"{kind}_hours")
        shown = "unknown" if left is None else format_hours(left)
        parts.append(f"{shown} of {format_hours(limit)} {kind.upper()} h left")
    if not parts:
        return "none"
    period = "" if budget["period"] == "none" else f" this {budget['period']}"
    return ", ".join(parts) + period + (f" ({budget['usage_error']})" if budget.get("usage_error") else "")


def _hours_or_none(text: str) -> float | None:
    if text.lower() in ("none", "unlimited", ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"expected a number of hours or 'none', got {text!r}") from None


@command("budget",
         arg("license"),
         arg("--cpu-hours", metavar="H", help="CPU hours per period, or 'none' for no limit"),
         arg("--gpu-hours", metavar="H", help="GPU hours per period, or 'none' for no limit"),
         arg("--period", choices=("month", "quarter", "year", "none")),
         arg("--soft-percent", type=int, metavar="P", help="warn at this share used"),
         arg("--json", dest="as_json", action="store_true"))
def budget(args: argparse.Namespace) -> None:
    """Show a licence's budget; its sponsor changes it with the options given."""
    client = _client()
    change = {key: value for key, value in (
        ("cpu_hours", None if args.cpu_hours is None else _hours_or_none(args.cpu_hours)),
        ("gpu_hours", None if args.gpu_hours is None else _hours_or_none(args.gpu_hours)),
        ("period", args.period), ("soft_percent", args.soft_percent)) if value is not None}
    for key, given in (("cpu_hours", args.cpu_hours), ("gpu_hours", args.gpu_hours)):
        if given is not None and _hours_or_none(given) is None:
            change[key] = None  # "none": remove the limit
    path = f"/licenses/{args.license}/budget"
    shown = client.put(path, change) if change else client.get(path)
    if args.as_json:
        print(json.dumps(shown, indent=2))
        return
    print(f"{args.license}: {budget_line(shown)}")
    if shown["source"] == "api":
        print(f"  set by {shown['set_by']} at {shown['set_at']}")
    if shown.get("used"):
        used = shown["used"]
        print(f"  used {format_hours(used['cpu_hours'])} CPU h, {format_hours(used['gpu_hours'])} GPU h; "
              f"held by running jobs {format_hours(used['running_cpu_hours'])} CPU h, "
              f"{format_hours(used['running_gpu_hours'])} GPU h")


# What makes a value many values in `gateway run --sweep` (the gateway parses it).
MANY_MARKS = (",", "..", "*", "?", "[")


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
        job = client.get(f"/jobs/{job_id}")
        if job["finalized"]:
            _print_job(job)
            if job["status"] == COMPLETED:
                return 0
            code = job.get("exit_code")
            return code if job_exit_code and isinstance(code, int) and 0 < code < 256 else 1
        time.sleep(interval)
