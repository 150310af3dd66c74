"""The warm submit helper and the gateway's pool of them, run as whoever runs pytest
(no sudo: launcher=()), over tools of this test's own that record every run. The
real thing, through sudo as gwjob and people, is in tests/integration/test_submit_helper.py."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.errors import SlurmError, SlurmNoAnswer
from gateway.slurm.cli import CliSlurm, SubmitRequest
from gateway.slurm.warm_helpers import MAX_PER_USER, HelperRefused, WarmHelpers

HELPER = Path(__file__).resolve().parents[2] / "gateway" / "slurm" / "submit_helper.py"


@pytest.fixture
def tools(tmp_path):
    """A Slurm bin dir: sbatch records its arguments and script, and answers a job id
    (or sleeps, when the script says so); scancel records its arguments."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    runs = tmp_path / "runs"
    (bindir / "sbatch").write_text(
        "#!/bin/sh\nscript=$(cat)\n"
        f"printf '%s|%s\\n' \"$*\" \"$script\" >> {runs}\n"
        "case $script in *SLEEP*) sleep 3;; esac\n"
        "case $script in *REFUSE*) echo 'sbatch: error: Batch job submission failed' >&2; exit 1;; esac\n"
        "echo 4242\n")
    (bindir / "scancel").write_text(f"#!/bin/sh\necho \"scancel $*\" >> {runs}\n")
    for tool in ("sbatch", "scancel"):
        os.chmod(bindir / tool, 0o755)
    return bindir, runs


@pytest.fixture
def pool(tools):
    helpers = WarmHelpers(str(tools[0]), str(HELPER), launcher=(sys.executable, "-I", "-S"))
    yield helpers
    helpers.close()


def runs_of(tools) -> list[str]:
    path = tools[1]
    return path.read_text().splitlines() if path.exists() else []


def test_submits_go_through_one_warm_helper(pool, tools):
    slurm = CliSlurm(str(tools[0]), 10, pool)
    ids = [slurm.submit(SubmitRequest(script=f"#!/bin/sh\necho {i}; rm -rf / $(id)\n", options=["--time=5"],
                                      user="someone", workdir="/tmp")) for i in range(3)]
    assert ids == ["4242"] * 3
    assert pool.started == 1
    first = runs_of(tools)[0]
    # Arguments and the script reach sbatch exactly, no shell between.
    assert first.startswith("--parsable --time=5 --chdir=/tmp|#!/bin/sh")
    slurm.cancel("4242", user="someone")
    assert runs_of(tools)[-1] == "scancel 4242"
    assert pool.started == 1


def test_slurms_refusal_keeps_its_words(pool, tools):
    slurm = CliSlurm(str(tools[0]), 10, pool)
    with pytest.raises(SlurmError, match="sbatch failed: sbatch: error: Batch job submission failed"):
        slurm.submit(SubmitRequest(script="REFUSE\n", options=[], user="someone"))
    assert slurm.submit(SubmitRequest(script="ok\n", options=[], user="someone")) == "4242"
    assert pool.started == 1  # a refusal is an answer: the helper stays


def test_a_helper_gone_while_idle_is_replaced_and_the_job_sent_once(pool, tools):
    pool.run("someone", "sbatch", [], "first\n", 10)
    helper = pool._idle["someone"][0]
    os.kill(helper.proc.pid, signal.SIGKILL)
    helper.proc.wait()
    result = pool.run("someone", "sbatch", [], "second\n", 10)
    assert result.stdout == "4242\n"
    assert [r.split("|")[1] for r in runs_of(tools)] == ["first", "second"]
    assert pool.started == 2


def test_no_answer_in_time_is_no_answer_not_a_failure(pool, tools):
    slurm = CliSlurm(str(tools[0]), 0.5, pool)
    with pytest.raises(SlurmNoAnswer, match="sbatch"):
        slurm.submit(SubmitRequest(script="SLEEP\n", options=[], user="someone"))
    # The abandoned helper is not handed out again; a fresh one answers.
    assert slurm.submit(SubmitRequest(script="ok\n", options=[], user="someone")) == "4242"
    assert pool.started == 2


def test_a_helper_killed_while_sbatch_runs_is_no_answer(pool, tools):
    pool.run("someone", "sbatch", [], "warm\n", 10)
    pid = pool._idle["someone"][0].proc.pid
    threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
    with pytest.raises(SlurmNoAnswer, match="ended while Slurm was being asked"):
        pool.run("someone", "sbatch", [], "SLEEP\n", 10)


