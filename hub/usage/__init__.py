"""Usage: look-ups by partner clients, counted per client, arrangement, day and outcome.

Partners' `verify` and `match` calls are counted (decisions, match hits and misses) for
the dashboard and for the MRA monitoring auditors ask for (EU Court of Auditors, special
report 13/2023: how many look-ups matched, per arrangement). The API also audits every
request that returned registry data as a `registry.read` entry: the reads of one write
are grouped per client, endpoint, administrations and arrangements, one entry per group
listing each request (its time, operators and look-ups) under `requests`, with the
operators of all of them under `operators`.

Both are buffered per process and written in one transaction every
`USAGE_FLUSH_SECONDS` (default 1 s; 0 writes at once, as the tests do), so the hot path
never waits on a write or on the audit chain's lock. A process that dies loses at most
that last interval of counts; it cannot rewrite what was written.

Who writes: under traffic, the request thread that finishes a response once the interval
has passed or `USAGE_FLUSH_BATCH` reads (default 200) are waiting, after the response
went out (`call_on_close`), so no request waits for it, no write grows long enough to
hold up the worker, and no second thread competes with request threads for the
interpreter lock while requests are being served. A timer thread writes what an idle
worker still holds.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, current_app
from sqlalchemy import Date, Integer, String, UniqueConstraint, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from hub.audit import ReadEntry, record_reads
from hub.db import Base, Database, get_db

log = logging.getLogger(__name__)
EXTENSION_KEY = "aeohub.usage"


class UsageCount(Base):
    """How many look-ups of one kind a client made on one day, by outcome and arrangement."""

    __tablename__ = "usage_count"
    __table_args__ = (UniqueConstraint("day", "client_id", "kind", "outcome", "arrangement"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date)
    client_id: Mapped[str] = mapped_column(String(64))
    # The recognising programme the client acts for.
    programme: Mapped[str] = mapped_column(String(32), default="")
    kind: Mapped[str] = mapped_column(String(16))  # verify | match
    # verify: recognised | not_recognised | unknown_trader | ambiguous;
    # match: match | ambiguous | no_match
    outcome: Mapped[str] = mapped_column(String(24))
    # The arrangement that recognised the operator ("" when none did).
    arrangement: Mapped[str] = mapped_column(String(40), default="")
    count: Mapped[int] = mapped_column(Integer, default=0)


@dataclass
class Read:
    """One request that returned registry data, for the audit log."""

    client_id: str
    client_administration: str | None
    endpoint: str
    operators: list[int]
    arrangements: set[str] = field(default_factory=set)
    administrations: set[str] = field(default_factory=set)
    details: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


class Recorder:
    """Buffers counts and reads in memory; writes them in one transaction per interval."""

    def __init__(self, database: Database, interval: float, batch: int = 1000) -> None:
        self.database = database
        self.interval = interval
        self.batch = max(1, batch)
        self.lock = threading.Lock()
        self.counts: Counter[tuple[dt.date, str, str, str, str, str]] = Counter()
        self.reads: list[Read] = []
        self.last_flush = time.monotonic()
        self._writing = threading.Lock()  # one flush at a time
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def lookups(self, client_id: str, programme: str | None, kind: str,
                outcomes: Iterable[tuple[str, str | None]]) -> None:
        """Count look-ups: `outcomes` holds (outcome, arrangement code or None) per look-up."""
        today = dt.date.today()
        with self.lock:
            for outcome, arrangement in outcomes:
                self.counts[(today, client_id, programme or "", kind, outcome,
                             arrangement or "")] += 1
        self._after_note()

    def read(self, entry: Read) -> None:
        with self.lock:
            self.reads.append(entry)
        self._after_note()

    @property
    def pending(self) -> bool:
        return bool(self.counts or self.reads)

    def due(self) -> bool:
        """Whether something is pending and the interval has passed since the last write,
        or a batch of reads is waiting."""
        return self.pending and (len(self.reads) >= self.batch
                                 or time.monotonic() - self.last_flush >= self.interval)

    def flush_if_due(self) -> None:
        """Write now if due, unless another thread is writing (the request path calls
        this after its response went out)."""
        if not self.due() or not self._writing.acquire(blocking=False):
            return
        try:
            self._write()
        except Exception:  # the next round writes what is pending
            log.exception("writing usage counts and audit reads failed")
        finally:
            self._writing.release()

    def _after_note(self) -> None:
        if self.interval <= 0:
            self.flush()
            return
        if self._thread is None:
            with self.lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="usage-flush",
                                                    daemon=True)
                    self._thread.start()
                    atexit.register(self.close)

    def _loop(self) -> None:
        # Traffic writes through `flush_if_due`; this covers a worker gone idle with
        # something still pending (it waits a little longer, so that it rarely runs
        # while requests are being served).
        while not self._stop.wait(self.interval):
            if self.pending and time.monotonic() - self.last_flush >= 2 * self.interval:
                self.flush_if_due()

    def close(self) -> None:
        self._stop.set()
        try:
            self.flush()
        except Exception:
            log.exception("writing usage counts and audit reads failed at exit")

    def flush(self) -> None:
        """Write everything pending now (waits for a write in progress)."""
        with self._writing:
            self._write()

    def _write(self) -> None:
        with self.lock:
            counts, self.counts = self.counts, Counter()
            reads, self.reads = self.reads, []
            self.last_flush = time.monotonic()
        if not counts and not reads:
            return
        try:
            with self.database.session_scope(write=True) as session:
                _add_counts(session, counts)
                _add_reads(session, reads)
        except Exception:
            with self.lock:  # put them back for the next round
                self.counts.update(counts)
                self.reads[:0] = reads
            raise


def _add_counts(session: Session, counts: Mapping[tuple[dt.date, str, str, str, str, str], int]
                ) -> None:
    if not counts:
        return
    rows = [{"day": day, "client_id": client, "programme": programme, "kind": kind,
             "outcome": outcome, "arrangement": arrangement, "count": n}
            for (day, client, programme, kind, outcome, arrangement), n in counts.items()]
    # one executemany for every key of the interval, on the session's connection
    session.connection().execute(_upsert(session.get_bind().dialect.name), rows)


@functools.cache
def _upsert(dialect: str) -> Any:
    """The counts' upsert for `dialect` (built once)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table: Any = UsageCount.__table__
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=["day", "client_id", "kind", "outcome", "arrangement"],
        set_={"count": table.c.count + statement.excluded.count},
    )


