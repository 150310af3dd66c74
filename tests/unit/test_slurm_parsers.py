"""Parsers fed output recorded from real Slurm (tests/recorded/record.sh and
record_arrays.py refresh it)."""
from datetime import datetime
from pathlib import Path

import pytest

from gateway.errors import SlurmError
from gateway.poller import read_records
from gateway.slurm.arrays import base_id, base_ids, parse_array_spec, parse_range_id, split_task_id
from gateway.slurm.cli import (
    SEP,
    CliSlurm,
    parse_exit_code,
    parse_job_id,
    parse_names,
    parse_sacct,
    parse_squeue,
)
from gateway.slurm.client import SubmitRequest
from gateway.slurm.states import COMPLETED, FAILED, PENDING, classify, normalise
from gateway.slurm.tres import parse_tres, tres_gpus
from tests.fake_slurm import FakeSlurm

RECORDED = sorted((Path(__file__).resolve().parent.parent / "recorded").glob("slurm-*"))


@pytest.fixture(params=RECORDED, ids=[p.name for p in RECORDED])
def recorded(request):
    return request.param


def by_name(jobs):
    return {j.name: j for j in jobs.values()}


def test_sacct_records(recorded):
    jobs = by_name(parse_sacct((recorded / "sacct.txt").read_text()))
    assert jobs["ok|pipe name"].state == "COMPLETED"  # a '|' in a name does not break parsing
    gpu = jobs["gpu"]
    assert gpu.alloc_gpus == 2 and gpu.alloc_cpus == 2
    assert gpu.cpu_time_raw == gpu.elapsed_seconds * gpu.alloc_cpus
    failing = jobs["failing"]
    assert failing.exit_code == 3 and classify(failing.state, failing.exit_code, failing.signal,
                                               ended=True).status == FAILED
    oom = jobs["oom"]
    assert classify(oom.state, oom.exit_code, oom.signal, ended=True).reason.startswith("out of memory")
    assert classify(jobs["cancelled"].state).reason.startswith("cancelled")
    held = jobs["held"]
    assert held.start_time is None and held.end_time is None and held.alloc_cpus == 0
    assert classify(jobs["wrap"].state, 0, 0, 0, True).status == COMPLETED


class RecordedSlurm:
    """Answers accounting() and queue() from one recorded directory, counting calls."""

    def __init__(self, recorded):
        self.sacct = parse_sacct((recorded / "sacct.txt").read_text())
        self.squeue = parse_squeue((recorded / "squeue.txt").read_text())
        self.queue_calls = []

    def accounting(self, ids):
        return {i: self.sacct[i] for i in ids if i in self.sacct}

    def queue(self, ids):
        self.queue_calls.append(list(ids))
        return {i: self.squeue[i] for i in ids if i in self.squeue}


def test_a_held_job_says_why_on_every_version(recorded):
    """22.05's sacct gives the held job's reason, 24.11's says "None": the poller's
    read then takes it from squeue, in one call with the jobs accounting lacks."""
    slurm = RecordedSlurm(recorded)
    held = next(j.job_id for j in slurm.sacct.values() if j.name == "held")
    done = next(j.job_id for j in slurm.sacct.values() if j.name == "failing")
    records = read_records(slurm, [held, done, "999999999"])
    out = classify(records[held].state, pending_reason=records[held].reason)
    assert out.status == PENDING and "JobHeldUser" in out.reason
    assert records[held].source == "sacct"  # charges still come from accounting
    assert "999999999" not in records and len(slurm.queue_calls) == 1
    assert set(slurm.queue_calls[0]) <= {held, "999999999"}
    if slurm.sacct[held].reason in ("", "None"):
        assert held in slurm.queue_calls[0]


def test_squeue_records(recorded):
    jobs = by_name(parse_squeue((recorded / "squeue.txt").read_text()))
    assert jobs["held"].state == "PENDING" and jobs["held"].reason == "JobHeldUser"
    assert all(j.source == "squeue" for j in jobs.values())


def test_sbatch_parsable(recorded):
    assert parse_job_id((recorded / "sbatch-parsable.txt").read_text()).isdigit()
    assert parse_job_id("1234;cluster\n") == "1234"
    with pytest.raises(SlurmError):
        parse_job_id("sbatch: error: something\n")


