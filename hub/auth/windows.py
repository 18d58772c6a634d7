"""Fixed-window request counters per client, shared through the database.

`LookupWindow` holds the count of one (bucket, client digest, window start). The company
page's look-ups (`hub.web.routes`, through `hit`), the dashboard's failed sign-ins (`full`
before, `hit` after a failure) and the
OAuth failure throttle (`hub.auth.throttle`) count here, so that every worker and every
host counts against the same number: enumeration cannot be spread over workers. A client
is stored as a keyed digest of its address (`client_digest`), never the address itself.

`hit` adds one with one atomic UPDATE (an INSERT for the window's first request), in its
own short transaction. Over the limit, the caller answers 429 with `Retry-After`. Old
windows are pruned now and then by the requests themselves.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sqlalchemy import Integer, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from hub import clock
from hub.db import Base, Database


class LookupWindow(Base):
    """Requests one client made in one fixed window of one bucket (lookup, login, ...)."""

    __tablename__ = "web_lookup_window"

    bucket: Mapped[str] = mapped_column(String(16), primary_key=True)
    # HMAC-SHA256 of the client address (hex), keyed with the app's secret key.
    client_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer, primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)


_PRUNE_EVERY = 200


def client_digest(secret: str, address: str) -> str:
    """A keyed digest of the client address: counts without storing addresses."""
    return hmac.new(secret.encode(), address.encode(), hashlib.sha256).hexdigest()


def _window(window_seconds: int, now: float | None) -> tuple[int, int]:
    """(start of the window holding `now`, seconds until it ends)."""
    now = clock.timestamp() if now is None else now
    window_seconds = max(1, window_seconds)
    window = int(now // window_seconds) * window_seconds
    return window, max(1, int(window + window_seconds - now + 0.999))


def _row(bucket: str, client_key: str, window: int) -> tuple[Any, ...]:
    """The condition selecting one client's counter of one window."""
    return (LookupWindow.bucket == bucket, LookupWindow.client_key == client_key,
            LookupWindow.window_start == window)


def full(database: Database, bucket: str, client_key: str, limit: int, window_seconds: int,
         now: float | None = None) -> int | None:
    """Without counting: None while the client has room for one more, else the seconds
    until the window ends (a bucket that counts failures only, such as sign-ins)."""
    window, retry_after = _window(window_seconds, now)
    with database.session_scope() as session:
        used = session.scalar(select(LookupWindow.used).where(
            *_row(bucket, client_key, window))) or 0
    return retry_after if used >= limit else None


def hit(database: Database, bucket: str, client_key: str, limit: int, window_seconds: int,
        now: float | None = None) -> int | None:
    """Count one request; None when allowed, else the seconds until the window ends."""
    window, retry_after = _window(window_seconds, now)
    where = _row(bucket, client_key, window)
    used = 0
    for _attempt in range(3):
        with database.session_scope(write=True) as session:
            result = session.execute(update(LookupWindow).where(*where)
                                     .values(used=LookupWindow.used + 1))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                try:
                    with session.begin_nested():
                        session.add(LookupWindow(bucket=bucket, client_key=client_key,
                                                 window_start=window, used=1))
                except IntegrityError:
                    continue  # another worker created the row first: count again
            used = int(session.scalar(select(LookupWindow.used).where(*where)) or 0)
            if used % _PRUNE_EVERY == 1:
                session.execute(delete(LookupWindow).where(
                    LookupWindow.window_start < window - window_seconds))
        break
    return retry_after if used > limit else None