def _add_reads(session: Session, reads: list[Read]) -> None:
    """One `registry.read` entry per client, endpoint, administrations and arrangements
    among `reads`, each listing its requests in order (a request per entry is what an
    interval of 0 writes)."""
    if not reads:
        return

    groups: dict[tuple[Any, ...], list[Read]] = {}
    for read in reads:
        key = (read.client_id, read.client_administration, read.endpoint,
               frozenset(read.administrations), frozenset(read.arrangements))
        groups.setdefault(key, []).append(read)
    entries = []
    for (client_id, client_administration, endpoint, administrations,
         arrangements), group in groups.items():
        requests = [{"at": _iso_time(read.at), "operators": read.operators, **read.details}
                    for read in group]
        entries.append(ReadEntry(
            client_id=client_id, client_administration=client_administration,
            endpoint=endpoint, operators=[i for read in group for i in read.operators],
            arrangements=sorted(arrangements), administrations=sorted(administrations),
            details={"requests": requests}))
    record_reads(session, entries)


def _iso_time(moment: float) -> str:
    """`datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")`, faster."""
    seconds = int(moment)
    micro = round((moment - seconds) * 1e6)  # rounded as `fromtimestamp` rounds
    if micro >= 1_000_000:
        seconds, micro = seconds + 1, micro - 1_000_000
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            + f".{micro // 1000:03d}+00:00")


def recorder(app: Flask | None = None) -> Recorder:
    app = app or current_app
    found: Recorder = app.extensions[EXTENSION_KEY]
    return found


def summary(session: Session, *, since: dt.date | None = None, client_id: str | None = None
            ) -> list[dict[str, Any]]:
    """Counts per day, client, kind, outcome and arrangement (newest day first)."""
    query = select(UsageCount).order_by(UsageCount.day.desc(), UsageCount.client_id,
                                        UsageCount.kind, UsageCount.outcome)
    if since is not None:
        query = query.where(UsageCount.day >= since)
    if client_id is not None:
        query = query.where(UsageCount.client_id == client_id)
    return [{"day": r.day.isoformat(), "client_id": r.client_id, "programme": r.programme,
             "kind": r.kind, "outcome": r.outcome, "arrangement": r.arrangement or None,
             "count": r.count} for r in session.scalars(query)]


def init_app(app: Flask) -> None:
    interval = float(app.config.get("USAGE_FLUSH_SECONDS", 1.0))
    batch = int(app.config.get("USAGE_FLUSH_BATCH", 200))
    found = app.extensions[EXTENSION_KEY] = Recorder(get_db(app), interval, batch)

    @app.after_request
    def _write_after_response(response: Response) -> Response:
        if found.due():
            response.call_on_close(found.flush_if_due)
        return response
