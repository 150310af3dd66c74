"""Schema migrations (peewee-migrate) from migrations/; the only way tables are made."""
from __future__ import annotations

import logging
from pathlib import Path

from peewee_migrate import Router

from .db import database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def router() -> Router:
    log = logging.getLogger("peewee_migrate")
    log.setLevel(logging.WARNING)
    return Router(database.obj, migrate_dir=str(MIGRATIONS_DIR), logger=log)


def upgrade() -> list[str]:
    """Apply every migration not applied yet; return their names."""
    r = router()
    todo = r.diff
    r.run()
    return list(todo)


def pending() -> list[str]:
    return list(router().diff)