def test_small_parsers():
    assert parse_exit_code("2:0") == (2, 0) and parse_exit_code("0:9") == (0, 9)
    assert parse_exit_code("") == (None, None)
    tres = parse_tres("billing=4,cpu=4,gres/gpu:a100=1,gres/gpu:v100=2,mem=8G,node=1")
    assert tres_gpus(tres) == 3


def test_an_expected_start_is_not_a_start():
    from datetime import datetime

    from gateway.poller import started_at
    from gateway.slurm.client import SlurmJob

    expected = datetime(2026, 11, 26, 12, 0)
    pending = SlurmJob(job_id="5", name="x", state="PENDING", start_time=expected, source="squeue")
    running = SlurmJob(job_id="5", name="x", state="RUNNING", start_time=expected, source="squeue")
    assert started_at(pending) is None and started_at(running) == expected


def test_a_known_pending_reason_is_not_asked_again(recorded):
    """Between refreshes the poller passes the jobs whose reason it already has: no
    squeue call at all when nothing else is missing (24.11's held jobs cost one)."""
    slurm = RecordedSlurm(recorded)
    held = next(j.job_id for j in slurm.sacct.values() if j.name == "held")
    records = read_records(slurm, [held], known={held})
    assert slurm.queue_calls == [] and records[held].source == "sacct"


# --- job arrays ------------------------------------------------------------------
# Recorded by tests/recorded/record_arrays.py on both versions (arrays.md in each
# folder says what each file holds). The array there is 0-5%2: task 0 completes,
# 1 is cancelled while running, 3 fails with status 4, 4 is cancelled while pending.


def array(recorded, name, parser=parse_sacct):
    return parser((recorded / f"array-{name}.txt").read_text())


def base_of(recorded):
    return parse_job_id((recorded / "array-sbatch-parsable.txt").read_text())


def test_sbatch_parsable_gives_an_arrays_own_id(recorded):
    assert base_of(recorded).isdigit()  # "123", never "123_0" or "123_[0-5]"


def test_pending_tasks_of_a_range_line_are_one_record_each(recorded):
    a = base_of(recorded)
    jobs = array(recorded, "sacct-running")
    assert sorted(jobs) == [f"{a}_{i}" for i in range(6)]  # never the array's own id
    for i, job in enumerate(jobs[f"{a}_{i}"] for i in range(6)):
        assert job.job_id == f"{a}_{i}" and job.array_job_id == a and job.array_task_id == i
        assert job.source == "sacct"
    running, pending = [jobs[f"{a}_{i}"] for i in (0, 1)], [jobs[f"{a}_{i}"] for i in (2, 3, 4, 5)]
    assert {normalise(j.state) for j in running} == {"RUNNING"}
    # A started task has a Slurm job id of its own; the waiting ones share the array's.
    raw = {j.native["JobIDRaw"] for j in running}
    assert len(raw) == 2 and a not in raw
    assert all(j.native["JobIDRaw"] == a and j.native["JobID"] == f"{a}_[2-5%2]" for j in pending)
    assert all(normalise(j.state) == "PENDING" and j.start_time is None and j.cpu_time_raw == 0
               and j.alloc_cpus == 0 for j in pending)


def test_each_finished_task_has_its_own_record_and_charge(recorded):
    a = base_of(recorded)
    jobs = array(recorded, "sacct-done")
    # Task 4 was cancelled while it waited: Slurm keeps no record of it at all.
    assert sorted(jobs) == [f"{a}_{i}" for i in (0, 1, 2, 3, 5)]
    for job in jobs.values():
        assert job.alloc_cpus == 1 and job.cpu_time_raw == job.elapsed_seconds > 0
        assert job.start_time and job.end_time and job.end_time >= job.start_time
    out = {i: classify(jobs[f"{a}_{i}"].state, jobs[f"{a}_{i}"].exit_code, jobs[f"{a}_{i}"].signal,
                       ended=True) for i in (0, 1, 2, 3, 5)}
    assert [out[i].status for i in (0, 2, 5)] == [COMPLETED] * 3
    assert out[3].status == FAILED and out[3].exit_code == 4
    # Cancelled while running: "CANCELLED by 0" with exit code 0:0 on both versions.
    assert out[1].status == FAILED and out[1].reason == "cancelled by 0"
    assert (jobs[f"{a}_1"].exit_code, jobs[f"{a}_1"].signal) == (0, 0)
    # The last task to start takes over the array's own job id in accounting.
    assert jobs[f"{a}_5"].native["JobIDRaw"] == a
    assert len({j.native["JobIDRaw"] for j in jobs.values()}) == 5


