"""Stage classified records and merge them into the registry with set-based SQL.

A run writes one `StagedRecord` per record key it meets (with its history events and
identifiers for creations and updates); the merge then applies a run's staged rows in a
few statements inside the caller's transaction: removals (a snapshot's operators without
a staged row, or an incremental feed's tombstones), creations (`INSERT ... SELECT`),
updates (`UPDATE ... FROM`), identifiers and events. The history events themselves were
worked out when the records were classified, by `hub.registry.history`: there is no SQL
version of the history rules.

PostgreSQL stages through COPY (psycopg 3); SQLite through `executemany`.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import (
    JSON,
    Date,
    Integer,
    String,
    Table,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from hub.db import UTCDateTime
from hub.registry.models import Operator, OperatorEvent, OperatorIdentifier
from hub.registry.service import RECORD_COLUMNS
from hub.sync.models import StagedEvent, StagedIdentifier, StagedRecord

#: What a staged row asks of the merge.
ACTIONS = ("create", "update", "same", "keep", "remove")
_STAGED: Table = StagedRecord.__table__  # type: ignore[assignment]
_EVENTS: Table = StagedEvent.__table__  # type: ignore[assignment]
_IDENTIFIERS: Table = StagedIdentifier.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Scope:
    """The operators a connection answers for: its programmes, within its countries."""

    programme_ids: tuple[int, ...]
    countries: tuple[str, ...] = ()

    def covers(self, country: str | None) -> bool:
        """Whether an operator of `country` is this scope's (no countries: every one)."""
        return not self.countries or country in self.countries

    def condition(self) -> Any:
        clause: Any = Operator.programme_id.in_(self.programme_ids)
        if self.countries:
            clause = and_(clause, Operator.country.in_(self.countries))
        return clause


# -- staging -------------------------------------------------------------------------


def stage(session: Session, records: Sequence[dict[str, Any]],
          events: Sequence[dict[str, Any]], identifiers: Sequence[dict[str, Any]]) -> None:
    """Write staged rows (each a dict of its table's columns) in `session`'s transaction.
    Records staged as a key only (unchanged, keep, remove) are written apart from those
    with values, with their few columns."""
    keys_only = [row for row in records if "legal_name" not in row]
    with_values = [row for row in records if "legal_name" in row]
    for table, rows in ((_STAGED, keys_only), (_STAGED, with_values), (_EVENTS, events),
                        (_IDENTIFIERS, identifiers)):
        if rows:
            _write(session, table, rows)


