"""The one description of a job folder, ``<jobs_root>/<job id>/``.

The gateway makes the folder and ``template/`` (read-only for the job); the job
writes ``run/`` (its log, exit status and ``OUT_`` values) and ``output/`` (its
result files). Everything that names a place in a job folder (runs, the renderer and
its sbatch template, the poller, jobs, disk access) takes it from a ``JobPaths``, made
by ``Context.job_paths``. The names below the folder are also given relative, so that
``job_files`` can open them from the folder's descriptor without following any link
the job left there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUN = "run"
OUTPUT = "output"
TEMPLATE = "template"
LOG = f"{RUN}/job.log"
EXIT_STATUS = f"{RUN}/exit_status"
OUTPUTS_FILE = f"{RUN}/outputs.env"
SCRIPT = "job.sbatch"


@dataclass(frozen=True)
class JobPaths:
    base: Path

    @property
    def run_dir(self) -> Path:
        """Written by the job: its log, exit status and OUT_ values."""
        return self.base / RUN

    @property
    def output_dir(self) -> Path:
        """Written by the job: its result files."""
        return self.base / OUTPUT

    @property
    def template_dir(self) -> Path:
        """The template's support files, read-only for the job."""
        return self.base / TEMPLATE

    @property
    def log(self) -> Path:
        return self.base / LOG

    @property
    def exit_status(self) -> Path:
        """The template script's own exit status, written by the sbatch script."""
        return self.base / EXIT_STATUS

    @property
    def outputs_file(self) -> Path:
        """The job's OUT_ values, NUL-separated ``NAME=value`` records."""
        return self.base / OUTPUTS_FILE

    @property
    def script(self) -> Path:
        """The sbatch script the gateway submitted."""
        return self.base / SCRIPT
