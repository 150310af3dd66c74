"""Everything that talks to Slurm lives in this package; nothing else runs its commands."""
from .client import SlurmClient, SlurmJob, SubmitRequest
from .states import Outcome, classify

__all__ = ["Outcome", "SlurmClient", "SlurmJob", "SubmitRequest", "classify"]
