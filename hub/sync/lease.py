"""One sync at a time per connection, across processes and hosts.

A lease row per connection names its holder and an expiry. Taking it is one conditional
statement (insert, or take over an expired lease), so two processes cannot both win; the
holder renews it while the run lives, and a dead holder's lease simply expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid

from sqlalchemy import Select, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub import clock
from hub.db import Database
from hub.sync.models import SyncLease

DEFAULT_TTL = dt.timedelta(seconds=60)


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(database: Database, connection_id: int, holder: str,
            ttl: dt.timedelta = DEFAULT_TTL) -> bool:
    """Take the lease if it is free or expired; True when `holder` now has it."""
    now = clock.now()
    with database.session_scope(write=True) as session:
        taken = session.execute(
            update(SyncLease)
            .where(SyncLease.connection_id == connection_id,
                   (SyncLease.expires_at < now) | (SyncLease.holder == holder))
            .values(holder=holder, acquired_at=now, expires_at=now + ttl, run_id=None)
        ).rowcount  # type: ignore[attr-defined]
        if taken:
            return True
    try:
        with database.session_scope(write=True) as session:
            session.execute(insert(SyncLease).values(
                connection_id=connection_id, holder=holder, acquired_at=now,
                expires_at=now + ttl))
        return True
    except IntegrityError:
        return False


def busy(database: Database, connection_id: int, now: dt.datetime | None = None) -> bool:
    """Whether a live lease holds the connection."""
    with database.session_scope() as session:
        return held(session, connection_id, now)


def live_connections(now: dt.datetime) -> Select[int]:
    """The connections a live lease holds at `now` (as a subquery: a run of any other
    connection still `running` is one whose process died)."""
    return select(SyncLease.connection_id).where(SyncLease.expires_at >= now)


def held(session: Session, connection_id: int, now: dt.datetime | None = None) -> bool:
    """`busy`, read in `session` (a lease is live until the instant it expires, and
    `acquire` takes over only after it)."""
    expires = session.scalar(select(SyncLease.expires_at).where(
        SyncLease.connection_id == connection_id))
    return expires is not None and expires >= (now or clock.now())


def hold(session: Session, connection_id: int, holder: str,
         ttl: dt.timedelta = DEFAULT_TTL, run_id: int | None = None) -> bool:
    """Renew the lease in `session`'s transaction; True while `holder` still has it.

    A run's writes go with this in the same transaction (a fence): they commit only if
    the lease was still the run's. Another process that took over an expired lease has
    changed its holder, so the run's step is refused; one trying to take it over now
    waits for this transaction and then finds it renewed.
    """
    values: dict[str, object] = {"expires_at": clock.now() + ttl}
    if run_id is not None:
        values["run_id"] = run_id
    return bool(session.execute(
        update(SyncLease).where(SyncLease.connection_id == connection_id,
                                SyncLease.holder == holder).values(**values)
    ).rowcount)  # type: ignore[attr-defined]


def renew(database: Database, connection_id: int, holder: str,
          ttl: dt.timedelta = DEFAULT_TTL, run_id: int | None = None) -> bool:
    with database.session_scope(write=True) as session:
        return hold(session, connection_id, holder, ttl, run_id)


def release(database: Database, connection_id: int, holder: str) -> None:
    with database.session_scope(write=True) as session:
        session.execute(delete(SyncLease).where(SyncLease.connection_id == connection_id,
                                                SyncLease.holder == holder))


class Heartbeat:
    """Renews a lease in the background while a run lives."""

    def __init__(self, database: Database, connection_id: int, holder: str,
                 ttl: dt.timedelta = DEFAULT_TTL) -> None:
        self.database, self.connection_id, self.holder, self.ttl = (
            database, connection_id, holder, ttl)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-heartbeat",
                                        daemon=True)

    def _loop(self) -> None:
        interval = self.ttl.total_seconds() / 3
        log = logging.getLogger(__name__)
        while not self._stop.wait(interval):
            try:
                if not renew(self.database, self.connection_id, self.holder, self.ttl):
                    # the run's next committed step is refused (`hold`, the run's fence)
                    log.warning("the lease on connection %s was taken over by another "
                                "process", self.connection_id)
            except Exception:  # a failed renewal is retried on the next beat
                log.warning("lease renewal failed", exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
