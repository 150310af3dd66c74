"""Job Templates run end to end on the real dev Slurm cluster."""
from __future__ import annotations

import io
import os
from pathlib import Path

NASTY = "$(touch /tmp/gateway-pwned); \"';`id` && rm -rf / #\nsecond line ${HOME}"

BASH_SCRIPT = r"""
echo "label=[$DC_LABEL]"
printf '%s' "$DC_LABEL" > "$JOB_OUTPUT_DIR/label.txt"
echo "work=$JOB_WORK_DIR out=$JOB_OUTPUT_DIR tpl=$JOB_TEMPLATE_DIR"
echo "cpus=$JOB_CPUS mem=$JOB_MEM_MB gpus=$JOB_GPUS env=$GW_ENV_READY"
test -d "$JOB_WORK_DIR" && test "$PWD" = "$JOB_WORK_DIR" && echo "in work dir"
cat "$JOB_TEMPLATE_DIR/helper.txt"
if touch "$JOB_TEMPLATE_DIR/new-file" 2>/dev/null \
        || echo x >> "$JOB_TEMPLATE_DIR/helper.txt" 2>/dev/null; then
    echo "TEMPLATE DIR WRITABLE"
else
    echo "template dir is read-only"
fi
mkdir -p "$JOB_OUTPUT_DIR/sub"
wc -l < "$DC_INPUT" > "$JOB_OUTPUT_DIR/sub/count.txt"
OUT_COUNT=$(cat "$JOB_OUTPUT_DIR/sub/count.txt")
OUT_LABEL="$DC_LABEL"
OUT_FLAG=$DC_FLAG
"""


def _prepare(gw):
    gw.environment()
    exp = gw.experiment()
    gw.ok("PUT", "/projects/proj/experiments/exp/files/raw/data.txt", 201, data=b"a\nb\nc\n")
    return exp


def test_bash_template_runs_with_inputs_outputs_and_files(gw):
    exp = _prepare(gw)
    tpl = gw.template(
        script=BASH_SCRIPT,
        inputs=[{"name": "DC_LABEL", "type": "string", "default": "x"},
                {"name": "DC_INPUT", "type": "path"},
                {"name": "DC_FLAG", "type": "boolean", "default": False, "advanced": True}],
        outputs=[{"name": "OUT_COUNT", "description": "lines"}, {"name": "OUT_LABEL"},
                 {"name": "OUT_FLAG"}, {"name": "OUT_NEVER_SET"}])
    assert tpl["status"] == "unvalidated" and tpl["version"] == 1
    files = gw.ok("POST", f"/templates/{tpl['id']}/files", 201,
                  data={"files": (io.BytesIO(b"support file content\n"), "helper.txt")},
                  content_type="multipart/form-data")
    assert files["version"] == 2 and files["files"][0]["name"] == "helper.txt"

    job = gw.run(tpl["id"], inputs={"DC_LABEL": NASTY, "DC_INPUT": "raw/data.txt", "DC_FLAG": True})
    assert job["status"] == "Pending" and job["slurm_job_id"]
    assert job["template_version"] == 2
    job = gw.wait(job["id"])
    log = gw.ok("GET", f"/jobs/{job['id']}/log").get_data(as_text=True)
    assert job["status"] == "Completed", (job, log)
    assert job["exit_code"] == 0
    # Inputs arrive verbatim and nothing in them ran.
    assert not os.path.exists("/tmp/gateway-pwned")
    assert f"label=[{NASTY}]" in log
    assert job["output_variables"] == {"OUT_COUNT": "3", "OUT_LABEL": NASTY, "OUT_FLAG": "true"}
    assert job["inputs"] == {"DC_LABEL": NASTY, "DC_INPUT": "raw/data.txt", "DC_FLAG": "true"}
    assert "cpus=1 mem=512 gpus=0 env=yes" in log
    assert "in work dir" in log
    assert "support file content" in log
    assert "template dir is read-only" in log and "WRITABLE" not in log
    assert {f["path"] for f in job["output_files"]} == {"label.txt", "sub/count.txt"}
    got = gw.ok("GET", f"/jobs/{job['id']}/files/label.txt")
    assert got.get_data(as_text=True) == NASTY
    # Outputs land in the experiment's Processed folder too.
    processed = exp / "Processed" / f"tpl-{job['id']}"
    assert (processed / "sub" / "count.txt").read_text().strip() == "3"
    assert (processed / "label.txt").read_text() == NASTY
    # The scratch work dir is gone with the job.
    assert not list(Path("/var/tmp/slurm-scratch").glob(f"gateway-job-{job['id']}-{job['slurm_job_id']}"))
    # First Completed job validates the template.
    assert gw.ok("GET", f"/templates/{tpl['id']}")["status"] == "validated"
    # The rendered script is kept and is what Slurm ran.
    script = gw.ok("GET", f"/jobs/{job['id']}/script").get_data(as_text=True)
    assert "#SBATCH --account=test_lab" in script and "#SBATCH --tmp=1G" in script


