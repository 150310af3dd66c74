"""What every service needs at hand: the settings and the way to Slurm."""
from __future__ import annotations

from dataclasses import dataclass

from .config import Config
from .slurm.cli import CliSlurm
from .slurm.client import SlurmClient


@dataclass
class Context:
    config: Config
    slurm: SlurmClient

    @classmethod
    def from_config(cls, config: Config) -> Context:
        s = config.slurm
        return cls(config=config, slurm=CliSlurm(s.bin_dir, s.command_timeout_seconds))
