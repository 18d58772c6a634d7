"""The OAuth endpoints' writes wait a bounded time for the database, then answer 503.

Issuing a token, revoking one and spending an assertion's `jti` write in the request's
transaction, beside an audit entry (whose chain head every appender takes turns on). A
sync or another long writer may hold that turn; the endpoints then wait at most
`OAUTH_WRITE_WAIT_SECONDS` and answer 503 with `Retry-After`, never a 500, and never a
200 for a revocation that was not committed (the token would still work).

- Every such transaction starts with a write: spent assertion ids that have expired are
  dropped. On SQLite that takes the write lock before anything is read, so a concurrent
  commit can never leave the transaction with a stale snapshot ("database is locked" at
  once, whatever the wait); the wait for the lock is the connection's busy timeout, set
  for the transaction and put back when the connection returns to the pool.
- PostgreSQL: `SET LOCAL lock_timeout` bounds the wait for a row lock (the audit head, a
  token row); the setting ends with the transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from hub import clock
from hub.auth.models import ClientAssertionJti

_RESTORE_KEY = "aeohub_busy_restore"


def install(engine: Engine) -> None:
    """Put a SQLite connection's busy timeout back when it returns to the pool."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine.pool, "checkin")
    def _restore(dbapi_connection: Any, record: Any) -> None:
        previous = record.info.pop(_RESTORE_KEY, None) if record is not None else None
        if previous is not None and dbapi_connection is not None:
            dbapi_connection.execute(f"PRAGMA busy_timeout={int(previous)}")


def begin_bounded(session: Session, wait_seconds: float) -> None:
    """Begin `session`'s transaction as a writer that waits at most `wait_seconds` for
    the database's locks (raises sqlalchemy's OperationalError when the wait runs out)."""
    wait_ms = max(1, int(wait_seconds * 1000))
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        pooled = connection.connection  # its `info` lives as long as the DBAPI connection
        driver: Any = pooled.driver_connection
        if _RESTORE_KEY not in pooled.info:
            pooled.info[_RESTORE_KEY] = driver.execute("PRAGMA busy_timeout").fetchone()[0]
        driver.execute(f"PRAGMA busy_timeout={wait_ms}")
    else:
        session.execute(text(f"SET LOCAL lock_timeout = {wait_ms}"))
    # The first statement writes (see above): the lock is taken, or refused, here.
    session.execute(delete(ClientAssertionJti).where(ClientAssertionJti.expires_at < clock.now()))