def test_concurrent_calls_share_at_most_a_few_helpers_per_user(pool, tools):
    results, errors = [], []

    def submit(i):
        try:
            results.append(pool.run("someone", "sbatch", [], f"job {i}\n", 20).stdout)
        except Exception as e:  # noqa: BLE001 - any failure fails the test below
            errors.append(e)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == ["4242\n"] * 12
    assert 1 <= pool.started <= MAX_PER_USER
    assert sorted(r.split("|")[1] for r in runs_of(tools)) == sorted(f"job {i}" for i in range(12))


def test_each_user_gets_helpers_of_their_own(pool, tools):
    pool.run("alice", "sbatch", [], "a\n", 10)
    pool.run("bob", "sbatch", [], "b\n", 10)
    pool.run("alice", "sbatch", [], "a2\n", 10)
    assert pool.started == 2 and set(pool._idle) == {"alice", "bob"}


def test_a_helper_that_does_not_start_is_refused_with_its_words(tools):
    helpers = WarmHelpers(str(tools[0]), "/nonexistent/submit-helper", launcher=(sys.executable, "-I", "-S"))
    with pytest.raises(HelperRefused, match="nonexistent"):
        helpers.run("someone", "sbatch", [], "x\n", 5)
    slurm = CliSlurm(str(tools[0]), 5, helpers)
    with pytest.raises(SlurmError, match="may not act as 'someone'"):
        slurm.submit(SubmitRequest(script="x\n", options=[], user="someone"))


def helper_process(tools) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(HELPER), str(tools[0])], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert "ready" in json.loads(proc.stdout.readline())
    return proc


def ask(proc, request) -> dict:
    proc.stdin.write((request if isinstance(request, str) else json.dumps(request)) + "\n")
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


@pytest.mark.parametrize("request_", [
    {"tool": "sh", "args": ["-c", "id"]},
    {"tool": "../../bin/sh", "args": []},
    {"tool": "/bin/sh", "args": []},
    {"tool": "sbatch", "args": "--wrap=id"},
    {"tool": "sbatch", "args": ["a\0b"]},
    {"tool": "sbatch", "args": [], "stdin": ["x"]},
    "not json",
    "[1, 2]",
])
def test_the_helper_runs_nothing_but_sbatch_and_scancel(tools, request_):
    proc = helper_process(tools)
    try:
        answer = ask(proc, request_)
        assert "refused" in answer, answer
        assert not tools[1].exists()
        # It still serves a good request after a bad one.
        assert ask(proc, {"tool": "scancel", "args": ["7"]}) == {"taken": True}
        assert json.loads(proc.stdout.readline())["rc"] == 0
        assert runs_of(tools) == ["scancel 7"]
    finally:
        proc.stdin.close()
        assert proc.wait(5) == 0  # end of input ends it


def test_the_helper_takes_no_argument_but_an_absolute_tools_dir():
    for argv in (["relative/bin"], ["/usr/bin", "extra"]):
        proc = subprocess.run([sys.executable, "-I", "-S", str(HELPER), *argv], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=10)
        assert proc.returncode == 2 and "usage" in proc.stderr and proc.stdout == ""


def test_idle_helpers_are_closed_on_the_next_use(pool, tools, monkeypatch):
    pool.run("alice", "sbatch", [], "a\n", 10)
    old = pool._idle["alice"][0]
    old.last_used = time.monotonic() - 3600
    pool.run("bob", "sbatch", [], "b\n", 10)
    assert "alice" not in pool._idle or not pool._idle["alice"]
    assert old.proc.wait(5) == 0


def test_check_names_a_helper_others_could_rewrite(tmp_path):
    from gateway.slurm.warm_helpers import install_problems

    missing = tmp_path / "missing"
    assert install_problems(str(missing)) == [
        f"slurm.submit_helper: {missing}: No such file or directory (scripts/install puts it there)"]
    helper = tmp_path / "submit-helper"
    helper.write_text("#!/bin/sh\n")
    os.chmod(helper, 0o775)
    problems = install_problems(str(helper))
    assert any(p.startswith(f"slurm.submit_helper: {helper} must be root's and writable by root alone")
               for p in problems), problems
