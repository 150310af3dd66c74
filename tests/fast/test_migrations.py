"""Migrations apply on a database that already holds data, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from gateway.db import bind, database
from gateway.migrate import pending, router, upgrade


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.cluster)])
def test_upgrade_keeps_existing_data(backend, tmp_path):
    if backend == "postgres":
        from tests.conftest import PG_URL, _reset_postgres

        _reset_postgres(PG_URL)
        bind(PG_URL)
    else:
        bind(f"sqlite:///{tmp_path}/gateway.db")
    first = router().todo[0]
    assert upgrade(first) == [first]
    db = database.obj
    db.execute_sql("INSERT INTO \"user\" (username, display_name, is_admin, created_at) "
                   "VALUES ('old', '', false, '2026-01-01 00:00:00')")
    db.execute_sql("INSERT INTO api_token (user_id, name, token_hash, created_at) "
                   "VALUES (1, 't', 'abc', '2026-01-01 00:00:00')")
    done = upgrade()
    assert done and not pending()
    from gateway.models import ApiToken, User

    old = User.get(User.username == "old")
    assert old.source == "local" and old.uid_number is None
    assert ApiToken.get().user_id == old.id
    database.close()
