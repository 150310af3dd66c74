"""Job Template version + run settings -> sbatch script text. Pure: no DB, no Slurm."""
from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from .job_paths import LOG, SCRIPT, JobPaths

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "sbatch_templates"


@dataclass(frozen=True)
class RenderRequest:
    job_id: int | str
    slurm_job_name: str
    template_name: str
    template_version: int
    language: str  # bash | python
    script: str
    python_executable: str
    environment: str
    environment_version: str
    environment_setup: str
    inputs: tuple[tuple[str, str], ...]  # (DC_NAME, value) in template order
    partition: str
    account: str
    cpus: int
    memory_mb: int
    gpus: int
    gres: str | None
    software_disk_gb: int
    time_limit_minutes: int
    paths: JobPaths  # the job's folder; the template names every place in it from these
    scratch_root: str
    # Where the job tells the gateway it started and ended, and the job's own token for
    # it (job_callbacks); empty: the script does not call back.
    callback_url: str = ""
    callback_token: str = ""


def heredoc_marker(*texts: str) -> str:
    """A here-document delimiter that cannot occur as a line of any of ``texts``."""
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()
    lines = {line.strip() for t in texts for line in t.splitlines()}
    n = 16
    while (marker := f"GATEWAY_EOF_{digest[:n]}") in lines:
        n += 1
    return marker


@lru_cache(maxsize=4)
def _environment(templates_dir: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["sh"] = lambda v: shlex.quote(str(v))
    return env


def render_job_script(req: RenderRequest, templates_dir: Path | str = DEFAULT_TEMPLATES_DIR) -> str:
    """Render the sbatch script that runs ``req``; what this returns is what runs."""
    env = _environment(str(templates_dir))
    script = req.script if req.script.endswith("\n") else req.script + "\n"
    runner = env.loader.get_source(env, "python_runner.py")[0]
    fields = {k: getattr(req, k) for k in req.__dataclass_fields__ if k != "script"}
    return env.get_template("job.sh.j2").render(
        **fields,
        script=script[:-1],
        script_file="script.py" if req.language == "python" else "script.sh",
        heredoc=heredoc_marker(script, req.environment_setup, runner),
    )


@dataclass(frozen=True)
class ArrayRequest:
    """One Slurm job array of a sweep: the resources every task gets, and for each
    task its index in the array and the folder of the job it is."""
    sweep_id: int
    slurm_job_name: str
    template_name: str
    template_version: int
    partition: str
    account: str
    cpus: int
    memory_mb: int
    gres: str | None
    software_disk_gb: int
    time_limit_minutes: int
    array: str  # sbatch's --array value, e.g. "0-99%10"
    job_ids: tuple[int, ...]  # task k of the array is job job_ids[k]
    jobs_root: Path  # where job folders are: <jobs_root>/<job id>
    chdir: Path  # a folder every task's user may enter
    wait_seconds: int  # how long a task waits for its folder (made just after submit)


def render_array_script(req: ArrayRequest, templates_dir: Path | str = DEFAULT_TEMPLATES_DIR) -> str:
    """The sbatch script of one array of a sweep; each task runs its job's own script."""
    env = _environment(str(templates_dir))
    return env.get_template("array.sh.j2").render(
        **{k: getattr(req, k) for k in req.__dataclass_fields__}, script_name=SCRIPT, log_name=LOG)
