"""Per-client rate limiting shared by every worker, through the database.

Fixed windows of `RATE_LIMIT_WINDOW_SECONDS`; a client may make `rate_limit` requests
(its own, else `RATE_LIMIT_REQUESTS`) per window. To keep the hot path free of a write per
request, each worker leases quota in chunks: one atomic `UPDATE ... SET used = used + n
WHERE used + n <= limit` reserves `n` requests in the shared row, which the worker then
spends from memory. The sum granted across workers never exceeds the limit; a worker may
hold at most one unspent chunk, so another can be refused up to that many requests early
(chunks are a twentieth of the limit). Refused requests get 429 with `Retry-After` (the
seconds until the window ends).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from hub.auth.models import RateWindow
from hub.db import Database

CHUNK_DIVISOR = 20


@dataclass
class _Lease:
    window: int
    remaining: int


class RateLimiter:
    """Leases quota from the shared window rows; thread-safe within a worker."""

    def __init__(self, database: Database, default_limit: int, window_seconds: int) -> None:
        self.database = database
        self.default_limit = default_limit
        self.window_seconds = max(1, window_seconds)
        self._leases: dict[int, _Lease] = {}
        self._exhausted: dict[int, int] = {}
        self._lock = threading.Lock()

    def window_of(self, now: float) -> int:
        return int(now // self.window_seconds) * self.window_seconds

    def hit(self, client_pk: int, limit: int | None = None, now: float | None = None
            ) -> int | None:
        """Count one request; None if allowed, else the seconds to wait (Retry-After)."""
        limit = self.default_limit if limit is None else limit
        now = time.time() if now is None else now
        window = self.window_of(now)
        retry_after = max(1, int(window + self.window_seconds - now + 0.999))
        if limit <= 0:
            return retry_after
        with self._lock:
            lease = self._leases.get(client_pk)
            if lease is not None and lease.window == window and lease.remaining > 0:
                lease.remaining -= 1
                return None
            if self._exhausted.get(client_pk) == window:
                return retry_after
        granted = self._lease(client_pk, window, limit)
        with self._lock:
            if granted <= 0:
                self._exhausted[client_pk] = window
                return retry_after
            self._leases[client_pk] = _Lease(window, granted - 1)
            return None

    def _lease(self, client_pk: int, window: int, limit: int) -> int:
        chunk = max(1, limit // CHUNK_DIVISOR)
        table: Table = RateWindow.__table__  # type: ignore[assignment]
        key = (table.c.client_pk == client_pk) & (table.c.window_start == window)
        for _attempt in range(3):
            with self.database.engine.begin() as conn:
                done = conn.execute(update(table).where(key, table.c.used + chunk <= limit)
                                    .values(used=table.c.used + chunk))
                if done.rowcount:
                    return chunk
                used = conn.scalar(select(table.c.used).where(key))
                if used is None:
                    try:
                        with conn.begin_nested():
                            conn.execute(insert(table).values(client_pk=client_pk,
                                                              window_start=window,
                                                              used=min(chunk, limit)))
                        # Old windows are of no use: drop them while we are here.
                        conn.execute(table.delete().where(table.c.client_pk == client_pk,
                                                          table.c.window_start < window))
                        return min(chunk, limit)
                    except IntegrityError:
                        continue  # another worker created it: retry the update
                rest = limit - int(used)
                if rest <= 0:
                    return 0
                done = conn.execute(update(table).where(key, table.c.used + rest <= limit)
                                    .values(used=table.c.used + rest))
                if done.rowcount:
                    return rest
        return 0