def test_a_task_cancelled_while_pending_leaves_only_a_stale_range(recorded):
    """Right after ``scancel 123_4`` accounting's range line still lists task 4 as
    pending, and squeue no longer knows it: the gateway must take the cancel as done
    (no record will ever say so)."""
    a = base_of(recorded)
    acct = array(recorded, "sacct-cancelled-pending")
    queue = array(recorded, "squeue-cancelled-pending", parse_squeue)
    assert normalise(acct[f"{a}_4"].state) == "PENDING"
    assert f"{a}_4" not in queue and {f"{a}_{i}" for i in (0, 1, 2, 3, 5)} == set(queue)


def test_a_tasks_own_line_wins_over_a_range_that_still_lists_it(recorded):
    jobs = array(recorded, "sacct-stale-range")
    b = next(j.array_job_id for j in jobs.values())
    assert normalise(jobs[f"{b}_1"].state) == "RUNNING" and jobs[f"{b}_1"].start_time
    assert sorted(jobs) == [f"{b}_{i}" for i in (1, 3, 5, 6, 7)]
    assert all(normalise(jobs[f"{b}_{i}"].state) == "PENDING" for i in (3, 5, 6, 7))


# Seen while exploring, in both orders: a range that lists a task which already has
# its own record (22.05 after the whole array was cancelled, 24.11 while it ran).
STALE = [
    "5398_1\x1f5400\x1farry\x1fCANCELLED by 0\x1f0:0\x1f0\x1fbilling=1,cpu=1,mem=500M,node=1\x1f0\x1f"
    "2026-11-26T15:32:11\x1f2026-11-26T15:32:16\x1f2026-11-26T15:32:16\x1fJobArrayTaskLimit\x1f"
    "test_lab\x1fcpu\x1fvm",
    "5398_[1-3,5%1]\x1f5398\x1farry\x1fCANCELLED by 0\x1f0:0\x1f0\x1f\x1f0\x1f2026-11-26T15:32:11\x1f"
    "None\x1f2026-11-26T15:32:16\x1fNone\x1ftest_lab\x1fcpu\x1fNone assigned",
]


@pytest.mark.parametrize("lines", [STALE, STALE[::-1]], ids=["own-first", "range-first"])
def test_own_line_wins_whatever_the_order(lines):
    jobs = parse_sacct("\n".join(lines) + "\n")
    assert sorted(jobs) == ["5398_1", "5398_2", "5398_3", "5398_5"]
    assert jobs["5398_1"].native["JobIDRaw"] == "5400" and jobs["5398_1"].start_time is not None
    assert jobs["5398_2"].start_time is None  # 22.05 prints Start "None" for a cancelled range


def test_a_whole_array_cancelled(recorded):
    jobs = array(recorded, "sacct-cancelled")
    b = next(j.array_job_id for j in jobs.values())
    assert sorted(jobs) == [f"{b}_{i}" for i in (1, 3, 5, 6, 7)]
    for i in (3, 5, 6, 7):  # never started: one cancelled range line, nothing to charge
        job = jobs[f"{b}_{i}"]
        assert classify(job.state, job.exit_code, job.signal, ended=True).status == FAILED
        assert job.cpu_time_raw == 0 and job.elapsed_seconds == 0 and job.alloc_cpus == 0
        assert (job.exit_code, job.signal) == (0, 0)
    assert jobs[f"{b}_1"].alloc_cpus == 1 and jobs[f"{b}_1"].native["JobIDRaw"] != b


def test_held_arrays_single_task_and_a_long_list(recorded):
    jobs = array(recorded, "sacct-held")
    single = [j for j in jobs.values() if j.name == "rec-single"]
    assert [j.array_task_id for j in single] == [7]  # printed "123_[7]"
    long_ = sorted(j.array_task_id for j in jobs.values() if j.name == "rec-long")
    assert long_ == [1, 2, 4, 7, 11, 16, 22, 29, 37, 46, 56, 67, 79, 92, 106, 121, 137, 154, 172, 191]
    queue = array(recorded, "squeue-held", parse_squeue)
    assert set(queue) == set(jobs)  # squeue -r: every task its own line
    assert {j.reason for j in queue.values()} == {"JobHeldUser"}


