"""The one description of a job folder, ``<jobs_root>/<job id>/``.

The gateway makes the folder and ``template/`` (read-only for the job); the job
writes ``run/`` (its log, exit status and ``OUT_`` values) and ``output/`` (its
result files). Names below the folder are relative so that ``job_files`` can open
them from the folder's descriptor without following any link the job left there.
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

    @classmethod
    def of(cls, jobs_root: Path, job_id: int | str) -> JobPaths:
        return cls(Path(jobs_root) / str(job_id))

    @property
    def run_dir(self) -> Path:
        return self.base / RUN

    @property
    def output_dir(self) -> Path:
        return self.base / OUTPUT

    @property
    def template_dir(self) -> Path:
        return self.base / TEMPLATE

    @property
    def log(self) -> Path:
        return self.base / LOG

    @property
    def script(self) -> Path:
        return self.base / SCRIPT
