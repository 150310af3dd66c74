"""The command line, without services: gateway-sbatch reads sbatch's options with
sbatch's meanings (passed on as #SBATCH lines, or refused by name), -A maps to the
licence that charges the account, `gateway jobs` says which jobs it lists, and
`gateway log` says why a pending job has no log yet."""
from __future__ import annotations

import io

import pytest

from gateway.client.commands import jobs_heading, print_log, why_waiting
from gateway.client.sbatch_options import (
    OptionError,
    choose_license,
    license_for_account,
    parse_args,
    with_directives,
    wrap_script,
)
from gateway.client.sbatch_wrapper import build_payload
from gateway.sbatch_directives import parse_directives

LICENSES = [{"name": "test-lab", "slurm_account": "test_lab"},
            {"name": "other-lab", "slurm_account": "test_other"}]


def refused(argv: list[str]) -> str:
    with pytest.raises(OptionError) as e:
        parse_args(argv)
    return str(e.value)


def test_sbatch_options_read_as_sbatch_reads_them():
    args = parse_args(["-A", "test_other", "-Lmatlab:2", "-HN", "2", "--mem", "4G", "-c4",
                       "--exclusive", "--nice=10", "-t", "1:00:00", "-J", "name", "--parsable",
                       "--gw-license=test-lab", "run.sh"])
    assert args.script == "run.sh"
    assert args.wrapper == {"account": "test_other", "time": "1:00:00", "job-name": "name",
                            "parsable": True, "gw-license": "test-lab"}
    # -L is Slurm's licences, as in sbatch; the rest in the order given.
    assert args.directives == ["--licenses=matlab:2", "--hold", "--nodes=2", "--mem=4G",
                               "--cpus-per-task=4", "--exclusive", "--nice=10"]
    assert parse_args(["-W", "-Q", "--", "-odd-name.sh"]).script == "-odd-name.sh"
    assert parse_args(["--hold"]).script is None  # the script comes on standard input
    assert parse_args(["-"]).script == "-"


@pytest.mark.parametrize("argv, words", [
    (["-o", "out.txt", "x.sh"], ["-o/--output", "places the job's log"]),
    (["--error"], ["-e/--error"]),
    (["--export=NONE", "x.sh"], ["--export", "environment"]),
    (["-M", "other", "x.sh"], ["-M/--clusters"]),
    (["--license", "test-lab", "x.sh"], ["--license", "--gw-license", "-L/--licenses"]),
    (["--frobnicate", "x.sh"], ["--frobnicate", "does not know"]),
    (["-v", "x.sh"], ["-v", "does not know"]),
    (["-Hv", "x.sh"], ["-v", "does not know"]),
    (["--licens=a", "x.sh"], ["--licens:", "did you mean --licenses?"]),
    (["--hold=yes", "x.sh"], ["--hold takes no value"]),
    (["--mem"], ["--mem needs a value"]),
    (["--gw-license=", "x.sh"], ["--gw-license needs a value"]),
    (["--comment", "two\nlines", "x.sh"], ["--comment", "one line"]),
    (["x.sh", "--mem=1G"], ["arguments after the script", "--mem=1G", "before the script"]),
    (["--wrap", "hostname", "x.sh"], ["--wrap and a script"]),
])
def test_what_the_gateway_cannot_honour_is_refused_by_name(argv, words):
    message = refused(argv)
    for word in words:
        assert word in message, message


def test_command_line_directives_go_where_sbatch_reads_them_and_win():
    script = "#!/bin/bash\n#SBATCH --mem=1G\n# a comment\n\n#SBATCH -c 2\necho hi\n#SBATCH --mem=9G\n"
    out = with_directives(script, ["--mem=4G", "--hold", "--comment=it's \"quoted\" # not a comment"])
    lines = out.splitlines()
    assert lines[0] == "#!/bin/bash" and lines[-2:] == ["echo hi", "#SBATCH --mem=9G"]
    assert lines.index("#SBATCH --hold") < lines.index("echo hi")
    assert parse_directives(out) == {"mem": "4G", "cpus-per-task": "2", "hold": "",
                                     "comment": "it's \"quoted\" # not a comment"}
    assert with_directives(script, []) == script
    # A script of directives only, without a final newline.
    assert with_directives("#!/bin/sh\n#SBATCH -c 1", ["--hold"]).endswith("#SBATCH -c 1\n"
        "# given on gateway-sbatch's command line:\n#SBATCH --hold\n")
    assert wrap_script("hostname -f").startswith("#!/bin/sh\n") and "\nhostname -f\n" in wrap_script(
        "hostname -f")


