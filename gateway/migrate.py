"""Schema migrations (peewee-migrate) from migrations/; the only way tables are made."""
from __future__ import annotations

import logging
from pathlib import Path

import peewee
from peewee_migrate import Router

from .db import database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def router() -> Router:
    log = logging.getLogger("peewee_migrate")
    log.setLevel(logging.WARNING)
    return Router(database.obj, migrate_dir=str(MIGRATIONS_DIR), logger=log)


def upgrade(target: str | None = None) -> list[str]:
    """Apply every migration not applied yet (or up to ``target``); return their names."""
    r = router()
    todo = r.diff
    if target:
        todo = todo[: todo.index(target) + 1]
    if not todo:
        return []
    db = database.obj
    sqlite = isinstance(db, peewee.SqliteDatabase)
    # SQLite changes a column by rebuilding its table; with foreign keys on, rebuilding a
    # table that others point at fails, so they are off while the schema changes (as
    # SQLite's own documentation prescribes) and checked once it is done.
    if sqlite:
        db.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        for name in todo:
            r.run_one(name, r.migrator, fake=False, force=False)
        if sqlite and db.execute_sql("PRAGMA foreign_key_check").fetchall():
            raise RuntimeError("the migrated database breaks a foreign key; see PRAGMA foreign_key_check")
    finally:
        if sqlite:
            db.execute_sql("PRAGMA foreign_keys = ON")
    return list(todo)


def pending() -> list[str]:
    return list(router().diff)
