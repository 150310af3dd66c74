"""What ended jobs used, read from the real accounting: a deliberately wasteful job is
told a smaller machine type would do, and an out-of-memory job's "run again with more"
submits the next larger machine type, which then has the memory."""
from __future__ import annotations

from gateway import efficiency


def read_efficiency(gw, job_id: int, tries: int = 30) -> dict:
    """The job's efficiency once accounting has its steps (they may come a moment late)."""
    import time

    for _ in range(tries):
        efficiency.read_ended(gw.ctx)
        shown = gw.ok("GET", f"/jobs/{job_id}")["efficiency"]
        if shown is not None:
            return shown
        time.sleep(1)
    raise AssertionError(f"job {job_id}'s efficiency was never read")


def test_a_wasteful_job_and_an_out_of_memory_one(gw_sqlite):
    gw = gw_sqlite
    gw.environment()
    gw.experiment()
    idle = gw.template(name="idle", script="sleep 12\n")
    hungry = gw.template(name="hungry", script=(
        "python3 -c 'import time; b = bytearray(700 * 2**20); time.sleep(2)' || echo 'child died'\n"
        "echo survived\n"))
    wasteful = gw.run(idle["id"], machine_type="double")
    oom = gw.run(hungry["id"], machine_type="small")
    assert gw.wait(wasteful["id"])["status"] == "Completed"
    job = gw.wait(oom["id"])
    assert job["status"] == "Failed" and job["slurm_state"] == "OUT_OF_MEMORY", job

    e = read_efficiency(gw, wasteful["id"])
    assert e["cpu_percent"] is not None and e["cpu_percent"] < 5, e
    assert e["memory_requested_mb"] == 1024.0 and 0 < e["memory_peak_mb"] < 100, e
    assert e["warnings"][0].startswith("it kept ") and e["warnings"][0].endswith(
        "% of its 2 CPUs busy: this machine type is larger than the job needs; small would do"), e
    assert e["warnings"][1].startswith("it used ") and "of 1.0 GB)" in e["warnings"][1], e
    assert e["rerun_with_more"] is None

    e = read_efficiency(gw, oom["id"])
    assert e["rerun_with_more"] == {"machine_type": "double"}, e
    assert e["warnings"][0].startswith("it ran out of memory")
    assert "run it again on double (1 GB)" in e["warnings"][0]
    again = gw.ok("POST", f"/jobs/{oom['id']}/rerun-with-more", 201)
    assert again["machine_type"] == "double" and again["template_version"] == job["template_version"]
    done = gw.wait(again["id"])
    assert done["status"] == "Completed", done
    assert "survived" in gw.ok("GET", f"/jobs/{again['id']}/log").get_data(as_text=True)
    assert "child died" not in gw.ok("GET", f"/jobs/{again['id']}/log").get_data(as_text=True)
