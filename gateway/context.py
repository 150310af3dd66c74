"""What every service needs at hand: the settings, the way to Slurm, the blob store,
the upload limit and where a job's folder is."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .blobs import BlobStore
from .config import Config
from .job_paths import JobPaths
from .slurm.cli import CliSlurm
from .slurm.client import SlurmClient
from .slurm.queue_memory import QueueMemory
from .slurm.warm_helpers import WarmHelpers

logger = logging.getLogger(__name__)


def in_a_thread(work: Callable[[], None]) -> None:
    """Run ``work`` after the caller has answered (a sweep's task folders)."""
    def run() -> None:
        try:
            work()
        except Exception:
            logger.exception("work left for later failed")

    threading.Thread(target=run, name="gateway-later").start()


@dataclass
class Context:
    config: Config
    slurm: SlurmClient
    # Derived from the config once, here, so no caller builds its own.
    blobs: BlobStore = field(init=False)
    max_upload_bytes: int = field(init=False)
    # The poller's: which pending jobs squeue was asked about lately (one per gateway).
    queue_memory: QueueMemory = field(init=False, default_factory=QueueMemory)
    # How work that need not hold up an answer is run: in a thread; tests run it at once.
    run_later: Callable[[Callable[[], None]], None] = in_a_thread

    def __post_init__(self) -> None:
        self.blobs = BlobStore(self.config.store_root)
        self.max_upload_bytes = self.config.max_upload_mb * 2**20

    @classmethod
    def from_config(cls, config: Config) -> Context:
        s = config.slurm
        helpers = WarmHelpers(s.bin_dir, s.submit_helper) if s.submit_via == "helper" else None
        return cls(config=config, slurm=CliSlurm(s.bin_dir, s.command_timeout_seconds, helpers))

    def job_paths(self, job_id: int | str) -> JobPaths:
        """The folder of job ``job_id`` (``preview`` for a script shown before a run)."""
        return JobPaths(Path(self.config.jobs_root) / str(job_id))
