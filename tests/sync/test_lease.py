"""The per-connection lease on the hub's clock: taken over only once it has expired, kept
alive by renewal, and a holder that lost it can no longer renew it (its fence)."""

from __future__ import annotations

import datetime as dt

from hub import db
from hub.sync import lease

TTL = dt.timedelta(minutes=10)


def test_a_lease_is_taken_over_only_once_it_has_expired(hub_app, connection_id, clock):
    database = db.get_db(hub_app)
    assert lease.acquire(database, connection_id, "first", TTL)
    assert not lease.acquire(database, connection_id, "second", TTL)
    clock.advance(TTL.total_seconds() - 20)
    assert lease.busy(database, connection_id)
    assert not lease.acquire(database, connection_id, "second", TTL)
    assert lease.renew(database, connection_id, "first", TTL)  # another TTL from now
    clock.advance(TTL.total_seconds() - 20)
    assert not lease.acquire(database, connection_id, "second", TTL)
    clock.advance(40)  # no renewal came: the holder is taken for dead
    assert not lease.busy(database, connection_id)
    assert lease.acquire(database, connection_id, "second", TTL)
    assert not lease.renew(database, connection_id, "first", TTL)
    lease.release(database, connection_id, "first")  # no longer its lease: kept
    assert lease.busy(database, connection_id)
    lease.release(database, connection_id, "second")
    assert not lease.busy(database, connection_id)
