"""``sql_query``: a registry kept in a database, read through a query or a view.

The connection names a SQLAlchemy URL without its password (``postgresql+psycopg://
aeo_reader@registry.example:5432/customs``; the password is the secret ``password``
setting, stored encrypted) and either a ``query`` or a ``view`` name. Columns map to
canonical fields as in ``csv_snapshot`` (``columns``, the value mapping); database values
become text the way the other connectors read them (dates in the first of
``date_formats``, numbers with their exact digits, time stamps in ISO 8601).

The rows are read in batches of ``batch_size`` through a server-side cursor
(``stream_results`` with ``yield_per``), inside a read-only transaction: PostgreSQL's
``SET TRANSACTION READ ONLY``, SQLite's ``query_only``, ``SET TRANSACTION READ ONLY`` on
other databases that know it. Use a database account that may only read as well.

Without ``change_column`` each read is a full snapshot. With it the connection is
incremental: rows are read in order of that column, each batch carrying the last change
time read as its checkpoint (``{"since": ...}``), and the next read starts
``overlap_seconds`` before the checkpoint, so that rows committed late with an earlier
change time are not missed (rows read twice are recognised as unchanged). A view cannot
say which rows were deleted: removals come from a periodic full read
(``aeohub sync run CONNECTION --snapshot``).

Who may reach what: only the hub's administrators may create or reconfigure these
connections (``hub_admin_only``); the database host must be among the connection's
allowed hosts, a SQLite file must lie in the import directory, and the hub's own
database is refused.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from connectors.base import (
    AccessDenied,
    AuthenticationFailed,
    Batch,
    CheckResult,
    ConnectorError,
    Discovery,
    FormatError,
    ProgrammeInfo,
    SourceUnavailable,
)
from connectors.files import RecordSettings, check_failure
from connectors.formats import DATE_FIELDS, DateParser, number_text
from connectors.mapping import unread_state
from connectors.tabular import TableLayout, TabularConnector

__all__ = ["SqlQueryConfig", "SqlQueryConnector", "db_text", "same_database"]

_FINGERPRINT_VERSION = "sql-1"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433,
                  "oracle": 1521}


class SqlQueryConfig(RecordSettings, TableLayout):
    """Configuration of a ``sql_query`` connection."""

    url = fields.String(
        required=True, validate=validate.Length(min=1, max=2000),
        metadata={"description": "SQLAlchemy database URL without the password, e.g. "
                                 "postgresql+psycopg://reader@db.example:5432/registry"},
    )
    password = fields.String(
        load_default=None, allow_none=True,
        metadata={"secret": True, "description": "Password of the database account"},
    )
    query = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=100_000),
        metadata={"description": "SELECT statement giving one operator per row"},
    )
    view = fields.String(
        load_default=None, allow_none=True,
        validate=validate.Regexp(_NAME, error="Expected a view name, e.g. aeo.register_v."),
        metadata={"description": "View (or table) giving one operator per row: name or "
                                 "schema.name"},
    )
    change_column = fields.String(
        load_default=None, allow_none=True,
        validate=validate.Regexp(_NAME, error="Expected a column name."),
        metadata={"description": "Column holding each row's change time; makes the "
                                 "connection incremental"},
    )
    overlap_seconds = fields.Integer(
        load_default=300, validate=validate.Range(min=0, max=7 * 86400),
        metadata={"description": "How far before the checkpoint an incremental read "
                                 "starts (rows committed late)"},
    )
    connect_timeout = fields.Integer(
        load_default=10, validate=validate.Range(min=1, max=300),
        metadata={"description": "Seconds to wait for the database to answer a connection"},
    )

    @validates_schema
    def _source(self, data: Mapping[str, Any], **_kwargs: Any) -> None:
        if bool(data.get("query")) == bool(data.get("view")):
            message = "Give exactly one of query and view."
            raise ValidationError({"query": [message], "view": [message]})
        try:
            url = make_url(data["url"])
        except (ArgumentError, ValueError) as exc:
            raise ValidationError({"url": [f"Not a SQLAlchemy database URL ({exc})."]}) from None
        if url.password is not None:
            raise ValidationError({"url": [
                "Leave the password out of the URL and give it as password (kept "
                "encrypted)."]})


def db_text(value: Any, *, date_column: bool, date_format: str) -> str:
    """A database value as text: dates in ``date_format`` in date columns, time stamps
    in ISO 8601 (UTC when they carry a zone), exact digits for numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if date_column:
            return str(value.strftime(date_format))
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return str(value.isoformat())
    if isinstance(value, dt.date):
        return value.strftime(date_format) if date_column else value.isoformat()
    if isinstance(value, int | float | Decimal):
        return number_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def _addresses(host: str | None) -> set[str]:
    name = (host or "localhost").lower()
    try:
        found = {str(info[4][0]) for info in socket.getaddrinfo(name, None)}
    except OSError:
        found = set()
    return found | {name}