def test_squeue_r_gives_each_task_with_why_it_waits(recorded):
    a = base_of(recorded)
    queue = array(recorded, "squeue-running", parse_squeue)
    assert sorted(queue) == [f"{a}_{i}" for i in range(6)]
    for i in (2, 3, 4, 5):
        job = queue[f"{a}_{i}"]
        assert job.state == "PENDING" and job.reason == "JobArrayTaskLimit" and job.array_task_id == i
    assert queue[f"{a}_0"].state == "RUNNING" and queue[f"{a}_0"].expected_start is None


def test_the_poller_read_fills_a_pending_tasks_reason_from_squeue(recorded):
    a = base_of(recorded)

    class Arrays(RecordedSlurm):
        def __init__(self):
            self.sacct = array(recorded, "sacct-running")
            self.squeue = array(recorded, "squeue-running", parse_squeue)
            self.queue_calls = []

    slurm = Arrays()
    tasks = [f"{a}_{i}" for i in range(6)]
    records = read_records(slurm, tasks)
    assert set(records) == set(tasks) and len(slurm.queue_calls) == 1
    assert records[f"{a}_3"].reason == "JobArrayTaskLimit" and records[f"{a}_3"].source == "sacct"


@pytest.mark.parametrize(("job_id", "expected"), [
    ("123_[5-99%10]", ("123", list(range(5, 100)), 10)),
    ("123_[1,3,5-7]", ("123", [1, 3, 5, 6, 7], None)),
    ("123_[7]", ("123", [7], None)),
    ("5402_[0-98:2%1]", ("5402", list(range(0, 99, 2)), 1)),  # 22.05 prints a stride so
    ("123_4", None), ("123", None), ("123+0", None),
])
def test_range_ids(job_id, expected):
    assert parse_range_id(job_id) == expected


@pytest.mark.parametrize("job_id", ["123_[5-3]", "123_[1,,2]", "123_[0-4000001]", "123_[3-]",
                                    "123_[1:0]"])
def test_unreadable_ranges_are_refused(job_id):
    with pytest.raises(ValueError):
        parse_range_id(job_id)


def test_array_id_helpers():
    assert split_task_id("123_4") == ("123", 4) and split_task_id("123") == ("123", None)
    assert base_id("123_4") == base_id("123_[5-7%2]") == base_id("123") == "123"
    assert base_ids(["123_4", "7", "123_5", "123", "8_0"]) == ["123", "7", "8"]
    assert parse_array_spec("0-9%3") == (list(range(10)), 3)
    assert parse_array_spec("1,3,5") == ([1, 3, 5], None)
    assert parse_array_spec("0-9") == (list(range(10)), None)
    for bad in ("0-9%", "%3", "", "a-b", "0-9%3%3"):
        with pytest.raises(ValueError):
            parse_array_spec(bad)


def test_lines_that_name_no_task_are_skipped():
    """Without -r squeue cuts a long task list, even its closing bracket (seen on
    22.05); a line the parser cannot place is dropped, never keyed by its text."""
    cut = SEP.join(["5403_[1-2,4,7,11,16,22,29,37,46", "rec-long", "PENDING", "JobHeldUser",
                    "2026-11-26T15:37:23", "N/A", "test_lab", "cpu"])
    assert parse_squeue(cut + "\n") == {}
    # 24.11 prints the last pending task of an array as the task, not as a range.
    last = SEP.join(["4363_5", "4363", "arrx", "PENDING", "0:0", "0", "", "0", "2026-11-26T15:33:46",
                     "Unknown", "Unknown", "JobArrayTaskLimit", "test_lab", "cpu", "None assigned"])
    job = parse_sacct(last + "\n")["4363_5"]
    assert job.array_job_id == "4363" and job.array_task_id == 5 and normalise(job.state) == "PENDING"


