"""The database handle: a proxy bound at start to SQLite (default) or PostgreSQL."""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import peewee
from playhouse.db_url import connect
from playhouse.pool import PooledSqliteDatabase

logger = logging.getLogger(__name__)

database = peewee.DatabaseProxy()


def utcnow() -> datetime:
    """Naive UTC: both backends store it the same way."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(dt: datetime | None) -> str | None:
    return dt.replace(microsecond=0).isoformat() + "Z" if dt else None


class JSONField(peewee.TextField):
    def db_value(self, value):
        return None if value is None else json.dumps(value, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class SqliteDatabase(PooledSqliteDatabase):
    """Pooled SQLite whose transactions take the write lock when they begin.

    A transaction that reads, then writes, would otherwise fail at once with "database
    is locked" if another connection (the poller, another worker) wrote in between,
    whatever the busy timeout: SQLite cannot upgrade a stale read snapshot. With
    BEGIN IMMEDIATE the second writer waits (busy timeout) instead.

    It is set in ``begin``, where every transaction starts: the models reach the
    database through a ``DatabaseProxy``, whose ``atomic()`` never calls this class's.
    """

    def begin(self, lock_type: str | None = None):
        return super().begin(lock_type or "IMMEDIATE")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (``sqlite:///relative``, ``sqlite:////absolute``), or None."""
    scheme, sep, rest = url.partition("://")
    return Path(rest[1:]) if sep and scheme.startswith("sqlite") else None


def bind(url: str) -> peewee.Database:
    """Open the database at ``url`` and point the models' proxy at it.

    Connections are pooled: a request takes one and gives it back, instead of
    opening a connection (and, for SQLite, setting its pragmas) every time.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"database_url {url!r} has no scheme (sqlite:///... or postgresql://...)")
    pooled = scheme if "+pool" in scheme else f"{scheme}+pool"
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # WAL lets the poller write while the API reads; the busy timeout covers
        # the short moments two writers meet.
        db = SqliteDatabase(str(path), pragmas={"journal_mode": "wal", "foreign_keys": 1,
                                               "busy_timeout": 10000},
                            check_same_thread=False, max_connections=32, stale_timeout=600)
    else:
        db = connect(f"{pooled}://{rest}", max_connections=32, stale_timeout=600)
    database.initialize(db)
    return db


def insert_rows(model: type[peewee.Model], rows: list[dict]) -> None:
    """Insert ``rows`` (field name -> value; left out: the field's default) with one
    prepared statement run for every row. ``insert_many`` builds a single statement
    holding every value, and building it costs more than writing the rows: a
    thousand-task sweep spent most of its submit there."""
    if not rows:
        return
    fields = [f for f in model._meta.sorted_fields if not isinstance(f, peewee.AutoField)]
    defaults = {f.name: f.default() if callable(f.default) else f.default for f in fields
                if any(f.name not in row for row in rows)}
    db = database.obj
    opening, closing = db.quote  # the backend's identifier quotes

    def quote(name: str) -> str:
        return f"{opening}{name}{closing}"

    sql = (f"INSERT INTO {quote(model._meta.table_name)} ("
           + ", ".join(quote(f.column_name) for f in fields) + ") VALUES ("
           + ", ".join([db.param] * len(fields)) + ")")
    params = [tuple(f.db_value(row[f.name] if f.name in row else defaults[f.name]) for f in fields)
              for row in rows]
    with database.atomic():
        cursor = database.cursor()
        if isinstance(db, peewee.PostgresqlDatabase):
            from psycopg2.extras import execute_batch

            # psycopg2's executemany makes a round trip per row; pages of rows in one.
            execute_batch(cursor, sql, params, page_size=500)
        else:
            cursor.executemany(sql, params)
