"""How often the poller asks squeue about pending jobs it already asked about."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

# A pending job's reason and start estimate come from squeue when the job is first seen,
# then at most this often, for all pending jobs in one call; in between, a job keeps
# what it has (one squeue over thousands of held jobs costs about as much as the sacct
# call itself).
PENDING_REFRESH_S = 60.0


@dataclass
class QueueMemory:
    """The Slurm ids squeue answered about since the last refresh (in this process)."""

    refreshed: float = 0.0
    asked: set[str] = field(default_factory=set)

    def known(self) -> set[str]:
        now = time.monotonic()
        if now - self.refreshed >= PENDING_REFRESH_S:
            self.refreshed = now
            self.asked.clear()
        return set(self.asked)
