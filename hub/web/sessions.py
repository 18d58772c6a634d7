"""Server-side dashboard sessions: start, resume, end one, end all of a user's.

A session is a row (`DashboardSession`) found by the SHA-256 of a random token that only
the browser's signed cookie carries. Resuming checks, on every request, that the row
still exists, that the session has been used within `WEB_SESSION_IDLE_SECONDS` and began
less than `WEB_SESSION_ABSOLUTE_SECONDS` ago, and that the user is still active; a session
past either timeout is deleted. Signing out deletes the row, so a copy of the old cookie
opens nothing; changing a password, disabling the user and "sign out everywhere" delete
every row of the user. Each function is a transaction of its own, or part of its
caller's (`hub.db.transactional`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub import clock
from hub.db import transactional
from hub.web.models import DashboardSession, DashboardUser


@dataclass(frozen=True)
class Timeouts:
    idle: dt.timedelta
    absolute: dt.timedelta

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Timeouts:
        return cls(dt.timedelta(seconds=float(config["WEB_SESSION_IDLE_SECONDS"])),
                   dt.timedelta(seconds=float(config["WEB_SESSION_ABSOLUTE_SECONDS"])))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transactional
def start(session: Session, user: DashboardUser) -> str:
    """Open a session for `user`; returns the token for the cookie (never stored)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(DashboardSession(token_hash=_digest(token), user_id=user.id, created_at=now,
                                 last_seen_at=now))
    session.flush()
    return token


@transactional
def resume(session: Session, token: str, timeouts: Timeouts,
           now: dt.datetime | None = None) -> DashboardUser | None:
    """The active user of the session `token`, its last use moved to now; None when the
    session does not exist, has timed out (then it is deleted) or its user is disabled."""
    now = now or clock.now()
    row = session.scalar(select(DashboardSession).where(
        DashboardSession.token_hash == _digest(token)))
    if row is None:
        return None
    user = session.get(DashboardUser, row.user_id)
    if (now - row.last_seen_at >= timeouts.idle or now - row.created_at >= timeouts.absolute
            or user is None or user.disabled_at is not None):
        session.delete(row)
        return None
    row.last_seen_at = now
    return user


@transactional
def end(session: Session, token: str) -> None:
    session.execute(delete(DashboardSession).where(DashboardSession.token_hash == _digest(token)))


@transactional
def end_all(session: Session, user_id: int) -> int:
    """End every session of a user; returns how many there were."""
    result = session.execute(delete(DashboardSession)
                             .where(DashboardSession.user_id == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