def _write(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk-load rows through the driver: PostgreSQL's COPY, SQLite's `executemany`. The
    values are converted as SQLAlchemy would bind them (the columns' bind processors),
    without its per-row parameter handling, which cost more than the load itself."""
    connection = session.connection()
    dialect = connection.dialect
    columns = [c for c in table.columns if c.name in rows[0]]
    names = [c.name for c in columns]
    values = operator.itemgetter(*names)
    if dialect.name == "postgresql":
        json_columns = [i for i, c in enumerate(columns) if isinstance(c.type, JSON)]
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(
                f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                line = list(values(row))
                for i in json_columns:
                    if line[i] is not None:
                        line[i] = Json(line[i])
                copy.write_row(line)
        return
    converters = [(i, process) for i, c in enumerate(columns)
                  if (process := c.type.dialect_impl(dialect).bind_processor(dialect))]
    params = []
    for row in rows:
        line = list(values(row))
        for i, process in converters:
            line[i] = process(line[i])
        params.append(tuple(line))
    statement = insert(table).compile(dialect=dialect, column_keys=names)
    connection.exec_driver_sql(str(statement), params)


def drop_staged(session: Session, run_id: int) -> None:
    for table in (_EVENTS, _IDENTIFIERS, _STAGED):
        session.execute(delete(table).where(table.c.run_id == run_id))


def keep_instead(session: Session, run_id: int, programme_id: int, keys: Sequence[str]
                 ) -> None:
    """Turn staged rows into keep markers (a key met again later in the same feed). Their
    staged events and identifiers stay staged and are not written: the merge writes those
    of creations and updates only (`_write_history`)."""
    for start in range(0, len(keys), 500):
        session.execute(update(StagedRecord).where(
            StagedRecord.run_id == run_id, StagedRecord.programme_id == programme_id,
            StagedRecord.stable_key.in_(keys[start:start + 500])).values(action="keep"))


# -- what a merge would do -----------------------------------------------------------


def _staged_match(run_id: int) -> Any:
    return exists().where(StagedRecord.run_id == run_id,
                          StagedRecord.programme_id == Operator.programme_id,
                          StagedRecord.stable_key == Operator.stable_key)


def removal_condition(run_id: int, scope: Scope, *, snapshot: bool) -> Any:
    """The listed operators of the connection's scope the run removes: for a snapshot,
    those it did not meet; for an incremental run, those its tombstones name."""
    if snapshot:
        return and_(scope.condition(), Operator.removed_at.is_(None), ~_staged_match(run_id))
    return and_(scope.condition(), Operator.removed_at.is_(None), exists().where(
        StagedRecord.run_id == run_id, StagedRecord.action == "remove",
        StagedRecord.programme_id == Operator.programme_id,
        StagedRecord.stable_key == Operator.stable_key))


@dataclass
class Difference:
    """What merging a run would do, per programme id."""

    created: dict[int, int]
    updated: dict[int, int]
    status_changes: dict[int, int]
    clearing: dict[int, int]  # updates that empty a value the operator holds
    removed: dict[int, int]
    kept: int
    unchanged: int
    refreshed: int  # unchanged records whose fingerprint is new
    listed: dict[int, int]

    def total(self, name: str) -> int:
        value: dict[int, int] = getattr(self, name)
        return sum(value.values())


def difference(session: Session, run_id: int, scope: Scope, *, snapshot: bool) -> Difference:
    """What merging the run would do (always asked before `merge`, in its transaction)."""
    # PostgreSQL plans by its statistics, which a snapshot's bulk load leaves stale:
    # refresh them for the staging tables the joins read. The operator table's are
    # refreshed by `merge` once it has created operators (a first sync plans its event
    # join on an empty table otherwise); other changes to it are autovacuum's to follow.
    # An incremental page is small; autovacuum keeps up with those.
    if snapshot:
        _analyze(session.connection(), "sync_staged", "sync_staged_event",
                 "sync_staged_identifier")
    staged = session.execute(
        select(StagedRecord.programme_id, StagedRecord.action, func.count(),
               func.sum(case((StagedRecord.status_change.is_(True), 1), else_=0)),
               func.count(StagedRecord.fingerprint),
               func.sum(case((StagedRecord.clears_values.is_(True), 1), else_=0)))
        .where(StagedRecord.run_id == run_id)
        .group_by(StagedRecord.programme_id, StagedRecord.action)).all()
    created: dict[int, int] = {}
    updated: dict[int, int] = {}
    changes: dict[int, int] = {}
    clearing: dict[int, int] = {}
    kept = unchanged = refreshed = 0
    for programme_id, action, count, status_changes, fingerprints, clears in staged:
        if action == "create":
            created[programme_id] = count
        elif action == "update":
            updated[programme_id] = count
            changes[programme_id] = int(status_changes or 0)
            clearing[programme_id] = int(clears or 0)
        elif action == "keep":
            kept += count
        elif action == "same":
            unchanged += count
            refreshed += fingerprints
    removing = case((removal_condition(run_id, scope, snapshot=snapshot), 1), else_=0)
    removed: dict[int, int] = {}
    listed: dict[int, int] = {}
    for programme_id, count, removals in session.execute(
            select(Operator.programme_id, func.count(), func.sum(removing))
            .where(scope.condition(), Operator.removed_at.is_(None))
            .group_by(Operator.programme_id)):
        listed[programme_id] = count
        removed[programme_id] = int(removals or 0)
    return Difference(created, updated, changes, clearing, removed, kept, unchanged,
                      refreshed, listed)


# -- the merge -----------------------------------------------------------------------


def _analyze(connection: Connection, *tables: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"ANALYZE {', '.join(tables)}"))


def merge(session: Session, run_id: int, scope: Scope, diff: Difference, *, snapshot: bool,
          now: dt.datetime, source: str) -> None:
    """Apply the run's staged rows in the caller's transaction (`diff`, its difference,
    spares the statements that would find nothing to do)."""
    connection = session.connection()
    if diff.total("removed"):
        _remove(connection, removal_condition(run_id, scope, snapshot=snapshot), now=now,
                run_id=run_id, source=source)
    if diff.total("created"):
        _create(connection, run_id, now=now, source=source)
        if snapshot:
            _analyze(connection, "operator")  # now with the creations
    if diff.total("updated"):
        _update(connection, run_id, now=now, source=source)
    if diff.refreshed:
        connection.execute(update(Operator).where(
            _matched(run_id), StagedRecord.action == "same",
            StagedRecord.fingerprint.is_not(None),
            or_(Operator.fingerprint.is_(None),
                Operator.fingerprint != StagedRecord.fingerprint))
            .values(fingerprint=StagedRecord.fingerprint))
    if diff.total("created") or diff.total("updated"):
        _write_history(connection, run_id, now=now, source=source)


def _matched(run_id: int) -> Any:
    return and_(StagedRecord.run_id == run_id,
                StagedRecord.programme_id == Operator.programme_id,
                StagedRecord.stable_key == Operator.stable_key)


def _remove(connection: Connection, removing: Any, *, now: dt.datetime, run_id: int,
            source: str) -> None:
    today = now.date()
    connection.execute(insert(OperatorEvent).from_select(
        ["operator_id", "kind", "effective_date", "recorded_at", "changes", "previous",
         "source", "sync_run_id"],
        select(Operator.id, literal("removed", String), literal(today, Date),
               literal(now, UTCDateTime()), literal({"listed": False}, JSON),
               literal({"listed": True}, JSON), literal(source, String),
               literal(run_id, Integer))
        .where(removing).order_by(Operator.id)))
    connection.execute(update(Operator).where(removing).values(
        removed_at=now, updated_at=now, last_effective=today))


def _create(connection: Connection, run_id: int, *, now: dt.datetime, source: str) -> None:
    record = [getattr(StagedRecord, name) for name in RECORD_COLUMNS]
    connection.execute(insert(Operator).from_select(
        ["programme_id", "stable_key", *RECORD_COLUMNS, "last_effective", "source",
         "created_at", "updated_at"],
        select(StagedRecord.programme_id, StagedRecord.stable_key, *record,
               StagedRecord.last_effective, literal(source, String),
               literal(now, UTCDateTime()), literal(now, UTCDateTime()))
        .where(StagedRecord.run_id == run_id, StagedRecord.action == "create")
        .order_by(StagedRecord.seq, StagedRecord.stable_key)))



def _update(connection: Connection, run_id: int, *, now: dt.datetime, source: str) -> None:
    connection.execute(update(Operator).where(
        _matched(run_id), StagedRecord.action == "update").values(
        **{name: getattr(StagedRecord, name) for name in RECORD_COLUMNS},
        removed_at=None, last_effective=StagedRecord.last_effective, source=source,
        updated_at=case((StagedRecord.has_events.is_(True), now), else_=Operator.updated_at)))
    replaced = select(Operator.id).join(StagedRecord, and_(
        StagedRecord.programme_id == Operator.programme_id,
        StagedRecord.stable_key == Operator.stable_key)).where(
        StagedRecord.run_id == run_id, StagedRecord.action == "update",
        StagedRecord.identifiers_changed.is_(True))
    connection.execute(delete(OperatorIdentifier).where(
        OperatorIdentifier.operator_id.in_(replaced)))


def _created_or_updated(table: Table) -> Any:
    """Join a staged events or identifiers row to its staged record, when the merge
    creates or updates it (a row turned into a keep marker leaves its own staged)."""
    return and_(StagedRecord.run_id == table.c.run_id,
                StagedRecord.programme_id == table.c.programme_id,
                StagedRecord.stable_key == table.c.stable_key,
                StagedRecord.action.in_(("create", "update")))


def _write_history(connection: Connection, run_id: int, *, now: dt.datetime,
                   source: str) -> None:
    """The staged identifiers and events of the run's creations and updates."""
    joined = and_(Operator.programme_id == StagedIdentifier.programme_id,
                  Operator.stable_key == StagedIdentifier.stable_key)
    connection.execute(insert(OperatorIdentifier).from_select(
        ["operator_id", "scheme", "value", "origin", "linked"],
        select(Operator.id, StagedIdentifier.scheme, StagedIdentifier.value,
               StagedIdentifier.origin, StagedIdentifier.linked)
        .join(StagedRecord, _created_or_updated(_IDENTIFIERS)).join(Operator, joined)
        .where(StagedIdentifier.run_id == run_id).order_by(StagedIdentifier.id)))
    connection.execute(insert(OperatorEvent).from_select(
        ["operator_id", "kind", "effective_date", "recorded_at", "changes", "previous",
         "source", "sync_run_id"],
        select(Operator.id, StagedEvent.kind, StagedEvent.effective_date,
               literal(now, UTCDateTime()), StagedEvent.changes, StagedEvent.previous,
               literal(source, String), literal(run_id, Integer))
        .join(StagedRecord, _created_or_updated(_EVENTS))
        .join(Operator, and_(Operator.programme_id == StagedEvent.programme_id,
                             Operator.stable_key == StagedEvent.stable_key))
        .where(StagedEvent.run_id == run_id).order_by(StagedEvent.id)))
