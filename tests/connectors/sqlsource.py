"""A registry database for the sql_query tests: SQLite in the import directory, or a
fresh PostgreSQL database, loaded with the shipped example (fixtures/sql_view.sql)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine

from tests.conftest import _create_pg_database, _drop_pg_database
from tests.connectors.examples import FIXTURES


def statements(script: str) -> list[str]:
    """The statements of a SQL script without its comments."""
    body = re.sub(r"--[^\n]*", "", script)
    return [s.strip() for s in body.split(";") if s.strip()]


def run_script(url: str, script: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements(script):
            conn.exec_driver_sql(statement)
    engine.dispose()


@contextmanager
def registry_database(backend: str, import_dir: Path) -> Iterator[str]:
    """The URL of a database holding the example registry (dropped afterwards)."""
    if backend == "sqlite":
        url = f"sqlite:///{import_dir / 'registry.sqlite3'}"
        run_script(url, (FIXTURES / "sql_view.sql").read_text(encoding="utf-8"))
        yield url
        return
    url = _create_pg_database()
    try:
        run_script(url, (FIXTURES / "sql_view.sql").read_text(encoding="utf-8"))
        yield url
    finally:
        _drop_pg_database(url)
