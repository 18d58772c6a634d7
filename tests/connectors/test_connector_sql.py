"""The sql_query connector on SQLite and PostgreSQL: mapping, streaming, read-only
transactions, incremental reads with an overlap, and who may reach which database."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine

from connectors.base import (
    AccessDenied,
    CategoryEntry,
    ConfigError,
    ConnectorContext,
    FormatError,
)
from connectors.catalogue import available_connectors
from connectors.sql_query import SqlQueryConnector, db_text
from tests.connectors.examples import example
from tests.connectors.sqlsource import registry_database


@pytest.fixture
def import_dir(tmp_path: Path) -> Path:
    path = tmp_path / "import"
    path.mkdir()
    return path


@pytest.fixture
def source(backend: str, import_dir: Path) -> Iterator[str]:
    with registry_database(backend, import_dir) as url:
        yield url


def context_for(import_dir: Path, **extra: Any) -> ConnectorContext:
    return ConnectorContext(allowed_hosts=frozenset({"127.0.0.1"}), import_dir=import_dir,
                            logger=logging.getLogger("connectors.test"), **extra)


def connector(source: str, import_dir: Path, **changes: Any) -> SqlQueryConnector:
    config = {**example("sql_view")["config"], "url": source, **changes}
    return SqlQueryConnector(config, context_for(import_dir))


def read_all(conn: SqlQueryConnector, state: dict[str, Any] | None = None
             ) -> tuple[list[Any], list[dict[str, Any]]]:
    batches = list(conn.read(state))
    assert batches[-1].complete
    return [r for b in batches for r in b.records], [b.state for b in batches]


def execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)
    engine.dispose()


def test_reads_the_view_with_the_example_mapping(source: str, import_dir: Path) -> None:
    found, states = read_all(connector(source, import_dir, batch_size=2))
    assert [r.trader_id for r in found] == ["FR53740792600014", "FR38291830400027",
                                            "FR77812345600011"]
    first, second, third = found
    assert (first.legal_name, first.city, first.authorisation_number) == (
        "Fret Rhône Alpes SAS", "Lyon", "FRAEOF000101")
    assert first.authorised_on == "2019-09-07"
    assert first.changed_at is not None and first.changed_at.startswith("2026-11-30")
    assert first.categories == (CategoryEntry("AEOF", "valid", "2019-09-07"),)
    assert (first.consent_publish, second.consent_publish) == (True, False)
    assert third.status == "suspended"
    assert all(r.problems == () for r in found)
    # two batches of at most two rows, each with the change time it reached
    assert states == [{"since": "2026-11-30T09:05:00"}, {"since": "2026-11-30T09:10:00"}]


def test_a_query_and_its_unread_columns(source: str, import_dir: Path) -> None:
    conn = connector(source, import_dir, view=None, change_column=None,
                     query="SELECT * FROM aeo_holder WHERE country = 'FR';")
    found, states = read_all(conn)
    assert len(found) == 3
    assert states[-1] == {"offset": None,
                          "unread": ["holder_id", "changed", "internal_note"]}


def test_incremental_reads_start_an_overlap_before_the_checkpoint(
        source: str, import_dir: Path) -> None:
    conn = connector(source, import_dir, overlap_seconds=600)
    _, states = read_all(conn)
    checkpoint = states[-1]
    assert checkpoint == {"since": "2026-11-30T09:10:00"}
    # committed late: its change time lies before the checkpoint, inside the overlap
    execute(source, "INSERT INTO aeo_holder VALUES (4, 'FR11122233300014', 'Late SARL', "
                    "NULL, 'Paris', '75001', 'FR', 'FRAEOC000104', 'AEOC', 'A', "
                    "'2021-01-01', 1, '2026-11-30 09:07:00', NULL)")
    # far older than the overlap: not read again
    execute(source, "INSERT INTO aeo_holder VALUES (5, 'FR99988877700014', 'Old SA', "
                    "NULL, 'Paris', '75001', 'FR', 'FRAEOC000105', 'AEOC', 'A', "
                    "'2021-01-01', 1, '2026-11-29 09:00:00', NULL)")
    again, states = read_all(conn, checkpoint)
    assert [r.trader_id for r in again] == ["FR53740792600014", "FR38291830400027",
                                            "FR11122233300014", "FR77812345600011"]
    assert states[-1] == {"since": "2026-11-30T09:10:00"}
    # a read with nothing new keeps its checkpoint
    execute(source, "DELETE FROM aeo_holder")
    empty, states = read_all(conn, checkpoint)
    assert empty == [] and states == [checkpoint]
    # without a state the whole view is read
    assert conn.discover().incremental is True


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_change_time_with_a_zone_is_compared_as_such(source: str, import_dir: Path) -> None:
    """A session in another zone than UTC: a checkpoint kept without its zone would be
    read as New York time, five hours late, and a change an hour after it never read."""
    conn = connector(f"{source}?options=-c%20timezone%3DAmerica/New_York", import_dir,
                     view=None, change_column="changed_utc", overlap_seconds=0,
                     query="SELECT *, changed AT TIME ZONE 'UTC' AS changed_utc "
                           "FROM aeo_register_v")
    _, states = read_all(conn)
    assert states[-1]["since"] == "2026-11-30T09:10:00+00:00"
    execute(source, "UPDATE aeo_holder SET changed = '2026-11-30 10:10:00', "
                    "firm_name = 'Renamed SARL' WHERE holder_id = 1")
    again, _ = read_all(conn, states[-1])
    assert [r.legal_name for r in again] == ["Logistique du Nord SA", "Renamed SARL"]


def test_the_transaction_is_read_only(source: str, import_dir: Path) -> None:
    conn = connector(source, import_dir)
    with conn._connection() as database, pytest.raises((psycopg.Error, sqlite3.Error),
                                                       match=r"read-?only"):
        # a plain cursor in the same transaction: the connection's server-side cursors
        # would refuse the statement for another reason
        database.connection.cursor().execute("CREATE TABLE intruder (a INTEGER)")
    bad = connector(source, import_dir, view=None,
                    query="SELECT * FROM aeo_holder; DELETE FROM aeo_holder")
    with pytest.raises(FormatError, match="the query failed"):
        read_all(bad)
    found, _ = read_all(connector(source, import_dir))
    assert len(found) == 3


def test_check_names_missing_columns_and_bad_queries(source: str, import_dir: Path) -> None:
    assert connector(source, import_dir).check().ok
    result = connector(source, import_dir, columns={"trader_id": "eori_nr"}).check()
    assert result.format_ok is False and "eori_nr" in (result.reason or "")
    result = connector(source, import_dir, view="no_such_view").check()
    assert result.format_ok is False and "no_such_view" in (result.reason or "")
    assert "change-me" not in (result.reason or "")


def test_hosts_outside_the_allowlist_are_refused(import_dir: Path) -> None:
    conn = connector("postgresql+psycopg://reader@10.1.2.3:5432/registry", import_dir)
    with pytest.raises(AccessDenied, match=r"'10\.1\.2\.3' is not among the hosts"):
        conn.check_access()
    result = conn.check()
    assert result.reachable is False and "10.1.2.3" in (result.reason or "")


def test_the_hubs_own_database_is_refused(source: str, import_dir: Path) -> None:
    config = {**example("sql_view")["config"], "url": source}
    # the same database under another spelling of its host is refused too
    url = source if source.startswith("sqlite") else source.replace("127.0.0.1", "localhost")
    conn = SqlQueryConnector({**config, "url": url}, ConnectorContext(
        allowed_hosts=frozenset({"localhost", "127.0.0.1"}), import_dir=import_dir,
        refused_databases=frozenset({source})))
    with pytest.raises(AccessDenied, match="the hub's own database"):
        conn.check_access()
    assert not conn.check().ok


def test_a_sqlite_file_outside_the_import_dir_is_refused(import_dir: Path,
                                                         tmp_path: Path) -> None:
    conn = connector(f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}", import_dir)
    with pytest.raises(AccessDenied, match="outside the import directory"):
        conn.check_access()
    conn = connector("sqlite:///../elsewhere.sqlite3", import_dir)
    with pytest.raises(AccessDenied, match="outside the import directory"):
        conn.check_access()


def test_the_password_is_a_secret_and_never_in_the_url(import_dir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        connector("postgresql+psycopg://reader:hunter2@127.0.0.1/registry", import_dir)
    assert "hunter2" not in str(info.value) and "url" in info.value.fields
    conn = connector("postgresql+psycopg://reader@127.0.0.1/registry", import_dir)
    assert conn.redacted_config["password"] == "********"
    assert "change-me" not in repr(conn)
    with pytest.raises(ConfigError):
        connector("postgresql+psycopg://reader@127.0.0.1/registry", import_dir, query="SELECT 1")


@pytest.mark.parametrize(("value", "expected"), [
    (dt.datetime(2026, 11, 30, 9, 0), "2026-11-30T09:00:00"),
    (dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
     "2026-11-30T09:00:00+00:00"),
    (dt.date(2019, 9, 7), "2019-09-07"),
    (__import__("decimal").Decimal("0012.50"), "12.5"),
    (2021000451.0, "2021000451"),
    (b"caf\xc3\xa9", "café"),
])
def test_database_values_as_text(value: Any, expected: str) -> None:
    assert db_text(value, date_column=False, date_format="%d.%m.%Y") == expected


def test_registered_for_hub_administrators_only() -> None:
    cls = available_connectors()["sql_query"]
    assert cls is SqlQueryConnector and cls.hub_admin_only
