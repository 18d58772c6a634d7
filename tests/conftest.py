"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

- `backend` is parametrized over `sqlite` and `postgresql`; `db_url` is a migrated
  database of that backend, created once per run (PostgreSQL: a fresh database on the
  server named by `AEOHUB_TEST_DATABASE_URL`, dropped at the end).
- `session` is a session inside a transaction rolled back after the test.
- `app` is a Flask app on that database; `committed_db` and `app` wipe the tables after
  the test, so tests that commit (CLI, live servers, other processes) stay independent.
- With `CI=true` an unreachable PostgreSQL server fails the run instead of skipping its half.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from hub import clock as hub_clock
from hub import create_app
from hub.auth import service as auth_service
from hub.db import Database
from hub.migrate import upgrade
from hub.models import metadata
from hub.web import users
from tests.waiting import TestClock

BACKENDS = ("sqlite", "postgresql")

# Benchmarks run when asked: `make test` (smoke size, in the same run as the suite) and
# `make bench` (full size) set AEOHUB_WITH_BENCHMARKS=1; a plain `pytest` leaves them out.
collect_ignore_glob = [] if os.environ.get("AEOHUB_WITH_BENCHMARKS") == "1" else [
    "benchmarks/*"]
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_backend_outcomes: Counter[tuple[str, str]] = Counter()
_pg_problem: str | None = None


def pg_server_url() -> str:
    return os.environ.get("AEOHUB_TEST_DATABASE_URL", DEFAULT_PG_URL)


def pg_problem() -> str | None:
    """Why this run cannot use the PostgreSQL server (None when it can)."""
    return _pg_problem


def _check_postgres() -> str | None:
    try:
        engine = create_engine(pg_server_url(), connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any driver error: unreachable, refused, auth
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _pg_problem  # noqa: PLW0603 - set once per run, read by the fixtures
    _pg_problem = _check_postgres()
    if _pg_problem and os.environ.get("CI") == "true":
        raise pytest.UsageError(
            f"PostgreSQL at {make_url(pg_server_url()).render_as_string(hide_password=True)} "
            f"is unreachable ({_pg_problem}); CI never skips the PostgreSQL half"
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The backend travels in the report's user properties, which pytest-xdist's workers
    # send to the controller that prints the summary.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "backend" in callspec.params:
            item.user_properties.append(("backend", callspec.params["backend"]))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    backend = dict(report.user_properties).get("backend")
    if not isinstance(backend, str):  # not a test of a database backend
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _backend_outcomes[(backend, report.outcome)] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _backend_outcomes:
        return
    terminalreporter.section("database backends")
    for backend in BACKENDS:
        counts = {o: _backend_outcomes[(backend, o)] for o in ("passed", "failed", "skipped")}
        terminalreporter.write_line(
            f"{backend}: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped"
        )
    if _pg_problem:
        terminalreporter.write_line(f"postgresql was skipped: {_pg_problem}")


def _create_pg_database() -> str:
    name = f"aeohub_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(pg_server_url()).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(pg_server_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(autouse=True)
def _close_pools() -> Iterator[None]:
    """Close the connection pools a test left open (apps it built, engines it made), so
    that no connection is garbage-collected open during a later test."""
    yield
    for database in list(Database.instances):
        database.engine.dispose()


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords and client secrets are hashed at a low scrypt cost in tests: the same
    code, 16 to 32 times cheaper, since hundreds of tests create users and clients and
    sign in. The production costs are checked by the two tests that undo this,
    `test_passwords_are_hashed_at_the_production_cost` and
    `test_secrets_are_hashed_at_the_production_cost`."""
    monkeypatch.setattr(users, "PASSWORD_METHOD", "scrypt:1024:8:1")
    monkeypatch.setattr(auth_service, "SCRYPT_N", 2**10)


@pytest.fixture(scope="session")
def _databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Lazily created, migrated databases per backend."""
    created: dict[str, str] = {}
    yield created
    for backend, url in created.items():
        if backend == "postgresql":
            _drop_pg_database(url)


def new_database_url(backend: str, tmp_dir: Path) -> str:
    """A new, empty database of `backend` (caller migrates it)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_dir / f'hub-{uuid.uuid4().hex[:8]}.sqlite3'}"
    return _create_pg_database()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and _pg_problem:
        pytest.skip(f"PostgreSQL unreachable: {_pg_problem}")
    return str(request.param)


@pytest.fixture(scope="session")
def db_url(
    backend: str, _databases: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A migrated database of the current backend, shared by the run."""
    if backend not in _databases:
        url = new_database_url(backend, tmp_path_factory.mktemp("db"))
        database = Database(url)
        upgrade(database)
        database.dispose()
        _databases[backend] = url
    return _databases[backend]


@pytest.fixture(scope="session")
def database(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def wipe(database: Database) -> None:
    with database.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session whose work is rolled back after the test (commits become savepoints)."""
    connection = database.engine.connect()
    outer = connection.begin()
    sess = Session(bind=connection, join_transaction_mode="create_savepoint",
                   expire_on_commit=False)
    try:
        yield sess
    finally:
        sess.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def committed_db(database: Database) -> Iterator[Database]:
    """The database for tests that really commit; every table is emptied afterwards."""
    yield database
    wipe(database)


@pytest.fixture
def app(committed_db: Database, tmp_path: Path) -> Iterator[Flask]:
    application = create_app(
        {"ENV": "testing", "DATABASE_URL": committed_db.url, "IMPORT_DIR": str(tmp_path)}
    )
    yield application
    application.extensions["aeohub.db"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def clock() -> Iterator[TestClock]:
    """The hub's clock for this test, moved forward by `clock.advance(seconds)` instead
    of sleeping (in this process's threads, live servers included; not in subprocesses)."""
    test_clock = TestClock()
    with hub_clock.use(test_clock.now):
        yield test_clock