def same_database(a: URL, b: URL) -> bool:
    """True when two URLs name the same database (same backend, host addresses, port
    and database; the same file for SQLite)."""
    backend = a.get_backend_name()
    if backend != b.get_backend_name():
        return False
    if backend == "sqlite":
        if not a.database or not b.database or ":memory:" in (a.database, b.database):
            return False
        return Path(a.database).resolve() == Path(b.database).resolve()
    if (a.database or "") != (b.database or ""):
        return False
    default = _DEFAULT_PORTS.get(backend)
    if (a.port or default) != (b.port or default):
        return False
    return bool(_addresses(a.host) & _addresses(b.host))


class SqlQueryConnector(TabularConnector):
    """Reads operators from a database query or view."""

    name = "sql_query"
    title = "SQL query or view (SQLAlchemy URL)"
    config_schema = SqlQueryConfig
    hub_admin_only = True
    position_word = "row"

    def __init__(self, config: Mapping[str, Any], context: Any = None) -> None:
        super().__init__(config, context)
        change = self.config["change_column"]
        if change and "changed_at" not in self.config["columns"]:
            # the change time is the record's own change time unless mapped otherwise
            self.config["columns"] = {**self.config["columns"], "changed_at": change}

    def _format_settings(self) -> list[Any]:
        return [_FINGERPRINT_VERSION]

    # -- where the source is -------------------------------------------------------------

    @property
    def label(self) -> str:
        """The database and what is read, for messages (never the password)."""
        shown = make_url(self.config["url"]).render_as_string(hide_password=True)
        what = f"view {self.config['view']}" if self.config["view"] else "the query"
        return f"{shown} ({what})"

    def check_access(self) -> URL:
        """The URL to connect to, once the host (or SQLite file) is allowed and the
        database is not the hub's own; else `AccessDenied`."""
        url = make_url(self.config["url"])
        sqlite = url.get_backend_name() == "sqlite"
        if sqlite:
            if not url.database or url.database == ":memory:":
                raise AccessDenied("a SQLite source must be a database file")
            path = Path(url.database).expanduser()
            if not path.is_absolute() and self.context.import_dir is not None:
                path = Path(self.context.import_dir) / path
            url = url.set(database=str(path.resolve()))
        for refused in self.context.refused_databases:
            if same_database(url, make_url(refused)):
                raise AccessDenied(f"{url.render_as_string(hide_password=True)} is the hub's "
                                   "own database, which no connection may read")
        if sqlite:
            assert url.database is not None
            self.context.check_path(url.database)
        else:
            self.context.check_host(url.host, url.port)
        if self.config["password"] and url.get_backend_name() != "sqlite":
            url = url.set(password=self.config["password"])
        return url

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A connection in a read-only transaction, streaming results."""
        url = self.check_access()
        backend = url.get_backend_name()
        connect_args: dict[str, Any] = {}
        if backend == "postgresql":
            connect_args["connect_timeout"] = self.config["connect_timeout"]
        elif backend == "sqlite":
            connect_args["timeout"] = self.config["connect_timeout"]
        try:
            engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
        except NoSuchModuleError as exc:
            raise SourceUnavailable(f"{self.label}: no driver for this URL ({exc}); install "
                                    "the database's driver (see the connectors docs)") from exc
        except (ArgumentError, ImportError) as exc:
            raise SourceUnavailable(f"{self.label}: cannot use this URL ({exc})") from exc
        try:
            options: dict[str, Any] = {"stream_results": True,
                                       "yield_per": self.config["batch_size"]}
            if backend == "postgresql":
                options["postgresql_readonly"] = True
            try:
                conn = engine.connect().execution_options(**options)
            except DBAPIError as exc:
                raise self._failure(exc, connecting=True) from None
            with conn, conn.begin():
                if backend == "sqlite":
                    conn.exec_driver_sql("PRAGMA query_only = ON")
                elif backend in ("oracle", "mysql", "mariadb"):
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield conn
                if backend == "sqlite":
                    conn.exec_driver_sql("PRAGMA query_only = OFF")
        finally:
            engine.dispose()

    def _failure(self, exc: DBAPIError, *, connecting: bool = False) -> ConnectorError:
        """A database error as a connector error a person can act on."""
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        if connecting and "authentication" in detail.lower():
            return AuthenticationFailed(f"{self.label}: the database refused the account "
                                        f"({detail})")
        if connecting:
            return SourceUnavailable(f"{self.label}: cannot connect ({detail})")
        return FormatError(f"{self.label}: the query failed ({detail})")

    def _statement(self, conn: Connection, since: dt.datetime | None, *,
                   probe: bool = False) -> tuple[Any, dict[str, Any]]:
        # The query is the hub administrator's own SQL, run read-only (that is the point
        # of this connector); a view's name is quoted, and values are bound parameters.
        quote = conn.dialect.identifier_preparer.quote
        if self.config["view"]:
            name = ".".join(quote(p) for p in self.config["view"].split("."))
            inner = f"SELECT * FROM {name}"  # noqa: S608
        else:
            inner = self.config["query"].strip().rstrip(";")
        sql = f"SELECT * FROM ({inner}) src"  # noqa: S608
        params: dict[str, Any] = {}
        change = self.config["change_column"]
        if probe:
            sql += " WHERE 1 = 0"
        elif change:
            column = f"src.{quote(change)}"
            if since is not None:
                sql += f" WHERE {column} >= :since"
                # SQLite keeps time stamps as text, written as its CURRENT_TIMESTAMP does
                params["since"] = (since.strftime("%Y-%m-%d %H:%M:%S")
                                   if conn.dialect.name == "sqlite" else since)
            sql += f" ORDER BY {column}"
        return text(sql), params

    # -- reading -----------------------------------------------------------------------

    def _since(self, state: Mapping[str, Any] | None) -> dt.datetime | None:
        raw = (state or {}).get("since")
        if not raw or not self.config["change_column"]:
            return None
        checkpoint = dt.datetime.fromisoformat(str(raw))
        return checkpoint - dt.timedelta(seconds=self.config["overlap_seconds"])

    def read(self, state: Mapping[str, Any] | None = None) -> Iterator[Batch]:
        """Stream the rows in batches (see the module's docstring for the states)."""
        checkpoint = (state or {}).get("since") if self.config["change_column"] else None
        dates = DateParser(self.config["date_formats"])
        try:
            with self._connection() as conn:
                statement, params = self._statement(conn, self._since(state))
                try:
                    result = conn.execute(statement, params)
                except DBAPIError as exc:
                    raise self._failure(exc) from None
                yield from self._batches(result, state, checkpoint, dates)
        except DBAPIError as exc:  # the stream broke off while rows were being read
            raise self._failure(exc) from None
        except SQLAlchemyError as exc:
            raise SourceUnavailable(f"{self.label}: {type(exc).__name__}: {exc}") from None

    def _batches(self, result: Any, state: Mapping[str, Any] | None, checkpoint: str | None,
                 dates: DateParser) -> Iterator[Batch]:
        """The batches of an executed query; the result's cursor is closed at the end,
        also when the reader stops early."""
        incremental = bool(self.config["change_column"])
        offset = 0 if incremental else int((state or {}).get("offset") or 0)
        date_format = self.config["date_formats"][0]
        with result:
            header = list(map(str, result.keys()))
            columns = self._columns(header)
            date_at = {columns[f] for f in DATE_FIELDS if f in columns}
            change_at = (header.index(self.config["change_column"])
                         if incremental and self.config["change_column"] in header
                         else None)
            if incremental and change_at is None:
                raise FormatError(f"{self.label}: no column {self.config['change_column']!r}"
                                  f" (change_column); columns: {', '.join(header)}")

            def rows() -> Iterator[tuple[int, list[str] | str]]:
                for number, row in enumerate(result, start=1):
                    yield number, [db_text(v, date_column=i in date_at,
                                           date_format=date_format)
                                   for i, v in enumerate(row)]

            chunks = self._chunks(header, rows(), offset, dates)
            chunk = next(chunks)
            for following in chunks:
                records, done, last, unread = chunk
                if incremental:
                    checkpoint = self._checkpoint(last, change_at, checkpoint)
                    state_now: dict[str, Any] = {"since": checkpoint}
                else:
                    state_now = {"offset": done}
                yield Batch(records=records, state={**state_now, **unread_state(unread)})
                chunk = following
            records, _done, last, unread = chunk
            if incremental:
                final: dict[str, Any] = {
                    "since": self._checkpoint(last, change_at, checkpoint)}
            else:
                final = {"offset": None}
            yield Batch(records=records, state={**final, **unread_state(unread)},
                        complete=True)

    def _checkpoint(self, last: list[str] | None, change_at: int | None,
                    previous: str | None) -> str | None:
        """The change time of the last row read (ISO 8601), else the previous one."""
        if last is None or change_at is None or not last[change_at].strip():
            return previous
        try:
            value = dt.datetime.fromisoformat(last[change_at].strip())
        except ValueError:
            raise FormatError(f"{self.label}: change_column value {last[change_at]!r} is not "
                              "a time stamp") from None
        if value.tzinfo is not None:  # kept with its zone: a time without one would be
            value = value.astimezone(dt.UTC)  # read in the database session's zone
        return value.isoformat()

    def check(self) -> CheckResult:
        """Connect, run the query for its columns only, and check them."""
        try:
            with self._connection() as conn:
                statement, params = self._statement(conn, None, probe=True)
                try:
                    with conn.execute(statement, params) as result:
                        header = list(map(str, result.keys()))
                except DBAPIError as exc:
                    raise self._failure(exc) from None
                self._columns(header)
        except ConnectorError as exc:
            return check_failure(exc)
        except SQLAlchemyError as exc:
            return CheckResult(reachable=False, reason=f"{self.label}: {exc}")
        return CheckResult(reachable=True, authenticated=True, format_ok=True,
                           details={"columns": header})

    def discover(self) -> Discovery:
        """Incremental when a change column is configured; the programme is the
        configured one. A database cannot name its snapshot: an interrupted read starts
        again."""
        programmes = [ProgrammeInfo(self.config["programme"])] if self.config["programme"] else []
        return Discovery(programmes=programmes, incremental=bool(self.config["change_column"]))