def test_the_licence_by_sbatchs_precedence_and_from_the_slurm_account():
    calls = []

    def lookup():
        calls.append(1)
        return LICENSES

    def choose(argv, env=None, script_account=None):
        return choose_license(parse_args([*argv, "x.sh"]), env, script_account, lookup)

    assert choose(["--gw-license", "test-lab"], env="other-lab", script_account="test_other") == "test-lab"
    assert not calls  # a named licence needs no look-up
    assert choose(["-A", "test_other"], env="test-lab") == "other-lab"
    assert choose([], env="test-lab", script_account="test_other") == "test-lab"
    assert choose([], script_account="test_other") == "other-lab"
    assert choose(["-A", "test_lab", "--gw-license", "test-lab"]) == "test-lab"
    with pytest.raises(OptionError, match="disagree: Slurm account test_other is licence other-lab's"):
        choose(["-A", "test_other", "--gw-license", "test-lab"])
    with pytest.raises(OptionError, match=r"no gateway licence you may use charges this Slurm account "
                                          r"\(yours: test-lab \(test_lab\), other-lab \(test_other\)\)"):
        choose(["-A", "nobody"])
    with pytest.raises(OptionError, match="--gw-license NAME or -A SLURM_ACCOUNT, or set \\$GATEWAY_LICENSE"):
        choose([])
    with pytest.raises(OptionError, match="licences a, b all charge"):
        license_for_account("acct", [{"name": "a", "slurm_account": "acct"},
                                     {"name": "b", "slurm_account": "acct"}])


def test_the_request_the_wrapper_sends():
    args = parse_args(["-t", "90", "-J", "my job", "-p", "cpu", "-D", "sub/dir", "--project", "p",
                       "--experiment", "e", "--hold", "x.sh"])
    payload = build_payload(args, "#!/bin/bash\necho hi\n", "test-lab", "/home/alice")
    assert payload == {"script": "#!/bin/bash\n# given on gateway-sbatch's command line:\n"
                                 "#SBATCH --hold\necho hi\n",
                       "license": "test-lab", "workdir": "/home/alice/sub/dir", "time_limit_minutes": 90,
                       "job_name": "my job", "partition": "cpu", "project": "p", "experiment": "e"}
    assert build_payload(parse_args(["-D", "/abs", "x"]), "#!/bin/sh\n", "l", "/cwd")["workdir"] == "/abs"
    assert build_payload(parse_args(["x"]), "#!/bin/sh\n", "l", "/cwd")["workdir"] == "/cwd"
    with pytest.raises(OptionError, match="-t/--time: 'soon' is not a Slurm time limit"):
        build_payload(parse_args(["-t", "soon", "x"]), "#!/bin/sh\n", "l", "/cwd")


def test_jobs_says_which_jobs_it_lists():
    assert jobs_heading(False) == "your jobs (use --all for every job you can see):"
    assert jobs_heading(True) == "every job you can see:"


class FakeResponse:
    def __init__(self, content: bytes, status: str, finalized: bool, offset: int):
        self.content = content
        self.headers = {"X-Log-Offset": str(offset), "X-Job-Status": status,
                        "X-Job-Finalized": "true" if finalized else "false"}


class FakeClient:
    """A job's life as the log endpoint shows it, one step per request."""

    def __init__(self, steps: list[tuple[str, str, bytes, bool]]):
        self.steps, self.log, self.step = steps, b"", None

    def request(self, method, path, params=None):
        self.step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        status, _reason, chunk, finalized = self.step
        assert params["offset"] == len(self.log)
        self.log += chunk
        return FakeResponse(chunk, status, finalized, len(self.log))

    def get(self, path):
        return {"status": self.step[0], "reason": self.step[1]}


