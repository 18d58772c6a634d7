"""Database access: the declarative base, engines, and sessions.

- `Base` is the SQLAlchemy 2 typed declarative base with a constraint naming convention
  (so that Alembic migrations name constraints the same way on every backend).
- `Database` owns one engine and its session factory; `init_app` attaches one to a Flask
  app. `session()` is the session of the current request or app context, closed at
  teardown. Background jobs and commands use `Database.session_scope()`, a session of
  their own.
- `transaction()` is the one way the hub commits: a block (`@transactional` on a service
  function) committed when the outermost block ends and rolled back on error. Services
  own their transactions; routes never commit.
- `reader()` is the request's read-only session: no transaction (each statement reads
  committed data on its own), for the API's hot reads (token check, verify, match).
- `DriverQuery` runs a prebuilt SELECT on the driver's cursor with SQLAlchemy's compiled
  SQL and result types, skipping the per-execution machinery; on a reader it uses a
  pooled driver connection of its own, given back at teardown.
- SQLite runs with foreign keys on, WAL, a busy timeout, and real transactions (the
  pysqlite driver's own transaction handling is switched off so that SAVEPOINT works);
  PostgreSQL runs through psycopg 3. Pooled connections are pinged only after sitting
  idle (`PING_IDLE_SECONDS`), not on every checkout.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

import orjson
from flask import Flask, current_app, g, has_request_context
from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    MetaData,
    String,
    any_,
    bindparam,
    create_engine,
    event,
    exc,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.expression import ColumnClause, Label
from sqlalchemy.types import TypeDecorator

from hub import jsonio

#: The largest id an INTEGER key holds (PostgreSQL's INTEGER is 32 bits): a larger id in a
#: request names nothing.
MAX_ID = 2**31 - 1

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
EXTENSION_KEY = "aeohub.db"
P = ParamSpec("P")
R = TypeVar("R")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no time zones; PostgreSQL stores `timestamptz`. Naive values are refused
    rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a timezone-aware UTC time is required")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect
                             ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Base class of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


#: Execution option of the readers' engine (see `Database.read_sessionmaker`).
READ_ONLY_OPTION = "aeohub_read_only"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions break SAVEPOINT).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get(READ_ONLY_OPTION):
            return  # a reader: each statement is its own read transaction
        # Writers ask for IMMEDIATE so that two processes never deadlock upgrading a lock.
        # Straight to the driver: this runs for every transaction, and a statement through
        # SQLAlchemy's execution machinery costs more than the BEGIN itself.
        mode = options.get("sqlite_begin", "")
        conn.connection.driver_connection.execute(f"BEGIN {mode}".strip())


def make_engine(url: str, *, echo: bool = False, **kwargs: Any) -> Engine:
    """Create an engine with the hub's settings for its backend."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    # JSON columns are written with orjson (one serializer for every path, the sync's bulk
    # writes included: `hub.sync.bulk`); they are read with the standard library, which
    # reads any JSON text exactly
    kwargs.setdefault("json_serializer", jsonio.dumps_text)
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, **kwargs)
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, echo=echo, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    return engine


