"""Bulk loading for the sync pipeline: many rows into one table at driver speed.

SQLAlchemy's executemany converts every value of every row through its column type and,
for `INSERT ... RETURNING` on SQLite, falls back to one statement per row. A sync writes
tens of thousands of operators, events and identifiers at once, so this module goes to
the driver: PostgreSQL gets `COPY ... FROM STDIN` (psycopg), SQLite one prepared
`executemany`. Values are encoded once per column kind, exactly as the column's
SQLAlchemy type would bind them (JSON as the engine's `jsonio.dumps_text` writes it, dates
and timestamps in the dialect's storage form), so rows read back the same whichever path
wrote them.

New operator ids are allocated before the insert (`allocate_ids`) instead of being
returned row by row: PostgreSQL draws them from the table's sequence in one query; SQLite
continues after the highest id, which is safe because a sync writes inside SQLite's
single write lock (`BEGIN IMMEDIATE`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Table, func, select, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import TypeDecorator

from hub.jsonio import dumps_text

Encode = Callable[[Any], Any]
#: Encodes one column's values (all rows of a statement) at once.
EncodeColumn = Callable[[Sequence[Any]], Sequence[Any]]
_CACHE_LIMIT = 16384


_EMPTY_JSON: dict[type, str] = {dict: "{}", list: "[]"}


def _json_text(value: Any) -> Any:
    # What the engine's JSON type binds (`jsonio.dumps_text`); empty containers (most
    # `previous` and `warnings`) skip the encoder.
    if value is None:
        return None
    if not value and type(value) in _EMPTY_JSON:
        return _EMPTY_JSON[type(value)]
    return dumps_text(value)


def _json_column(values: Sequence[Any]) -> list[Any]:
    return [_json_text(value) for value in values]


def _memo_column(process: Encode, *, as_is: type | None = None,
                 uncached: type | None = None) -> EncodeColumn:
    """Encodes a column with `process` and a bounded cache (registries repeat dates and
    timestamps a lot); None, and values of type `as_is`, are left as they are, values of
    type `uncached` are encoded without the cache."""
    cache: dict[Any, Any] = {}

    def encode(values: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        append = out.append
        for value in values:
            if value is None or type(value) is as_is:
                append(value)
            elif type(value) is uncached:
                append(process(value))
            elif value in cache:
                append(cache[value])
            else:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                append(cache.setdefault(value, process(value)))
        return out

    return encode


def _from_iso_datetime(process: Encode) -> Encode:
    """`process` for a timestamp given as a datetime or in ISO form."""

    def encode(value: Any) -> Any:
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return process(value)

    return encode


# A UTC timestamp as `datetime.isoformat()` writes it, with or without microseconds.
_UTC_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                      r"(?:\.[0-9]{6})?\+00:00")


def _utc_iso_as_text(encode: Encode) -> Encode:
    """`encode` (to SQLite's text form) for a timestamp, where a UTC ISO string is
    rewritten by slicing: `2024-02-20T16:24:46+00:00` -> `2024-02-20 16:24:46.000000`.
    Used only when `encode` itself gives exactly that for such strings."""
    match = _UTC_ISO.fullmatch
    samples = ("2024-02-20T16:24:46+00:00", "1999-12-31T23:59:59.000123+00:00")

    def encode_text(value: Any) -> Any:
        if type(value) is str and match(value):
            fraction = value[19:26] if value[19] == "." else ".000000"
            return f"{value[:10]} {value[11:19]}{fraction}"
        return encode(value)

    if any(encode_text(sample) != encode(sample) for sample in samples):
        return encode  # another storage form: no shortcut
    return encode_text


def _encoder(column: Any, dialect: Dialect) -> EncodeColumn | None:
    """How one column's values are handed to the driver (None: as they are).

    Dates and timestamps may be given as objects or in ISO form (`date.isoformat()`,
    `datetime.isoformat()`), as a staged snapshot holds them.
    """
    kind = column.type
    base = kind.impl if isinstance(kind, TypeDecorator) else kind
    if isinstance(base, JSON):
        return _json_column
    # the type as this dialect binds it (a TypeDecorator over the dialect's own impl)
    process = kind.dialect_impl(dialect).bind_processor(dialect)
    if isinstance(base, DateTime):
        # psycopg adapts aware timestamps itself, but the type's own rule (UTC) applies
        encode = _from_iso_datetime(process or (lambda v: v))
        if dialect.name == "sqlite":
            encode = _utc_iso_as_text(encode)
        # timestamps in ISO form are a source's change times, nearly all distinct
        return _memo_column(encode, uncached=str)
    if isinstance(base, Date) and dialect.name != "postgresql" and process is not None:
        # an ISO date string is SQLite's storage form already
        return _memo_column(process, as_is=str)
    # PostgreSQL: psycopg adapts dates and booleans; COPY reads an ISO date as it is
    return None


class RowEncoder:
    """Encodes rows (tuples in `columns` order) of `table` into the form `dialect`'s
    driver takes, column by column: one loop per encoded column instead of a call per
    value. Rows can be encoded ahead of their insert (`BulkInsert(..., encoded=True)`)."""

    def __init__(self, dialect: Dialect, table: Table, columns: Sequence[str], *,
                 skip: int = 0) -> None:
        """`skip`: each row starts with that many values of no column, left as they are."""
        encoders = [(skip + i, _encoder(table.c[name], dialect))
                    for i, name in enumerate(columns)]
        self.encoders = [(i, e) for i, e in encoders if e is not None]

    def __call__(self, rows: Sequence[Sequence[Any]]) -> Iterable[Sequence[Any]]:
        if not self.encoders or not rows:
            return rows
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
        for i, encode in self.encoders:
            columns[i] = encode(columns[i])
        return zip(*columns, strict=True)


class BulkInsert:
    """Inserts rows (tuples in `columns` order) into `table` on one connection."""

    def __init__(self, connection: Connection, table: Table, columns: Sequence[str]) -> None:
        self.connection = connection
        self.table = table
        self.columns = tuple(columns)
        self.encode = RowEncoder(connection.dialect, table, columns)
        dialect = connection.dialect
        quote = dialect.identifier_preparer.quote
        table_name = quote(table.name)
        names = ", ".join(quote(name) for name in self.columns)
        # Table and column names come from the model's metadata, quoted; values are never
        # part of the statement.
        if dialect.name == "postgresql":
            self.statement = f"COPY {table_name} ({names}) FROM STDIN"
        else:
            marks = ", ".join("?" for _ in self.columns)
            self.statement = f"INSERT INTO {table_name} ({names}) VALUES ({marks})"  # noqa: S608

    def __call__(self, rows: Sequence[Sequence[Any]], *, encoded: bool = False) -> None:
        """Insert `rows` (one statement for all of them); `encoded`: their values are
        in the driver's form already (`RowEncoder`)."""
        if not rows:
            return
        encoded_rows = rows if encoded else self.encode(rows)
        driver = self.connection.connection.driver_connection
        assert driver is not None
        if self.connection.dialect.name == "postgresql":
            # one COPY: the server works through the rows while the next are sent
            with driver.cursor() as cursor, cursor.copy(self.statement) as copy:
                for row in encoded_rows:
                    copy.write_row(row)
        else:
            cursor = driver.cursor()
            try:
                cursor.executemany(self.statement, encoded_rows)
            finally:
                cursor.close()


def allocate_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """`count` new primary keys of `table` (an integer `id`), in ascending order."""
    if count <= 0:
        return []
    if connection.dialect.name == "postgresql":
        ids = connection.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) "
                 "FROM generate_series(1, :count)"),
            {"table": table.name, "count": count}).scalars().all()
        return sorted(int(i) for i in ids)
    highest = connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(int(highest) + 1, int(highest) + 1 + count))
