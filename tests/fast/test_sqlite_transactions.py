"""On SQLite a transaction holds the write lock from its start, so one that reads and
then writes never fails because another process wrote in between (it waits instead)."""
from __future__ import annotations

import sqlite3

import pytest

from gateway.db import bind, database
from gateway.migrate import upgrade

INSERT_Y = ("INSERT INTO user (username, display_name, email, is_admin, created_at, source) "
            "VALUES ('y', '', '', 0, '2026-01-01 00:00:00', 'local')")


@pytest.fixture
def db_file(tmp_path):
    path = tmp_path / "gateway.db"
    bind(f"sqlite:///{path}")
    upgrade()
    yield path
    database.close()


def test_a_transaction_holds_the_write_lock_from_its_start(db_file):
    from gateway.models import User

    other = sqlite3.connect(db_file, timeout=0, isolation_level=None)  # another process
    with database.atomic():
        assert not User.select().where(User.username == "x").exists()
        # Had the transaction begun deferred, this write would go in and the insert
        # below would fail at once with "database is locked".
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute(INSERT_Y)
        User.create(username="x")
    other.execute(INSERT_Y)
    assert sorted(u.username for u in User.select()) == ["x", "y"]
    other.close()
