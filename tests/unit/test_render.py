"""The rendered sbatch script is compared with golden files: a change shows as a diff."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from gateway.job_paths import JobPaths
from gateway.render import RenderRequest, heredoc_marker, render_job_script

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def request(**kw):
    base = dict(
        job_id=17, slurm_job_name="gw-17-1764000000",
        template_name="count lines", template_version=3, language="bash",
        script='echo "$DC_LABEL"\nOUT_N=1\n', python_executable="",
        environment="base", environment_version="2", environment_setup="module load foo/1.0",
        inputs=(("DC_LABEL", "$(touch /tmp/x); \"';"), ("DC_N", "5")),
        partition="gpu", account="lab_a", cpus=4, memory_mb=8192, gpus=1, gres="gpu:a100:1",
        software_disk_gb=20, time_limit_minutes=120, paths=JobPaths(Path("/srv/gw/jobs/17")),
        scratch_root="/scratch",
    )
    base.update(kw)
    return RenderRequest(**base)


@pytest.mark.parametrize("name,req", [
    ("bash_gpu.sbatch", request()),
    ("python_cpu.sbatch", request(language="python", python_executable="/opt/conda/bin/python",
                                  script="OUT_N = 1\n", gpus=0, gres=None, partition="cpu")),
])
def test_golden(name, req):
    text = render_job_script(req)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_script_is_valid_bash():
    for req in (request(), request(language="python", python_executable="python3")):
        proc = subprocess.run(["bash", "-n"], input=render_job_script(req), text=True,
                              capture_output=True)
        assert proc.returncode == 0, proc.stderr


def test_heredoc_marker_never_collides():
    first = heredoc_marker("x")
    hostile = f"echo hi\n{first}\nrm -rf /\n"
    assert heredoc_marker(hostile) not in hostile.splitlines()


def test_inputs_are_quoted():
    text = render_job_script(request())
    assert "export DC_LABEL='$(touch /tmp/x); \"'\"'\"';'" in text
    assert "#SBATCH --gres=gpu:a100:1" in text and "#SBATCH --tmp=20G" in text
    assert "#SBATCH --time=120" in text and "#SBATCH --account=lab_a" in text


def test_the_job_folder_layout_comes_from_job_paths():
    """The sbatch templates name no place in the job folder themselves: a JobPaths
    elsewhere moves every one of them."""
    from gateway import job_paths
    from gateway.render import DEFAULT_TEMPLATES_DIR

    names = [job_paths.LOG, job_paths.EXIT_STATUS, job_paths.OUTPUTS_FILE]
    for template in DEFAULT_TEMPLATES_DIR.glob("*.j2"):
        text = re.sub(r"paths\.\w+", "", template.read_text())
        for name in names + [n.rpartition("/")[2] for n in names]:
            assert name not in text, (template.name, name)
    paths = JobPaths(Path("/elsewhere/x"))
    text = render_job_script(request(paths=paths))
    for place in (paths.log, paths.exit_status, paths.outputs_file, paths.output_dir, paths.template_dir):
        assert str(place) in text
    assert "/srv/gw" not in text
