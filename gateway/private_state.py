"""The gateway's own files are its own: checked before it serves, and by `gateway check`.

The web process and the poller run as an unprivileged service user. Jobs run as
other Unix users on the same machines, so nothing the gateway keeps may be open to
them: the database, the blob store and the secrets are the service user's alone
(0700/0600); the job and data roots are 0711 (passable, not listable) and each
folder below them admits the people the role model names (see disk_access).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .config import Config
from .db import sqlite_path

# Files the gateway writes (database, logs, uploads in progress) are private unless
# it opens them up on purpose.
UMASK = 0o077


def refuse_root(command: str) -> str | None:
    """Why ``command`` must not run as root, or None. The gateway needs no root: it
    becomes people through sudo for sbatch and scancel only."""
    if os.geteuid() != 0:
        return None
    return (f"`gateway {command}` does not run as root: run it as the gateway's service user "
            f"(e.g. `runuser -u gateway -- gateway {command}`; see README, Security model)")


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def problems(config: Config) -> list[str]:
    """Every way the gateway's state is open to others (empty: all private)."""
    me = os.geteuid()
    found: list[str] = []

    def owned(p: Path, what: str) -> bool:
        if not p.exists():
            found.append(f"{what} {p} does not exist")
            return False
        if os.stat(p).st_uid != me:
            found.append(f"{what} {p} is not owned by the gateway's user (uid {me})")
        return True

    def private(p: Path, what: str) -> None:
        if owned(p, what) and _mode(p) & 0o077:
            found.append(f"{what} {p} is open to others (mode {_mode(p):o}): chmod "
                         f"{'700' if p.is_dir() else '600'} it")

    def passable(p: Path, what: str) -> None:
        if owned(p, what) and _mode(p) & 0o066:
            found.append(f"{what} {p} lets others list or change it (mode {_mode(p):o}): chmod 711 it")

    db = sqlite_path(config.database_url)
    if db is not None and db.exists():
        private(db, "the database")
        for suffix in ("-wal", "-shm"):
            side = db.with_name(db.name + suffix)
            if side.exists():
                private(side, "the database's")
    private(config.store_root, "the blob store")
    passable(config.jobs_root, "jobs_root")
    passable(config.data_root, "data_root")
    if config.ldap.bind_password_file:
        p = Path(config.ldap.bind_password_file)
        if p.exists() and _mode(p) & 0o007:
            found.append(f"the LDAP password file {p} is readable by everyone (mode {_mode(p):o})")
    return found