def test_a_plain_jobs_record_is_unchanged(recorded):
    jobs = parse_sacct((recorded / "sacct.txt").read_text())
    for key, job in jobs.items():
        assert key == job.job_id == job.native["JobIDRaw"] == job.native["JobID"]
        assert job.array_job_id is None and job.array_task_id is None
    queue = parse_squeue((recorded / "squeue.txt").read_text())
    assert all(j.array_job_id is None and j.job_id.isdigit() for j in queue.values())


class Commands(CliSlurm):
    """CliSlurm that records the commands it would run and answers from ``out``."""

    def __init__(self, out=""):
        super().__init__()
        self.out, self.ran = out, []

    def _run(self, args, stdin=None, what="", user=None, env=None):
        self.ran.append((args, env))
        return self.out


def test_one_sacct_and_one_squeue_per_array_and_plain_job():
    slurm = Commands()
    slurm.accounting(["5_1", "7", "5_2", "5_3"])
    slurm.queue(["5_1", "7", "5_2"])
    (sacct, sacct_env), (squeue, squeue_env) = slurm.ran
    assert sacct[sacct.index("-j") + 1] == "5,7" and "JobID" in sacct[sacct.index("-o") + 1].split(",")
    assert "-r" in squeue and squeue[squeue.index("-j") + 1] == "5,7"
    # The whole task list, however long, never cut at 64 characters.
    assert sacct_env["SLURM_BITSTR_LEN"] == squeue_env["SLURM_BITSTR_LEN"] == "0"


def test_find_by_names_gives_an_array_once_by_its_own_id():
    lines = ["123_0\x1fgw-a", "123_[1-5%2]\x1fgw-a", "124\x1fgw-b", "99\x1fother",  # sacct
             "123_[1-5%2]\x1fgw-a", "123_0\x1fgw-a", "125\x1fgw-b"]  # squeue %i, without -r
    assert parse_names("\n".join(lines), ["gw-a", "gw-b"]) == {"gw-a": ["123"], "gw-b": ["124", "125"]}
    slurm = Commands("\n".join(lines[:4]) + "\n")
    assert slurm.find_by_names(["gw-a"], datetime(2026, 1, 1)) == {"gw-a": ["123"]}
    sacct, squeue = (args for args, _env in slurm.ran)
    assert "JobID,JobName" in sacct and f"%i{SEP}%j" in squeue


def test_a_task_id_reaches_scancel_as_it_is():
    slurm = Commands()
    slurm.cancel("123_4")
    slurm.cancel("123")
    assert [args[-1] for args, _ in slurm.ran] == ["123_4", "123"]


# --- the fast tier's FakeSlurm prints arrays as the recordings show ----------------
SLURM_2205 = next(p for p in RECORDED if p.name == "slurm-22.05")
ARRAY_SCRIPT = "#!/bin/bash\n#SBATCH --job-name=rec-array\n#SBATCH --account=test_lab\n" \
               "#SBATCH --array=0-5%2\nsleep 4\n"


def sacct_shape(text: str, base: str) -> list[tuple]:
    """What must match between the fake and Slurm, ids and times aside."""
    rows = []
    for line in text.splitlines():
        row = dict(zip(("JobID", "JobIDRaw", "JobName", "State", "ExitCode", "ElapsedRaw", "AllocTRES",
                        "CPUTimeRAW", "Submit", "Start", "End", "Reason", "Account", "Partition",
                        "NodeList"), line.split(SEP), strict=True))
        rows.append((row["JobID"].replace(base, "A", 1), row["JobIDRaw"] == base, row["State"],
                     row["ExitCode"], row["AllocTRES"] == "", row["Start"], row["End"] == "Unknown",
                     row["NodeList"] == "None assigned"))
    rows = [(r[0], r[1], r[2], r[3], r[4], r[5] if r[5] in ("Unknown", "None") else "time", *r[6:])
            for r in rows]
    return sorted(rows)


def fake_array():
    fake = FakeSlurm()
    base = fake.submit(SubmitRequest(script=ARRAY_SCRIPT))
    return fake, base


