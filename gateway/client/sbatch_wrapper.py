"""`gateway-sbatch`: submit a plain batch script through the gateway, charged to a licence.

Used like sbatch on a login node, with sbatch's options (see sbatch_options); the job
is tracked, its log kept and its CPU/GPU hours charged like any portal job. Prints
sbatch's own "Submitted batch job N" line so scripts that parse it keep working.
"""
from __future__ import annotations

import os
import sys

from ..errors import ClientError, ValidationError
from ..sbatch_directives import parse_directives, parse_time_limit
from .commands import _client, _wait
from .sbatch_options import (
    OptionError,
    SbatchArgs,
    choose_license,
    environment_options,
    help_text,
    parse_args,
    with_directives,
    wrap_script,
)


def read_script(args: SbatchArgs) -> str:
    if "wrap" in args.wrapper:
        return wrap_script(str(args.wrapper["wrap"]))
    if args.script in (None, "-"):
        if args.script is None and sys.stdin.isatty():
            raise OptionError("no script given: name a script file, '-' for standard input, or --wrap")
        return sys.stdin.read()
    if not os.path.isfile(args.script):
        raise OptionError(f"{args.script}: no such script file")
    with open(args.script, encoding="utf-8") as f:
        return f.read()


def build_payload(args: SbatchArgs, script: str, licence: str, cwd: str) -> dict:
    """The body of ``POST /jobs/sbatch`` for ``args`` (the options sbatch reads on its
    command line, the rest as #SBATCH lines in the script)."""
    opts = args.wrapper
    payload: dict = {"script": with_directives(script, args.directives), "license": licence,
                     "workdir": os.path.normpath(os.path.join(cwd, str(opts.get("chdir") or ".")))}
    if opts.get("time"):
        try:
            payload["time_limit_minutes"] = parse_time_limit(str(opts["time"]), "-t/--time")
        except ValidationError as e:
            raise OptionError(f"-t/--time: {e.message}") from None
    for key, name in (("job_name", "job-name"), ("partition", "partition"),
                      ("project", "project"), ("experiment", "experiment")):
        if opts.get(name):
            payload[key] = opts[name]
    return payload


def submit(argv: list[str]) -> int:
    from_env, notes = environment_options(dict(os.environ))
    for note in notes:
        print(f"gateway-sbatch: {note}", file=sys.stderr)
    args = parse_args([*from_env, *argv])
    if args.wrapper.get("help") or args.wrapper.get("usage"):
        sys.stdout.write(help_text())
        return 0
    script = read_script(args)
    client = _client()
    licence = choose_license(args, os.environ.get("GATEWAY_LICENSE") or None,
                             parse_directives(script).get("account") or None,
                             lambda: client.get("/licenses"))
    made = client.post("/jobs/sbatch", build_payload(args, script, licence, os.getcwd()))
    if "array_job_ids" in made:  # an array: a sweep of one gateway job per task
        slurm_id = ",".join(made["array_job_ids"])
        ours = f"gateway sweep {made['id']}, {made['tasks']} tasks"
    else:
        slurm_id, ours = made["slurm_job_id"], f"gateway job {made['id']}"
    if args.wrapper.get("parsable"):
        print(slurm_id, flush=True)
    elif not args.wrapper.get("quiet"):
        print(f"Submitted batch job {slurm_id} ({ours})", flush=True)
    if args.wrapper.get("wait"):
        if "array_job_ids" in made:
            return _wait_array(client, made["id"])
        return _wait(client, made["id"], job_exit_code=True)
    return 0


def _wait_array(client, sweep_id: int, interval: float = 2.0) -> int:
    """sbatch --wait on an array: once every task has ended, the highest exit code."""
    import time

    while True:
        s = client.get(f"/sweeps/{sweep_id}")
        if s["finished"]:
            if len(s["jobs"]) < s["tasks"]:  # a page of tasks unless asked: every one counts
                s = client.get(f"/sweeps/{sweep_id}", {"limit": s["tasks"]})
            highest = max((j["exit_code"] or 0 for j in s["jobs"]), default=0)
            # A task cancelled or killed for its time limit has no exit code of its own.
            return highest or int(any(j["status"] != "Completed" for j in s["jobs"]))
        time.sleep(interval)


def main(argv: list[str] | None = None) -> None:
    """Submit a script to Slurm through the gateway (`gateway-sbatch --help`)."""
    try:
        sys.exit(submit(sys.argv[1:] if argv is None else argv))
    except (OptionError, ClientError) as e:
        sys.stdout.flush()
        print(f"gateway-sbatch: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # how a --wait is given up
        sys.exit(130)


if __name__ == "__main__":
    main()
