"""The request's session, made ready for an API route that writes.

Authenticating a request reads (the token) and the rate limiter writes on its own
connection. On SQLite a transaction that began as a read cannot become a write once
another connection has committed since it began (SQLITE_BUSY, with no retry), so a
writing route ends the read first and takes the write lock at BEGIN (`BEGIN IMMEDIATE`,
which waits its turn). PostgreSQL needs neither; the rollback only ends a read.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from hub import db


def write_session() -> Session:
    """The request's session in a fresh transaction that may write."""
    session = db.session()
    session.rollback()
    if db.get_db().dialect == "sqlite":
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    return session