def test_python_template_runs_with_its_interpreter(gw):
    _prepare(gw)
    script = (
        "import os, sys, helper\n"
        "print('python', sys.version_info[0], 'exe', sys.executable)\n"
        "OUT_SUM = helper.add(int(os.environ['DC_A']), 2)\n"
        "os.environ['OUT_FROM_ENV'] = os.environ['DC_NAME']\n"
        "open(os.path.join(os.environ['JOB_OUTPUT_DIR'], 'r.txt'), 'w').write('ok')\n")
    tpl = gw.template(language="python", python_executable="/usr/bin/python3", script=script,
                      inputs=[{"name": "DC_A", "type": "integer", "default": 40},
                              {"name": "DC_NAME", "type": "choice", "choices": ["x", "y z"],
                               "default": "x"}],
                      outputs=[{"name": "OUT_SUM"}, {"name": "OUT_FROM_ENV"}])
    gw.ok("POST", f"/templates/{tpl['id']}/files", 201,
          data={"files": (io.BytesIO(b"def add(a, b):\n    return a + b\n"), "helper.py")},
          content_type="multipart/form-data")
    job = gw.wait(gw.run(tpl["id"], inputs={"DC_NAME": "y z"})["id"])
    log = gw.ok("GET", f"/jobs/{job['id']}/log").get_data(as_text=True)
    assert job["status"] == "Completed", log
    assert "exe /usr/bin/python3" in log
    assert job["output_variables"] == {"OUT_SUM": "42", "OUT_FROM_ENV": "y z"}
    assert job["output_files"] == [{"path": "r.txt", "size": 2}]


def test_old_versions_stay_runnable_and_jobs_record_their_version(gw):
    _prepare(gw)
    tpl = gw.template(script="OUT_V=one\n", outputs=[{"name": "OUT_V"}])
    body = {"language": "bash", "script": "OUT_V=two\n", "environment": "base",
            "outputs": [{"name": "OUT_V"}]}
    v2 = gw.ok("PUT", f"/templates/{tpl['id']}", json=body)
    assert v2["version"] == 2 and [v["version"] for v in v2["versions"]] == [1, 2]
    old = gw.run(tpl["id"], version=1)
    new = gw.run(tpl["id"])
    assert old["template_version"] == 1 and new["template_version"] == 2
    assert gw.wait(old["id"])["output_variables"] == {"OUT_V": "one"}
    assert gw.wait(new["id"])["output_variables"] == {"OUT_V": "two"}
    assert gw.ok("GET", f"/templates/{tpl['id']}?version=1")["script"] == "OUT_V=one\n"


def test_gpu_machine_type_gets_gres_and_is_charged_gpu_hours(gw):
    _prepare(gw)
    tpl = gw.template(script='echo "gpus=$JOB_GPUS"; sleep 3\n')
    job = gw.wait(gw.run(tpl["id"], machine_type="gpu2")["id"])
    assert job["status"] == "Completed"
    acct = gw.sacct(job["slurm_job_id"], "AllocTRES,ElapsedRaw,CPUTimeRAW")
    assert "gres/gpu=2" in acct["AllocTRES"] and job["partition"] == "gpu"
    assert job["alloc_gpus"] == 2 and job["alloc_cpus"] == 2
    assert job["gpu_seconds"] == 2 * int(acct["ElapsedRaw"]) > 0
    assert job["cpu_seconds"] == int(acct["CPUTimeRAW"])
    assert "gpus=2" in gw.ok("GET", f"/jobs/{job['id']}/log").get_data(as_text=True)