def test_log_follow_says_a_pending_job_is_waiting_and_why_then_follows_it():
    held = "waiting: held by the person who ran it: it starts once released (Slurm: JobHeldUser)"
    client = FakeClient([("Pending", "submitting", b"", False),
                         ("Pending", "waiting in Slurm's queue", b"", False),
                         ("Pending", held, b"", False), ("Pending", held, b"", False),
                         ("Running", "", b"hello\n", False), ("Running", "", b"", False),
                         ("Completed", "", b"bye\n", True), ("Completed", "", b"", True)])
    out, said, slept = io.BytesIO(), [], []
    print_log(client, 7, True, out, said.append, sleep=slept.append)
    assert out.getvalue() == b"hello\nbye\n"
    follows = "; its log follows once it runs"
    assert said == [f"job 7 is waiting to start: being submitted to Slurm{follows}",
                    f"job 7 is waiting to start: in Slurm's queue{follows}",
                    "job 7 is waiting to start: held by the person who ran it: it starts once released "
                    f"(Slurm: JobHeldUser){follows}",
                    "job 7 is running"]
    assert len(slept) == 5


def test_log_without_follow_says_a_pending_job_has_not_started():
    said: list[str] = []
    resources = "waiting: waiting for enough free CPUs, memory or GPUs (Slurm: Resources)"
    print_log(FakeClient([("Pending", resources, b"", False)]), 3, False, io.BytesIO(), said.append)
    assert said == ["job 3 is waiting to start: for enough free CPUs, memory or GPUs (Slurm: Resources); "
                    "`gateway log 3 --follow` waits for it"]
    assert why_waiting({"reason": "waiting: JobHeldUser"}) == "JobHeldUser"  # a gateway without the words
    assert why_waiting({"reason": ""}) == "in Slurm's queue"


def test_the_api_lists_only_your_own_jobs_when_asked(fake_gw):
    script = {"script": "#!/bin/bash\necho hi\n", "license": "other-lab"}
    mine = fake_gw.ok("POST", "/jobs/sbatch", 201, json=script)["id"]
    theirs = fake_gw.ok("POST", "/jobs/sbatch", 201, json=script, token=fake_gw.alice_token)["id"]
    every = [j["id"] for j in fake_gw.ok("GET", "/jobs")["jobs"]]
    assert every == [theirs, mine]  # the admin sees every job
    own = fake_gw.ok("GET", "/jobs?mine=1")
    assert [j["id"] for j in own["jobs"]] == [mine] and own["total"] == 1
    assert [j["id"] for j in fake_gw.ok("GET", "/jobs?mine=1", token=fake_gw.alice_token)["jobs"]] == [theirs]


def test_sbatchs_environment_variables_count_as_options_the_command_line_overrides():
    from gateway.client.sbatch_options import ENVIRONMENT, LONG_OPTIONS, environment_options

    assert set(ENVIRONMENT.values()) <= set(LONG_OPTIONS)  # each names an option the wrapper knows
    words, notes = environment_options({"SBATCH_ACCOUNT": "test_other", "SBATCH_QOS": "low",
                                        "SBATCH_EXCLUSIVE": "", "SBATCH_WAIT": "1", "HOME": "/x"})
    assert words == ["--account=test_other", "--qos=low", "--exclusive", "--wait"] and notes == []
    args = parse_args([*words, "-A", "test_lab", "-q", "high", "job.sh"])
    assert args.wrapper["account"] == "test_lab" and args.wrapper["wait"] is True
    script = with_directives("#!/bin/bash\n#SBATCH --qos=script\ntrue\n", args.directives)
    assert parse_directives(script)["qos"] == "high"  # command line > environment > script
    only_env = parse_args([*environment_options({"SBATCH_QOS": "low"})[0], "job.sh"])
    assert parse_directives(with_directives("#!/bin/bash\n#SBATCH --qos=script\n", only_env.directives))[
        "qos"] == "low"


def test_environment_variables_the_gateway_cannot_honour_are_ignored_with_a_note():
    from gateway.client.sbatch_options import environment_options

    words, notes = environment_options({"SBATCH_EXPORT": "ALL", "SBATCH_ARRAY_INX": "0-3",
                                        "SBATCH_TIMELIMIT": "10"})
    assert words == ["--time=10", "--array=0-3"]
    assert [n.split(":")[0] for n in notes] == ["ignoring $SBATCH_EXPORT (sbatch's --export)"]
    assert "sets the job's environment itself" in notes[0]


def test_an_array_is_passed_on_as_the_scripts_own():
    for argv in (["--array=0-9%2", "x.sh"], ["-a", "0-9%2", "x.sh"], ["-a0-9%2", "x.sh"]):
        args = parse_args(argv)
        script = with_directives("#!/bin/bash\n#SBATCH --array=1-3\ntrue\n", args.directives)
        assert parse_directives(script)["array"] == "0-9%2"  # the command line wins