#: A pooled connection idle for longer than this is pinged before it is handed out.
PING_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle for a while.

    `pool_pre_ping` pings on every checkout, one more round trip for every request of a
    busy API; a connection in constant use is known to be alive. One left idle (the
    server may have restarted or dropped it meanwhile) is pinged, and replaced if dead,
    as `pool_pre_ping` would.
    """
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_IDLE_SECONDS:
            return
        try:
            if not engine.dialect.do_ping(dbapi_connection):
                raise exc.DisconnectionError("the pooled connection did not answer a ping")
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out (or opens) another.
            raise exc.DisconnectionError(f"the pooled connection is dead: {error}") from error


def bind_key(session: Session) -> str:
    """Which database a session reads, as text (per-worker caches key on it so that
    they never mix two databases' rows); rendered once per engine."""
    bind: Any = session.bind or session.get_bind()
    engine: Any = getattr(bind, "engine", bind)
    key: str | None = getattr(engine, "_aeohub_bind_key", None)
    if key is None:
        key = str(engine.url)
        engine._aeohub_bind_key = key
    return key


def core_execute(session: Session, statement: Any, params: Any = None) -> Any:
    """Run a prebuilt Core statement on the session's connection (hot paths).

    Skips the ORM's per-statement work (`Session.execute` sets up ORM result handling
    even for plain column selects); flushes pending changes first, as autoflush would.
    """
    _autoflush(session)
    return session.connection().execute(statement, params)


def _autoflush(session: Session) -> None:
    """Flush pending changes before a read that bypasses `Session.execute`, as its
    autoflush would."""
    if session.autoflush and (session.new or session.deleted or session.dirty):
        session.flush()


class DriverRow(tuple[Any, ...]):
    """A row of a `DriverQuery`: a tuple with its columns as attributes (each query's row
    class defines them as properties) and `_mapping`, a read-only view by column name."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _index: dict[str, int] = {}

    @property
    def _mapping(self) -> RowView:
        return RowView(self)


class RowView(Mapping[str, Any]):
    """A `DriverRow` by column name, without copying it (as SQLAlchemy's `Row._mapping`)."""

    __slots__ = ("_row",)

    def __init__(self, row: DriverRow) -> None:
        self._row = row

    def __getitem__(self, key: str) -> Any:
        return self._row[self._row._index[key]]

    def get(self, key: str, default: Any = None) -> Any:
        i = self._row._index.get(key)
        return default if i is None else self._row[i]

    def __iter__(self) -> Iterator[str]:
        return iter(self._row._fields)

    def __len__(self) -> int:
        return len(self._row._fields)


def _converted(fetched: list[Any], converting: list[tuple[int, Any]] | None) -> list[Any]:
    """Driver rows with the columns that have a result processor converted by it."""
    if converting is None:
        return fetched
    out = []
    for row in fetched:
        values = list(row)
        for i, process in converting:
            values[i] = process(values[i])
        out.append(values)
    return out


class Prepared(NamedTuple):
    """A `DriverQuery` compiled for one dialect."""

    sql: str
    compiled: Any
    #: parameter names in the driver's order (positional styles), else None
    positions: list[str] | None
    bind_processors: dict[str, Any]
    #: the result columns to convert, as (position, processor); None: none
    converting: list[tuple[int, Any]] | None
    row_class: type[DriverRow]


def _named(name: str, column: Any) -> bool:
    """Whether a selected column's name in `selected_columns` is the one the statement's
    result gives it: a table column (its key being its name) or a named label. Computed
    columns without a label, anonymous labels and keyed columns are named differently
    by the two."""
    if isinstance(column, Label):
        return not name.startswith("_no_label")
    return isinstance(column, ColumnClause) and column.key == column.name


class DriverQuery:
    """A prebuilt SELECT run on the driver's own cursor: for the hottest reads only.

    SQLAlchemy compiles it (once per dialect: the same SQL as executing the statement),
    its bound values and its literals go to the driver as the dialect's parameter style
    wants them, and each result column is converted by its own type (SQLAlchemy's result
    processors, so JSON, dates and `UTCDateTime` read back as through `Session.execute`).
    What it skips is the per-execution machinery (execution context, events, result
    objects), which costs a hot request more than the query itself. It runs on the
    session's connection, so it sees what the session sees; statements with expanding
    parameters (`IN` lists: use `ListQuery`) or unlabelled computed columns are refused.
    It uses public SQLAlchemy APIs only.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._prepared: dict[str, Prepared] = {}

    def _prepare(self, dialect: Dialect) -> Prepared:
        compiled: Any = self.statement.compile(dialect=dialect)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("a DriverQuery cannot have expanding parameters")
        # Public APIs only: the statement's selected columns name the result's columns,
        # and each type's implementation for the dialect gives its processors (what
        # `Session.execute` applies).
        selected = self.statement.selected_columns
        names = list(selected.keys())
        if len(set(names)) != len(names) or not all(
                _named(name, column) for name, column in zip(names, selected, strict=True)):
            raise ValueError(f"a DriverQuery needs a distinct name for each column (label "
                             f"computed ones): {names}")
        processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                      for column in selected]
        row_class = type("Row", (DriverRow,), {
            "__slots__": (), "_fields": tuple(names),
            "_index": {name: i for i, name in enumerate(names)},
            **{name: property(operator.itemgetter(i)) for i, name in enumerate(names)
               if not name.startswith("_")}})
        bind_processors = {
            name: process for name, param in compiled.binds.items()
            if (process := param.type.dialect_impl(dialect).bind_processor(dialect))}
        positions = list(compiled.positiontup) if compiled.positional else None
        converting = [(i, process) for i, process in enumerate(processors) if process]
        prepared = Prepared(compiled.string, compiled, positions, bind_processors,
                            converting or None, row_class)
        self._prepared[dialect.name] = prepared
        return prepared

    def prepared(self, dialect: Dialect) -> Prepared:
        """The statement prepared for `dialect`, compiled on first use."""
        return self._prepared.get(dialect.name) or self._prepare(dialect)

    def rows(self, session: Session, params: dict[str, Any] | None = None) -> list[Any]:
        """The rows for `params` (pending changes of `session` are flushed first, as
        autoflush would)."""
        _dialect, prepared, fetched = self.fetch(session, params)
        row_class = prepared.row_class
        return [row_class(row) for row in _converted(fetched, prepared.converting)]

    def fetch(self, session: Session, params: dict[str, Any] | None = None
              ) -> tuple[Dialect, Prepared, list[Any]]:
        """The session's dialect, the prepared form for it (`prepared`) and the driver's
        rows, unconverted."""
        _autoflush(session)
        pooled: Any
        if session.info.get(READER_KEY) and not session.in_transaction():
            # A request's reader: a pooled driver connection of its own, without the
            # session's connection and transaction bookkeeping (`driver_connection`).
            pooled, dialect = driver_connection(session)
        else:
            connection = session.connection()
            pooled, dialect = connection.connection, connection.dialect
        prepared = self.prepared(dialect)
        values = prepared.compiled.construct_params(params or {})
        for name, process in prepared.bind_processors.items():
            if name in values:
                values[name] = process(values[name])
        positions = prepared.positions
        bound: Any = ([values[name] for name in positions] if positions is not None
                      else values)
        try:
            cursor = _cursor(pooled)
            cursor.execute(prepared.sql, bound)
            return dialect, prepared, cursor.fetchall()
        except Exception:
            # A reader's connection goes back to the pool at once (which throws a broken
            # one away), not kept for the next request (`Database.keep_reader`).
            release_driver_connection(session)
            raise


class ListQuery:
    """A `DriverQuery` for `column IN (a list)`, the list bound as one parameter: an array
    on PostgreSQL (`= ANY(:name)`), JSON text on SQLite (`IN (SELECT value FROM
    json_each(:name))`). Unlike an expanding `IN`, the SQL is the same for every list, so
    it is compiled once and, on PostgreSQL, prepared once."""

    def __init__(self, statement: Any, column: Any, name: str) -> None:
        self.name = name
        listed = func.json_each(bindparam(name, type_=String())).table_valued("value")
        self._queries = {
            "postgresql": DriverQuery(statement.where(
                column == any_(bindparam(name, type_=ARRAY(column.type))))),
            "sqlite": DriverQuery(statement.where(column.in_(select(listed.c.value)))),
        }

    def rows(self, session: Session, params: dict[str, Any]) -> list[Any]:
        bind: Any = session.bind or session.get_bind()
        dialect = bind.dialect.name
        if dialect == "sqlite":
            params = {**params, self.name: orjson.dumps(list(params[self.name])).decode()}
        return self._queries[dialect].rows(session, params)


class JoinedQuery:
    """Two independent `DriverQuery` reads in one statement, one round trip:
    `SELECT first.*, then.* FROM (first) LEFT JOIN (then) ON true`.

    `first` reads at most one row (a lookup by a unique key); `then` any number. `rows`
    gives first's row (None when it finds none: then is not read either) and then's rows,
    each as its own query's rows would be. Their bound parameters share one namespace.
    """

    _MARK = "_joined_row"

    def __init__(self, first: DriverQuery, then: DriverQuery) -> None:
        self.first, self.then = first, then
        left = first.statement.subquery()
        right = then.statement.add_columns(literal_column("1").label(self._MARK)).subquery()
        self._width = len(left.c)
        self._query = DriverQuery(select(*left.c, *right.c)
                                  .select_from(left.outerjoin(right, true())))

    def rows(self, session: Session, params: dict[str, Any]) -> tuple[Any | None, list[Any]]:
        dialect, prepared, fetched = self._query.fetch(session, params)
        if not fetched:
            return None, []
        if any(row[:self._width] != fetched[0][:self._width] for row in fetched[1:]):
            raise ValueError("the first query of a JoinedQuery read more than one row")
        converted = _converted(fetched, prepared.converting)
        first_row = self.first.prepared(dialect).row_class(converted[0][:self._width])
        then_row = self.then.prepared(dialect).row_class
        return first_row, [then_row(row[self._width:-1]) for row in converted
                           if row[-1] is not None]


#: `Session.info` keys: a request's reader session, and the pooled driver connection its
#: `DriverQuery` reads use.
READER_KEY = "aeohub_reader"
DRIVER_KEY = "aeohub_driver"
#: Pooled connection `info` key: the `DriverQuery` cursor kept with a driver connection.
CURSOR_KEY = "aeohub_cursor"
#: `Session.info` key of a reader kept from request to request (`Database.keep_reader`):
#: when its driver connection was last used (`time.monotonic()`).
KEPT_KEY = "aeohub_kept"


def _cursor(pooled: Any) -> Any:
    """The `DriverQuery` cursor of a pooled connection: one kept with the driver's
    connection (a driver caches its result loaders per cursor; a new cursor per query
    costs psycopg about 20 µs more). Every query fetches all its rows, so the cursor is
    free again when it returns."""
    driver = pooled.driver_connection
    kept = pooled.info.get(CURSOR_KEY)
    if kept is None or kept[0] is not driver:
        kept = pooled.info[CURSOR_KEY] = (driver, driver.cursor())
    return kept[1]


def driver_connection(session: Session) -> tuple[Any, Dialect]:
    """The pooled connection of a reader session (checked out on first use, its driver
    connection in autocommit: each statement reads committed data on its own), and its
    dialect."""
    engine: Any = session.bind
    info = session.info
    found = info.get(DRIVER_KEY)
    if KEPT_KEY in info:
        # Kept from request to request: one that sat idle goes back to the pool, and the
        # next is pinged on check-out (`PING_IDLE_SECONDS`), as any other idle one.
        now = time.monotonic()
        if found is not None and now - info[KEPT_KEY] >= PING_IDLE_SECONDS:
            release_driver_connection(session)
            found = None
        info[KEPT_KEY] = now
    if found is None:
        found = engine.raw_connection()
        if engine.dialect.name != "sqlite":  # SQLite connections are in autocommit already
            found.driver_connection.autocommit = True
        info[DRIVER_KEY] = found
    return found, engine.dialect


def release_driver_connection(session: Session) -> None:
    """Give a reader's driver connection back to the pool, as it was checked out."""
    found = session.info.pop(DRIVER_KEY, None)
    if found is None:
        return
    try:
        engine: Any = session.bind
        if engine.dialect.name != "sqlite" and found.driver_connection is not None:
            found.driver_connection.autocommit = False
    finally:
        found.close()


class Database:
    """One engine and its session factory."""

    #: Every live instance, so that test harnesses can close pools left open.
    instances: weakref.WeakSet[Database] = weakref.WeakSet()

    def __init__(self, url: str, *, echo: bool = False, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo, **engine_kwargs)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # Readers: sessions for request paths that only read (the API's token check,
        # verify, match). No transaction: each statement reads committed data on its own
        # (what READ COMMITTED gives statements inside a transaction too), which spares
        # PostgreSQL's BEGIN and ROLLBACK round trips and SQLite's BEGIN. Never write
        # through one: nothing would make its statements atomic.
        readers = self.engine.execution_options(**(
            {READ_ONLY_OPTION: True} if self.engine.dialect.name == "sqlite"
            else {"isolation_level": "AUTOCOMMIT", READ_ONLY_OPTION: True}))
        self.read_sessionmaker = sessionmaker(readers, expire_on_commit=False,
                                              autoflush=False)
        #: Keep the request reader, and the pooled connection its `DriverQuery` reads use,
        #: from one request to the next (`request_reader`): for a server process that
        #: serves one request at a time on one thread for its whole life (a gunicorn sync
        #: worker: `config/gunicorn.conf.py` turns it on). It spares each request a
        #: session and a pool check-out and check-in, about 40 µs.
        self.keep_reader = False
        self._kept: tuple[int, Session] | None = None
        Database.instances.add(self)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session_scope(self, *, write: bool = False) -> Iterator[Session]:
        """A session of its own, for background work and commands: one `transaction`
        (committed on success, rolled back on error), closed at the end.

        `write=True` takes SQLite's write lock at BEGIN (no effect on PostgreSQL).
        """
        session = self.sessionmaker()
        try:
            with transaction(session, write=write):
                yield session
        finally:
            session.close()

    def request_reader(self) -> Session:
        """A reader for a request (`reader()`): the kept one when `keep_reader` is on
        (per thread: another thread gets its own, not kept), else a new one."""
        thread = threading.get_ident()
        if self.keep_reader and self._kept is None:
            self._kept = (thread, self.read_sessionmaker(info={READER_KEY: True,
                                                                 KEPT_KEY: 0.0}))
        if self.keep_reader and self._kept is not None and self._kept[0] == thread:
            return self._kept[1]
        return self.read_sessionmaker(info={READER_KEY: True})

    def end_request_reader(self, session: Session) -> None:
        """At the end of a request: the reader closed (what it loaded or began is gone);
        its driver connection back in the pool unless the reader is kept."""
        try:
            if not (self.keep_reader and self._kept is not None and self._kept[1] is session):
                release_driver_connection(session)
        finally:
            session.close()

    def dispose(self) -> None:
        if self._kept is not None:
            kept, self._kept = self._kept[1], None
            release_driver_connection(kept)
            kept.close()
        self.engine.dispose()


def init_app(app: Flask) -> Database:
    """Attach a `Database` for `app.config["DATABASE_URL"]` and close sessions at teardown."""
    database = Database(app.config["DATABASE_URL"], echo=bool(app.config.get("DATABASE_ECHO")))
    app.extensions[EXTENSION_KEY] = database

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session_ = g.pop("db_session", None)
        if session_ is not None:
            session_.close()
        reader_ = g.pop("db_reader", None)
        if reader_ is not None:
            database.end_request_reader(reader_)

    return database


def get_db(app: Flask | None = None) -> Database:
    """The `Database` of `app` (default: the current app)."""
    extensions = (app or current_app).extensions
    database: Database = extensions[EXTENSION_KEY]
    return database


def reader() -> Session:
    """The read-only session of the current request or app context (see
    `Database.read_sessionmaker`): for hot paths that only read; never write with it."""
    if "db_reader" not in g:
        g.db_reader = get_db().request_reader()
    current: Session = g.db_reader
    return current


def session() -> Session:
    """The session of the current request or app context (created on first use)."""
    if "db_session" not in g:
        g.db_session = get_db().sessionmaker()
    current: Session = g.db_session
    return current


#: `Session.info` key: how many `transaction` blocks are open on the session.
TRANSACTION_DEPTH_KEY = "aeohub.transaction_depth"


@contextmanager
def transaction(session: Session, *, write: bool = True) -> Iterator[Session]:
    """A unit of work on `session`: committed when the outermost block ends, rolled back
    when an error leaves it (the error goes on, to the caller or to the request's problem
    document), so a failed service call leaves nothing half-written.

    Services own their transactions through this block (`transactional`); routes never
    commit. Blocks nest: an inner block (a service called by another, or by a command
    inside `Database.session_scope`) joins the outer one, and nothing is committed before
    the outermost ends. An inner block has no rollback of its own: what it wrote is the
    outer block's to commit or drop.

    The outermost block with `write` begins as a writer. On SQLite a transaction that
    began as a read cannot write once another connection has committed since it began
    (SQLITE_BUSY, with no retry), so the read a request's session began (checking the
    caller, parsing the input) is ended first, and the write lock is taken at BEGIN
    (`BEGIN IMMEDIATE`, which waits its turn). PostgreSQL needs neither; there the
    rollback only ends a read.
    """
    depth: int = session.info.get(TRANSACTION_DEPTH_KEY, 0)
    if depth:
        session.info[TRANSACTION_DEPTH_KEY] = depth + 1
        try:
            yield session
        finally:
            session.info[TRANSACTION_DEPTH_KEY] = depth
        return
    if write:
        _begin_writing(session)
    session.info[TRANSACTION_DEPTH_KEY] = 1
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info.pop(TRANSACTION_DEPTH_KEY, None)


def _begin_writing(session: Session) -> None:
    """Begin `session`'s transaction as a writer (see `transaction`)."""
    if has_request_context() and g.get("db_session") is session:
        session.rollback()  # the request only read so far: writes happen in a transaction
    if not session.in_transaction() and session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


def transactional(func: Callable[Concatenate[Session, P], R]
                  ) -> Callable[Concatenate[Session, P], R]:
    """Run a service function, whose first argument is its session, in a `transaction`:
    its writes are committed when it returns (or when the outermost transaction it was
    called in ends) and rolled back when it raises."""

    @functools.wraps(func)
    def run(session: Session, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with transaction(session):
            return func(session, *args, **kwargs)

    return run
