"""Several gateways on one database: exactly one polls at a time."""
from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.db import utcnow
from gateway.models import PollerLease
from gateway.poller import acquire_lease, guarded_tick, release_lease


@pytest.fixture
def gw(fake_gw):
    return fake_gw


def test_one_holder_at_a_time(gw):
    assert acquire_lease("host-a:1", 30)
    assert not acquire_lease("host-b:2", 30)
    assert acquire_lease("host-a:1", 30)  # renewal
    assert guarded_tick(gw.ctx, holder="host-b:2") is None  # b does not poll
    release_lease("host-a:1")
    assert acquire_lease("host-b:2", 30)
    assert guarded_tick(gw.ctx, holder="host-b:2") is not None


def test_an_expired_lease_is_taken_over(gw):
    assert acquire_lease("dead:1", 30)
    PollerLease.update(expires_at=utcnow() - timedelta(seconds=1)).execute()
    assert acquire_lease("alive:2", 30)
    assert PollerLease.get().holder == "alive:2"
