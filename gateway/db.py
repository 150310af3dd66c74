"""The database handle: a proxy bound at start to SQLite (default) or PostgreSQL."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import peewee
from playhouse.db_url import connect

logger = logging.getLogger(__name__)

database = peewee.DatabaseProxy()


def utcnow() -> datetime:
    """Naive UTC: both backends store it the same way."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def iso(dt: datetime | None) -> str | None:
    return dt.replace(microsecond=0).isoformat() + "Z" if dt else None


class JSONField(peewee.TextField):
    def db_value(self, value):
        return None if value is None else json.dumps(value, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


def bind(url: str) -> peewee.Database:
    """Open the database at ``url`` and point the models' proxy at it."""
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        # WAL lets the poller write while the API reads; the busy timeout covers
        # the short moments two writers meet.
        db = connect(url, pragmas={"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000},
                     check_same_thread=False)
    else:
        db = connect(url)
    database.initialize(db)
    return db
