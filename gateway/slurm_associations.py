"""Slurm associations follow licence membership: a person's Unix user may charge, in
Slurm itself, exactly the licences they may charge in the gateway.

So ``sbatch -A other_lab`` typed inside a job (or on a login node) is refused by
Slurm, not only by the gateway. Only the licences' accounts are managed; a user's
associations with other accounts are left alone. The shared job user is associated
with every licence one of its people may charge (admins: all of them).

Kept in sync when access to a licence is granted or revoked, when someone logs in
(their teams may have changed), by the poller every few minutes, and by
``gateway check --fix``; ``gateway check`` reports any difference.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from . import access
from .config import Config
from .disk_access import Runners
from .errors import SlurmError
from .slurm.client import SlurmClient

logger = logging.getLogger(__name__)

# Never changed: Slurm's own administrator.
EXEMPT = {"root"}


@dataclass(frozen=True)
class AssociationDrift:
    user: str
    missing: tuple[str, ...]
    extra: tuple[str, ...]

    def __str__(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"should be associated with {', '.join(self.missing)}")
        if self.extra:
            parts.append(f"should not be associated with {', '.join(self.extra)}")
        return f"Slurm user {self.user!r} {' and '.join(parts)}"


def wanted(config: Config, runners: Runners | None = None) -> dict[str, set[str]]:
    """Unix user -> the licence accounts their jobs may charge."""
    runners = runners or Runners.load(config)
    out: dict[str, set[str]] = {}
    for unix, users in runners.by_unix.items():
        out[unix] = {lic.slurm_account for lic in config.licenses.values()
                     if any(access.can(u, "license.charge", lic) for u in users)}
    return out


def drift(config: Config, pairs: list[tuple[str, str]], want: dict[str, set[str]]) -> list[AssociationDrift]:
    """How Slurm's (user, account) ``pairs`` differ from ``want``."""
    existing = {acct for _, acct in pairs}
    # An account Slurm lacks is reported by slurm_checks; nobody can be put in it here.
    managed = {lic.slurm_account for lic in config.licenses.values()} & existing
    have: dict[str, set[str]] = {}
    for user, acct in pairs:
        if user and acct in managed:
            have.setdefault(user, set()).add(acct)
    found = []
    for user in sorted(set(want) | set(have)):
        if user in EXEMPT:
            continue
        w, h = want.get(user, set()) & managed, have.get(user, set())
        if w != h:
            found.append(AssociationDrift(user, tuple(sorted(w - h)), tuple(sorted(h - w))))
    return found


def sync(config: Config, slurm: SlurmClient, fix: bool = True,
         runners: Runners | None = None) -> list[AssociationDrift]:
    """Report (and with ``fix`` correct) association drift; returns what differed."""
    pairs = slurm.associations()
    want = wanted(config, runners)
    found = drift(config, pairs, want)
    if not fix or not found:
        return found
    others: dict[str, set[str]] = {}
    managed = {lic.slurm_account for lic in config.licenses.values()}
    for user, acct in pairs:
        if user and acct not in managed:
            others.setdefault(user, set()).add(acct)
    defaults = slurm.default_accounts() if any(d.extra for d in found) else {}
    for d in found:
        try:
            _fix(slurm, d, sorted((want.get(d.user, set()) - set(d.extra)) | others.get(d.user, set())),
                 defaults.get(d.user, ""))
        except SlurmError as e:  # one person's trouble does not stop the others' fixes
            logger.error("associations of %s not fixed: %s", d.user, e.message)
            continue
        logger.info("associations fixed: %s", d)
    return found


def _fix(slurm: SlurmClient, d: AssociationDrift, keep: list[str], default: str) -> None:
    if d.missing:
        slurm.add_association(d.user, list(d.missing))
    if d.extra:
        if not keep:
            slurm.remove_association(d.user, None)
        else:
            slurm.remove_association(d.user, list(d.extra), keep[0] if default in d.extra else "")
