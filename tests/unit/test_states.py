from gateway.slurm.states import COMPLETED, FAILED, PENDING, RUNNING, STATE_MAP, classify, normalise


def test_every_state_maps_to_one_of_four():
    for state in STATE_MAP:
        assert classify(state).status in (PENDING, RUNNING, COMPLETED, FAILED)


def test_short_codes_and_first_word():
    assert normalise("PD") == "PENDING"
    assert normalise("CANCELLED by 0") == "CANCELLED"
    assert normalise("OOM") == "OUT_OF_MEMORY"
    assert classify("CA").status == FAILED


def test_failures_say_why():
    assert "TIMEOUT" in classify("TIMEOUT", 0, 1).reason
    assert "out of memory" in classify("OUT_OF_MEMORY", 0, 0).reason
    assert "node failure" in classify("NODE_FAIL").reason
    assert "preempted" in classify("PREEMPTED").reason
    assert classify("FAILED", 3, 0).reason == "the script exited with status 3"
    assert classify("FAILED", 0, 9).reason == "killed by signal 9"
    assert classify("CANCELLED by 1000").reason == "cancelled by 1000"


def test_script_exit_status_wins_over_a_completed_allocation():
    out = classify("COMPLETED", 0, 0, script_exit=4, ended=True)
    assert out.status == FAILED and out.exit_code == 4 and "status 4" in out.reason


def test_oom_with_exit_zero_is_failed():
    out = classify("OUT_OF_MEMORY", 0, 0, script_exit=None, ended=True)
    assert out.status == FAILED and "memory" in out.reason


def test_oom_without_cgroups_is_recognised_from_the_log():
    log = "slurmstepd: error: Job 11 exceeded memory limit (120 > 102400), being killed\n"
    out = classify("FAILED", 0, 9, ended=True, log_tail=log)
    assert out.status == FAILED and "out of memory" in out.reason
    assert "out of memory" not in classify("FAILED", 0, 9, ended=True, log_tail="other").reason


def test_completed_is_completed_and_running_has_no_exit_code():
    assert classify("COMPLETED", 0, 0, script_exit=0, ended=True).status == COMPLETED
    running = classify("RUNNING", 0, 0)
    assert running.status == RUNNING and running.exit_code is None


def test_pending_reason_is_shown():
    assert classify("PENDING", pending_reason="JobHeldUser").reason == "waiting: JobHeldUser"


def test_unknown_state_is_not_dropped():
    assert classify("SOMETHING_NEW", ended=False).status == RUNNING
    assert classify("SOMETHING_NEW", ended=True).status == FAILED
