"""Per-client rate limiting shared by every worker, through the database.

Fixed windows of `RATE_LIMIT_WINDOW_SECONDS`; a client may spend `rate_limit` quota units
(its own, else `RATE_LIMIT_REQUESTS`) per window. A request costs units: a plain one
`RATE_LIMIT_REQUEST_COST`, a batch its item count times `RATE_LIMIT_BATCH_ITEM_COST`
(`hub.auth.guard.charge`). To keep the hot path free of a write per request, each worker
leases quota in chunks: one atomic `UPDATE ... SET used = used + n WHERE used + n <= limit`
reserves `n` units in the shared row, which the worker then spends from memory. The sum
granted across workers never exceeds the limit; a worker may hold at most one unspent
chunk, so another can be refused up to that many units early (chunks are a twentieth of
the limit, or the cost of the request that leases them). Refused requests get 429 with
`Retry-After` (the seconds until the window ends). Every answer reports the client's
quota (`Quota`), which the API sends as RateLimit header fields.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from hub import clock
from hub.auth.models import RateWindow
from hub.db import Database

CHUNK_DIVISOR = 20


@dataclass
class _Lease:
    window: int
    remaining: int
    #: The shared row's `used` when this worker last leased (for `Quota.remaining`).
    row_used: int = 0


@dataclass(frozen=True)
class Quota:
    """A client's quota after a request: allowed or not, and what is left until `reset`."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    window_seconds: int


class RateLimiter:
    """Leases quota from the shared window rows; thread-safe within a worker."""

    def __init__(self, database: Database, default_limit: int, window_seconds: int) -> None:
        self.database = database
        self.default_limit = default_limit
        self.window_seconds = max(1, window_seconds)
        self._leases: dict[int, _Lease] = {}
        #: client -> (window, units the shared row had left when a lease was refused):
        #: within a window that only shrinks, so larger requests are refused at once.
        self._exhausted: dict[int, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def window_of(self, now: float) -> int:
        return int(now // self.window_seconds) * self.window_seconds

    def limit_of(self, limit: int | None) -> int:
        """A client's quota per window: its own, else the default."""
        return self.default_limit if limit is None else limit

    def hit(self, client_pk: int, limit: int | None = None, now: float | None = None,
            cost: int = 1) -> Quota:
        """Spend `cost` units of the client's quota if it has them."""
        limit = self.limit_of(limit)
        now = clock.timestamp() if now is None else now
        window = self.window_of(now)
        reset = max(1, int(window + self.window_seconds - now + 0.999))
        cost = max(0, cost)

        def answer(allowed: bool, lease: _Lease | None) -> Quota:
            left = (max(0, limit - lease.row_used + lease.remaining)
                    if lease is not None and lease.window == window else limit)
            return Quota(allowed, limit, min(left, limit), reset, self.window_seconds)

        if limit <= 0 or cost > limit:
            return Quota(False, max(limit, 0), 0, reset, self.window_seconds)
        with self._lock:
            lease = self._leases.get(client_pk)
            if lease is not None and lease.window != window:
                lease = None
            held = lease.remaining if lease is not None else 0
            if held >= cost:
                assert lease is not None
                lease.remaining -= cost
                return answer(True, lease)
            need = cost - held
            exhausted = self._exhausted.get(client_pk)
            if exhausted is not None and exhausted[0] == window and need > exhausted[1]:
                return answer(False, lease)
        granted, used = self._lease(client_pk, window, limit,
                                    max(need, limit // CHUNK_DIVISOR, 1), need)
        with self._lock:
            lease = self._leases.get(client_pk)
            if lease is None or lease.window != window:
                lease = self._leases[client_pk] = _Lease(window, 0, used)
            lease.row_used = used
            if granted < need:
                self._exhausted[client_pk] = (window, max(0, limit - used))
                return answer(False, lease)
            lease.remaining = max(0, lease.remaining + granted - cost)
            return answer(True, lease)

    def _lease(self, client_pk: int, window: int, limit: int, amount: int, minimum: int
               ) -> tuple[int, int]:
        """Reserve `amount` units (or, when fewer are left, all that are left if at least
        `minimum`) in the shared row: (units granted, the row's `used` afterwards)."""
        amount = min(amount, limit)
        table: Table = RateWindow.__table__  # type: ignore[assignment]
        key = (table.c.client_pk == client_pk) & (table.c.window_start == window)
        for _attempt in range(3):
            with self.database.engine.begin() as conn:
                done = conn.execute(update(table).where(key, table.c.used + amount <= limit)
                                    .values(used=table.c.used + amount))
                if done.rowcount:
                    return amount, int(conn.scalar(select(table.c.used).where(key)) or 0)
                used = conn.scalar(select(table.c.used).where(key))
                if used is None:
                    try:
                        with conn.begin_nested():
                            conn.execute(insert(table).values(client_pk=client_pk,
                                                              window_start=window,
                                                              used=amount))
                        # Old windows are of no use: drop them while we are here.
                        conn.execute(table.delete().where(table.c.client_pk == client_pk,
                                                          table.c.window_start < window))
                        return amount, amount
                    except IntegrityError:
                        continue  # another worker created it: retry the update
                rest = limit - int(used)
                if rest < max(minimum, 1):
                    return 0, int(used)
                done = conn.execute(update(table).where(key, table.c.used + rest <= limit)
                                    .values(used=table.c.used + rest))
                if done.rowcount:
                    return rest, limit
        return 0, limit
