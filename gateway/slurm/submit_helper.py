#!/usr/bin/python3 -IS
"""The gateway's warm submit helper: runs sbatch and scancel as one person, on request.

Started by the gateway through sudo as the person (or job_user) it submits for, and
then kept: one sudo per person instead of one per submit, which is most of what a
submit costs (sudo is 5-10 ms of CPU a call and does not scale with concurrency).
It may do exactly what the sudoers rule let the gateway do before: run sbatch or
scancel from one directory of Slurm tools, with the arguments and standard input
the gateway sends, in the environment sudo gave it. Nothing else; no shell.

scripts/install puts it, root-owned, at /usr/local/libexec/slurm-gateway/submit-helper;
etc/sudoers.d/slurm-gateway allows the gateway's user to start it, with no argument
(tools from /usr/bin) or with the tools directory a rule names.

Protocol, one JSON object a line each way (the gateway's side: warm_helpers.py):
  helper  -> {"ready": pid}                        once, when it is up
  gateway -> {"tool": "sbatch", "args": [...], "stdin": "..."}
  helper  -> {"taken": true}                       before the tool runs, so a helper
             that is gone before this line provably ran nothing
  helper  -> {"rc": 0, "stdout": "...", "stderr": "..."}
  helper  -> {"refused": "why"}                    instead of both, for a bad request
It ends at end of input (the gateway closed it or died) or after IDLE_S without one.

Standard library only, loaded with -I -S (isolated, no site): it runs as a person, from a root-owned file,
and must not import anything a user or the gateway could write.
"""
import json
import os
import select
import subprocess
import sys

TOOLS = ("sbatch", "scancel")
IDLE_S = 600  # the gateway closes idle helpers after a minute; this is for a gateway that went quiet
MAX_LINE = 64 * 1024 * 1024  # a request line: a script with its inlined inputs stays far below


def not_dumpable() -> None:
    """Make this process non-dumpable, so the person it runs as cannot ptrace it or read
    its memory from another process of theirs: a long-lived helper is a steadier target
    than a short sbatch. PR_SET_DUMPABLE is 4. Best effort: ctypes may be missing."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass


def answer(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def check(request: object) -> str:
    """Why a request is refused, or "" if it may run."""
    if not isinstance(request, dict) or request.get("tool") not in TOOLS:
        return f"tool must be one of {', '.join(TOOLS)}"
    args, stdin = request.get("args", []), request.get("stdin")
    if not isinstance(args, list) or not all(isinstance(a, str) and "\0" not in a for a in args):
        return "args must be a list of strings"
    if stdin is not None and not isinstance(stdin, str):
        return "stdin must be a string"
    return ""


def main(argv: list[str]) -> int:
    if len(argv) > 2 or (len(argv) == 2 and not os.path.isabs(argv[1])):
        sys.stderr.write("usage: submit-helper [ABSOLUTE_SLURM_BIN_DIR]\n")
        return 2
    tools_dir = argv[1] if len(argv) == 2 else "/usr/bin"
    not_dumpable()
    os.chdir("/")
    answer({"ready": os.getpid()})
    while True:
        # The gateway sends the next request only after this one's answer, so nothing
        # waits in stdin's buffer unseen by select.
        readable, _, _ = select.select([sys.stdin], [], [], IDLE_S)
        if not readable:
            return 0
        line = sys.stdin.readline(MAX_LINE)
        if not line:
            return 0
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        why = check(request)
        if why:
            answer({"refused": why})
            continue
        answer({"taken": True})
        try:
            proc = subprocess.run([os.path.join(tools_dir, request["tool"]), *request.get("args", [])],
                                  input=request.get("stdin"), capture_output=True, text=True, cwd="/")
            answer({"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr})
        except OSError as e:
            answer({"rc": 127, "stdout": "", "stderr": f"{request['tool']}: {e.strerror}"})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