def test_the_fake_prints_a_running_array_as_slurm_does():
    fake, a = fake_array()
    assert a.isdigit() and [t.job_id for t in fake.tasks(a)] == [f"{a}_{i}" for i in range(6)]
    fake.start(f"{a}_0")
    fake.start(f"{a}_1")
    recorded = (SLURM_2205 / "array-sacct-running.txt").read_text()
    assert sacct_shape("\n".join(fake._array_sacct_lines(a)), a) == \
        sacct_shape(recorded, base_of(SLURM_2205))
    tasks = [f"{a}_{i}" for i in range(6)]
    assert sorted(fake.accounting(tasks)) == tasks
    queue = fake.queue(tasks)
    recorded_queue = array(SLURM_2205, "squeue-running", parse_squeue)
    assert {k.split("_")[1]: (j.state, j.reason) for k, j in queue.items()} == \
        {k.split("_")[1]: (j.state, j.reason) for k, j in recorded_queue.items()}


def test_the_fake_runs_an_array_to_the_end_as_slurm_does():
    fake, a = fake_array()
    for i in (0, 1):
        fake.start(f"{a}_{i}")
    fake.cancel(f"{a}_4")  # pending: gone from both views at once
    assert f"{a}_4" not in fake.queue([a]) and f"{a}_4" not in fake.accounting([a])
    fake.cancel(f"{a}_1")
    fake.finish(f"{a}_0", elapsed=15)
    fake.finish(f"{a}_2", elapsed=4)
    fake.finish(f"{a}_3", exit_code=4, elapsed=2)
    fake.finish(f"{a}_5", elapsed=4)
    recorded = (SLURM_2205 / "array-sacct-done.txt").read_text()
    assert sacct_shape("\n".join(fake._array_sacct_lines(a)), a) == \
        sacct_shape(recorded, base_of(SLURM_2205))
    jobs = fake.accounting([f"{a}_3"])  # asking for one task reads the whole array
    assert jobs[f"{a}_3"].exit_code == 4 and jobs[f"{a}_0"].cpu_time_raw == 15
    assert fake.queue([a]) == {}
    assert fake.find_by_names(["rec-array"], datetime(2000, 1, 1)) == {"rec-array": [a]}


def test_the_fake_cancels_a_whole_array_as_slurm_does():
    fake = FakeSlurm()
    b = fake.submit(SubmitRequest(script=ARRAY_SCRIPT.replace("rec-array", "rec-cancel"),
                                  options=("--array=1,3,5-7%1",)))  # the command line wins
    fake.start(f"{b}_1")
    fake.cancel(b, user="alice")
    recorded = (SLURM_2205 / "array-sacct-cancelled.txt").read_text()
    assert sacct_shape("\n".join(fake._array_sacct_lines(b)), b) == \
        sacct_shape(recorded, recorded.split("_")[0])
    assert fake.cancelled_by == {b: "alice"} and all(t.finished for t in fake.tasks(b))
    fake.cancel(b)  # again: nothing to do, no error (as scancel)
    with pytest.raises(SlurmError, match="Invalid job id"):
        fake.cancel(f"{b}_2")  # no such task


@pytest.mark.parametrize("spec", ["x", "0-1001"])  # 1001: the dev cluster's MaxArraySize
def test_the_fake_refuses_arrays_sbatch_refuses(spec):
    with pytest.raises(SlurmError, match="Invalid job array specification"):
        FakeSlurm().submit(SubmitRequest(script=ARRAY_SCRIPT, options=(f"--array={spec}",)))


def test_account_limits_and_usage(recorded):
    """A budgeted account (tests/recorded/record_budget.sh): its own association's
    GrpTRESMins limits and used minutes, and what its running job may still use; the
    users' associations under it are not the account's."""
    from gateway.slurm.cli import parse_assoc_mgr

    found = parse_assoc_mgr((recorded / "assoc-mgr-budget.txt").read_text())
    assert list(found) == ["test_budget"]
    usage = found["test_budget"]
    assert (usage.cpu_minutes_limit, usage.gpu_minutes_limit) == (60, 30)
    assert (usage.cpu_minutes_used, usage.gpu_minutes_used) == (0, 0)
    assert (usage.cpu_minutes_running, usage.gpu_minutes_running) == (10, 0)
    # Slurm's word for a job held by it, which job_reasons explains.
    from gateway.job_reasons import pending_words

    state, reason = (recorded / "squeue-budget-held.txt").read_text().strip().split("|")
    assert state == "PENDING" and reason == "AssocGrpCPUMinutesLimit"
    assert "budget is used up" in pending_words(reason)
