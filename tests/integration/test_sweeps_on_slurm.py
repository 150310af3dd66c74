"""Sweeps on the real Slurm: a 3×2 sweep over an integer list and a Path glob runs as
one job array; each task's OUT_ values reach the results (API and CSV); each task is
charged from its own accounting record, to the second; a failing task is re-run
alone; cancel stops the rest."""
from __future__ import annotations

import csv
import io

SCRIPT = """flag="$(dirname "$DC_DATA")/fail-once"
if [ "$DC_N" = 2 ] && [ "$(basename "$DC_DATA")" = b.txt ] && [ -e "$flag" ]; then
    echo "failing on purpose"; exit 3
fi
sleep 2
OUT_SUM=$((DC_N * 10))
OUT_FILE=$(basename "$DC_DATA")
"""


def run_body(inputs, **extra):
    return {"project": "proj", "experiment": "exp", "machine_type": "small", "license": "test-lab",
            "software_disk_gb": 1, "inputs": inputs, **extra}


def test_a_sweep_runs_as_one_array_charged_per_task_and_reruns_its_failure(gw):
    gw.environment()
    gw.experiment()
    for name in ("a.txt", "b.txt", "fail-once"):
        gw.ok("PUT", f"/projects/proj/experiments/exp/files/raw/{name}", 201, data=b"x\n")
    tpl = gw.template(name="sweeper", script=SCRIPT, outputs=[{"name": "OUT_SUM"}, {"name": "OUT_FILE"}],
                      inputs=[{"name": "DC_N", "type": "integer", "default": 1},
                              {"name": "DC_DATA", "type": "path", "default": "raw"}])
    s = gw.ok("POST", f"/templates/{tpl['id']}/sweeps", 201, json=run_body(
        {"DC_N": {"values": [1, 2, 3]}, "DC_DATA": {"glob": "raw/*.txt"}}, throttle=3))
    assert s["tasks"] == 6 and len(s["array_job_ids"]) == 1
    for job in s["jobs"]:
        gw.wait(job["id"], timeout=180)
    done = gw.ok("GET", f"/sweeps/{s['id']}")
    assert done["status_counts"] == {"Pending": 0, "Running": 0, "Completed": 5, "Failed": 1}, done
    by_inputs = {(j["inputs"]["DC_N"], j["inputs"]["DC_DATA"]): j for j in done["jobs"]}
    failed = by_inputs[("2", "raw/b.txt")]
    assert failed["status"] == "Failed" and failed["exit_code"] == 3
    for (n, path), job in by_inputs.items():
        if job is failed:
            continue
        assert job["output_variables"] == {"OUT_SUM": str(int(n) * 10), "OUT_FILE": path.split("/")[1]}
        # Charged from the task's own accounting record, to the second.
        acct = gw.sacct(job["slurm_job_id"], "JobID,CPUTimeRAW,Account")
        assert acct["JobID"] == job["slurm_job_id"]
        assert job["cpu_seconds"] == int(acct["CPUTimeRAW"]) > 0 and acct["Account"] == "test_lab"
    log = gw.api("GET", f"/jobs/{failed['id']}/log").get_data(as_text=True)
    assert "failing on purpose" in log
    results = gw.api("GET", f"/sweeps/{s['id']}/results.csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(results)))
    assert len(rows) == 6 and {r["OUT_SUM"] for r in rows} == {"10", "20", "30", ""}

    # The failed task alone, again (its cause fixed): one new array of one task.
    (gw.config.data_root / "projects" / "proj" / "exp" / "raw" / "fail-once").unlink()
    again = gw.ok("POST", f"/sweeps/{s['id']}/rerun-failed", 201)
    assert again["tasks"] == 1 and again["array_job_ids"][0] not in s["array_job_ids"]
    job = gw.wait(again["jobs"][0]["id"], timeout=120)
    assert job["status"] == "Completed" and job["output_variables"]["OUT_SUM"] == "20"


def test_cancel_stops_the_rest_of_a_sweep(gw):
    gw.environment()
    gw.experiment()
    tpl = gw.template(name="slow-sweep", script="sleep 60\n",
                      inputs=[{"name": "DC_N", "type": "integer", "default": 1}])
    s = gw.ok("POST", f"/templates/{tpl['id']}/sweeps", 201, json=run_body(
        {"DC_N": {"range": {"start": 1, "stop": 4}}}, throttle=1))
    gw.wait(s["jobs"][0]["id"], timeout=60, until=lambda j: j["status"] == "Running")
    gw.ok("POST", f"/sweeps/{s['id']}/cancel", 202)
    for job in s["jobs"]:
        final = gw.wait(job["id"], timeout=60)
        assert final["status"] == "Failed" and final["cancelled_by"] == "admin", final
    counts = gw.ok("GET", f"/sweeps/{s['id']}")["status_counts"]
    assert counts["Failed"] == 4
