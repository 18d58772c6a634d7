"""Shared counters that tell every worker when cached data went stale.

`bump(session, key)` increments a version in the database (inside the caller's
transaction); `version(session, key)` reads it. Caches of reference data compare the
version on each request (one indexed read) and rebuild when it moved, so that suspending
an arrangement takes effect on the next request in every worker.

`reference_stamp(session)` is that read for the reference data, made at most once per
HTTP request: the policy, the recognition snapshot and the usage hooks all ask for it,
and the API guard reads it together with the bearer token (`remember_reference_stamp`).
Outside a request (CLI, scheduler, tests calling services) every call reads afresh.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import has_request_context, request
from sqlalchemy import String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub import clock
from hub.db import Base, UTCDateTime, bind_key

REFERENCE = "reference"
#: Where a request keeps the reference stamp it read (per request, never across requests).
_STAMP_KEY = "aeohub.reference_stamp"


class VersionCounter(Base):
    __tablename__ = "hub_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)


def version(session: Session, key: str) -> int:
    value = session.scalar(select(VersionCounter.version).where(VersionCounter.key == key))
    return int(value or 0)


def bump(session: Session, key: str) -> int:
    if key == REFERENCE and has_request_context():
        request.environ.pop(_STAMP_KEY, None)  # this request reads the new version
    result = session.execute(
        update(VersionCounter).where(VersionCounter.key == key)
        .values(version=VersionCounter.version + 1, updated_at=clock.now())
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.add(VersionCounter(key=key, version=1))
        session.flush()
        return 1
    return version(session, key)


#: Built once: the reference version row (what `reference_stamp` reads).
REFERENCE_STAMP = (select(VersionCounter.version, VersionCounter.updated_at)
                   .where(VersionCounter.key == REFERENCE))


def _stamp_of(session: Session) -> tuple[Any, ...] | None:
    row = session.connection().execute(REFERENCE_STAMP).first()
    return (int(row[0]), row[1]) if row is not None else None


def reference_stamp(session: Session) -> tuple[Any, ...] | None:
    """(version, moved at) of the reference data, None before any was loaded.

    Read once per HTTP request (kept in the request's environ, keyed by the session's
    database, whichever of the request's sessions asks), and at every call outside a
    request.
    """
    if not has_request_context():
        return _stamp_of(session)
    memo: dict[str, tuple[Any, ...] | None] = request.environ.setdefault(_STAMP_KEY, {})
    key = bind_key(session)
    if key not in memo:
        memo[key] = _stamp_of(session)
    return memo[key]


def remember_reference_stamp(session: Session, stamp: tuple[Any, ...] | None) -> None:
    """Record a stamp read as part of another query of this request (the API guard's)."""
    if has_request_context():
        request.environ.setdefault(_STAMP_KEY, {})[bind_key(session)] = stamp
