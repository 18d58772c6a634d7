"""Shared counters that tell every worker when cached data went stale.

`bump(session, key)` increments a version in the database (inside the caller's
transaction); `version(session, key)` reads it. Caches of reference data compare the
version on each request (one indexed read) and rebuild when it moved, so that suspending
an arrangement takes effect on the next request in every worker.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.db import Base, UTCDateTime, utcnow

REFERENCE = "reference"


class HubState(Base):
    __tablename__ = "hub_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


def version(session: Session, key: str) -> int:
    value = session.scalar(select(HubState.version).where(HubState.key == key))
    return int(value or 0)


def bump(session: Session, key: str) -> int:
    result = session.execute(
        update(HubState).where(HubState.key == key)
        .values(version=HubState.version + 1, updated_at=utcnow())
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.add(HubState(key=key, version=1))
        session.flush()
        return 1
    return version(session, key)
