"""Throttling failed client authentication at the OAuth endpoints.

Each failed client authentication counts against two keys, in fixed windows of
`OAUTH_FAILURE_WINDOW_SECONDS`: the caller's address, and the pair (client id, address).
Once either has `OAUTH_FAILURES_PER_ADDRESS` or `OAUTH_FAILURES_PER_CLIENT_ADDRESS`
failures in the window, that address (or that client from that address) is answered 429
with `Retry-After` until the window ends, before any secret is checked. No key names a
client alone, so failures from one address never block the client elsewhere.

The counts live in the rows of the look-up and sign-in limits (`web_lookup_window`,
buckets `oauth_address` and `oauth_client`), keyed by a keyed digest, so every worker
shares them and no address is stored. The failure that reaches a limit writes the one
audit entry of that window (`oauth.throttled`); refusals are counted in the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub import clock
from hub.auth.windows import LookupWindow, client_digest

ADDRESS_BUCKET = "oauth_address"
CLIENT_BUCKET = "oauth_client"


@dataclass(frozen=True)
class Limits:
    per_address: int
    per_client_address: int
    window_seconds: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Limits:
        return cls(int(config["OAUTH_FAILURES_PER_ADDRESS"]),
                   int(config["OAUTH_FAILURES_PER_CLIENT_ADDRESS"]),
                   max(1, int(config["OAUTH_FAILURE_WINDOW_SECONDS"])))


@dataclass(frozen=True)
class Caller:
    """Whom a request's failures count against: digests, never the address itself."""

    address_key: str
    client_key: str | None
    client_id: str | None

    @classmethod
    def of(cls, secret: str, address: str, client_id: str | None) -> Caller:
        pair = client_digest(secret, f"{client_id}\n{address}") if client_id else None
        return cls(client_digest(secret, address), pair, client_id)

    def counted_keys(self) -> list[tuple[str, str]]:
        keys = [(ADDRESS_BUCKET, self.address_key)]
        if self.client_key is not None:
            keys.append((CLIENT_BUCKET, self.client_key))
        return keys


def _window(limits: Limits, now: float) -> tuple[int, int]:
    """The current window's start and the seconds until it ends (Retry-After)."""
    start = int(now // limits.window_seconds) * limits.window_seconds
    return start, max(1, int(start + limits.window_seconds - now + 0.999))


def _limit(limits: Limits, bucket: str) -> int:
    return limits.per_address if bucket == ADDRESS_BUCKET else limits.per_client_address


def refused(session: Session, limits: Limits, caller: Caller, now: float | None = None
            ) -> tuple[str, int] | None:
    """(the limit reached, seconds to wait) when `caller` is throttled now, else None."""
    start, retry_after = _window(limits, clock.timestamp() if now is None else now)
    rows = session.execute(select(LookupWindow.bucket, LookupWindow.used).where(
        tuple_(LookupWindow.bucket, LookupWindow.client_key).in_(caller.counted_keys()),
        LookupWindow.window_start == start))
    for bucket, used in rows:
        if used >= _limit(limits, bucket):
            return bucket, retry_after
    return None


def count_failure(session: Session, limits: Limits, caller: Caller, now: float | None = None
                  ) -> list[str]:
    """Count one failed authentication of `caller`; returns the limits it just reached
    (each reached once per window: the caller writes that window's audit entry)."""
    start, _retry = _window(limits, clock.timestamp() if now is None else now)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    reached = []
    for bucket, key in caller.counted_keys():
        statement = insert(LookupWindow).values(bucket=bucket, client_key=key,
                                                window_start=start, used=1)
        statement = statement.on_conflict_do_update(
            index_elements=["bucket", "client_key", "window_start"],
            set_={"used": LookupWindow.used + 1})
        used = session.scalar(statement.returning(LookupWindow.used))
        if used == 1:  # the key's first failure of this window: drop its old windows
            session.execute(delete(LookupWindow).where(
                LookupWindow.bucket == bucket, LookupWindow.client_key == key,
                LookupWindow.window_start < start))
        if used == _limit(limits, bucket):
            reached.append(bucket)
    return reached
