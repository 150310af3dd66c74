"""After access changes, the fences outside the gateway follow: folder ACLs on disk
(disk_access) and Slurm associations (slurm_associations).

Called when grants change, when someone logs in (their teams or Unix identity may
have changed), by the poller every few minutes, and by ``gateway check --fix``. A
failure here (Slurm's database down, a folder gone) is logged and never undoes or
blocks the change in the gateway: the next run puts the fences right.
"""
from __future__ import annotations

import logging

from . import disk_access, slurm_associations
from .context import Context

logger = logging.getLogger(__name__)


def follow(ctx: Context, disk: bool = True, slurm: bool = True, project=None) -> list[str]:
    """Make disk (every project's folders, or only ``project``'s) and Slurm match the
    gateway; returns what was changed, as text."""
    changed: list[str] = []
    runners = disk_access.Runners.load(ctx.config)
    if disk:
        try:
            drifts = (disk_access.sync_project(ctx.config, project, runners) if project is not None
                      else disk_access.sync_all(ctx.config, runners=runners))
            changed += [str(d) for d in drifts]
        except OSError as e:
            logger.error("folder access could not be brought in line: %s", e)
    if slurm:
        try:
            changed += [str(d) for d in slurm_associations.sync(ctx.config, ctx.slurm, runners=runners)]
        except Exception as e:  # noqa: BLE001 - Slurm errors are logged, the poller retries
            logger.error("Slurm associations could not be brought in line: %s", e)
    return changed
