"""Diff records against the registry and write the differences in bulk.

A `ProgrammeIndex` holds, for one programme, each stable key's operator id, fingerprint
and removal flag, loaded in one query. `plan` turns validated records into creations and
updates (with their history events, built by `hub.registry.history` exactly as the
one-operator service does); `write` applies a plan with a few set-based statements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from hub.registry import history
from hub.registry.models import Operator, OperatorEvent, OperatorIdentifier
from hub.registry.service import RECORD_COLUMNS, OperatorData
from hub.sync import bulk

CHUNK = 2000
_OPERATOR: Table = Operator.__table__  # type: ignore[assignment]
_EVENT: Table = OperatorEvent.__table__  # type: ignore[assignment]
_IDENTIFIER: Table = OperatorIdentifier.__table__  # type: ignore[assignment]


@dataclass(slots=True)
class IndexEntry:
    operator_id: int
    fingerprint: str | None
    removed: bool


@dataclass
class ProgrammeIndex:
    programme_id: int
    by_key: dict[str, IndexEntry]
    by_fingerprint: dict[str, str]

    @classmethod
    def load(cls, session: Session, programme_id: int) -> ProgrammeIndex:
        by_key: dict[str, IndexEntry] = {}
        by_fp: dict[str, str] = {}
        rows = session.execute(
            select(Operator.id, Operator.stable_key, Operator.fingerprint, Operator.removed_at)
            .where(Operator.programme_id == programme_id)
        )
        for op_id, key, fp, removed_at in rows:
            by_key[key] = IndexEntry(op_id, fp, removed_at is not None)
            if fp and removed_at is None:
                by_fp[fp] = key
        return cls(programme_id, by_key, by_fp)

    def active_count(self) -> int:
        return sum(1 for e in self.by_key.values() if not e.removed)


@dataclass
class Update:
    operator_id: int
    data: OperatorData
    specs: list[history.EventSpec]
    last_effective: dt.date | None
    identifiers_changed: bool


@dataclass
class Plan:
    creates: list[OperatorData] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    # fingerprint-only changes: same facts, new source form
    refreshes: list[tuple[int, str | None]] = field(default_factory=list)
    removals: list[int] = field(default_factory=list)

    @property
    def status_changes(self) -> int:
        return sum(1 for u in self.updates
                   if any(s.kind in ("status_changed", "consent_changed") for s in u.specs))


def _current_rows(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    columns = [getattr(Operator, name) for name in RECORD_COLUMNS]
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        rows = session.execute(
            select(Operator.id, Operator.removed_at, Operator.last_effective, *columns)
            .where(Operator.id.in_(chunk))
        )
        for row in rows:
            values = dict(zip(RECORD_COLUMNS, row[3:], strict=True))
            values["listed"] = row[1] is None
            values["_last_effective"] = row[2]
            out[row[0]] = values
    return out


def _identifiers_of(session: Session, ids: Sequence[int]
                    ) -> dict[int, set[tuple[str, str, str, bool]]]:
    out: dict[int, set[tuple[str, str, str, bool]]] = {i: set() for i in ids}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        rows = session.execute(
            select(OperatorIdentifier.operator_id, OperatorIdentifier.scheme,
                   OperatorIdentifier.value, OperatorIdentifier.origin,
                   OperatorIdentifier.linked)
            .where(OperatorIdentifier.operator_id.in_(chunk))
        )
        for op_id, scheme, value, origin, linked in rows:
            out[op_id].add((scheme, value, origin, bool(linked)))
    return out


def plan(session: Session, index: ProgrammeIndex, records: Iterable[OperatorData],
         today: dt.date) -> Plan:
    """Sort records into creations and updates with their history events."""
    result = Plan()
    existing: list[tuple[int, OperatorData]] = []
    for data in records:
        entry = index.by_key.get(data.stable_key)
        if entry is None:
            result.creates.append(data)
        else:
            existing.append((entry.operator_id, data))
    if not existing:
        return result
    ids = [op_id for op_id, _ in existing]
    current = _current_rows(session, ids)
    idents = _identifiers_of(session, ids)
    for op_id, data in existing:
        values = current[op_id]
        specs = history.update_events(values, data.values, today)
        identifiers_changed = set(data.identifiers) != idents[op_id]
        other_changes = any(
            history._json_value(n, data.values.get(n)) != history._json_value(n, values.get(n))
            for n in ("trader_id", "warnings", "source_changed_at")
        )
        if specs or identifiers_changed or other_changes:
            last = values["_last_effective"]
            if specs:
                dates = [s.effective_date for s in specs] + ([last] if last else [])
                last = max(dates)
            result.updates.append(Update(op_id, data, specs, last, identifiers_changed))
        else:
            result.refreshes.append((op_id, data.values.get("fingerprint")))
    return result


# A creation's rows without what only its insert knows (the operator id and the time of
# the write): they can be built and encoded ahead of it (`prepare_creations`).
_OPERATOR_REST = ("programme_id", "stable_key", *RECORD_COLUMNS, "source", "removed_at",
                  "last_effective")
_EVENT_REST = ("kind", "effective_date", "changes", "previous", "source", "sync_run_id",
               "note")
_IDENTIFIER_REST = ("scheme", "value", "origin", "linked")
_OPERATOR_COLUMNS = ("id", "created_at", "updated_at", *_OPERATOR_REST)
_EVENT_COLUMNS = ("operator_id", "recorded_at", *_EVENT_REST)
_IDENTIFIER_COLUMNS = ("operator_id", *_IDENTIFIER_REST)


def _event_rows(op_id: int, specs: Iterable[history.EventSpec], now: dt.datetime,
                source: str | None, run_id: int | None) -> list[tuple[Any, ...]]:
    return [(op_id, now, s.kind, s.effective_date, s.changes, s.previous, source, run_id,
             None) for s in specs]


def _identifier_rows(op_id: int, data: OperatorData) -> list[tuple[Any, ...]]:
    return [(op_id, s, v, o, linked) for s, v, o, linked in data.identifiers]


@dataclass
class PreparedCreations:
    """Creations of one programme, built and encoded for their insert, less the operator
    ids and the write's time (`write_prepared` adds them). Each row starts with its
    creation's position in `keys`."""

    today: dt.date  # the day their events were built for
    run_id: int | None
    keys: list[str]
    operators: list[Sequence[Any]]
    events: list[Sequence[Any]]
    identifiers: list[Sequence[Any]]

    def plain(self) -> tuple[Any, ...]:
        """As a tuple of built-in values (for `marshal`, where the driver's forms are)."""
        return (self.today.isoformat(), self.run_id, self.keys, self.operators, self.events,
                self.identifiers)

    @classmethod
    def from_plain(cls, plain: Sequence[Any]) -> PreparedCreations:
        today, run_id, keys, operators, events, identifiers = plain
        return cls(dt.date.fromisoformat(today), run_id, keys, operators, events, identifiers)


def prepare_creations(dialect: Dialect, programme_id: int, creates: Sequence[OperatorData],
                      *, today: dt.date, source: str | None, run_id: int | None
                      ) -> PreparedCreations:
    """The rows `creates` insert, with their history events (`history.creation_events`),
    in the driver's form for `dialect`. A creation's dates and times may be given in their
    ISO form (as a snapshot stages them): they are stored and put into its events
    exactly as the date objects would be."""
    operators: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    identifiers: list[tuple[Any, ...]] = []
    for position, data in enumerate(creates):
        values = data.values
        specs = history.creation_events(values, today)
        last = specs[0].effective_date
        for spec in specs:
            last = max(last, spec.effective_date)
        operators.append((position, programme_id, data.stable_key,
                          *map(values.get, RECORD_COLUMNS), source, None, last))
        events.extend((position, s.kind, s.effective_date, s.changes, s.previous, source,
                       run_id, None) for s in specs)
        identifiers.extend((position, *identifier) for identifier in data.identifiers)
    return PreparedCreations(
        today, run_id, [data.stable_key for data in creates],
        _encoded(dialect, _OPERATOR, _OPERATOR_REST, operators),
        _encoded(dialect, _EVENT, _EVENT_REST, events),
        _encoded(dialect, _IDENTIFIER, _IDENTIFIER_REST, identifiers))


def _encoded(dialect: Dialect, table: Table, columns: Sequence[str],
             rows: list[tuple[Any, ...]]) -> list[Sequence[Any]]:
    """`rows` (a position, then `columns`) with the columns encoded for the driver."""
    encode = bulk.RowEncoder(dialect, table, columns, skip=1)
    return list(encode(rows))


def write_prepared(session: Session, prepared: PreparedCreations, *, now: dt.datetime
                   ) -> list[int]:
    """Insert prepared creations with new operator ids (returned, in `keys` order)."""
    if not prepared.keys:
        return []
    session.flush()
    connection = session.connection()
    ids = bulk.allocate_ids(connection, _OPERATOR, len(prepared.keys))
    created = _encoded_one(connection.dialect, _OPERATOR, "created_at", now)
    recorded = _encoded_one(connection.dialect, _EVENT, "recorded_at", now)
    bulk.BulkInsert(connection, _OPERATOR, _OPERATOR_COLUMNS)(
        [(ids[row[0]], created, created, *row[1:]) for row in prepared.operators],
        encoded=True)
    bulk.BulkInsert(connection, _IDENTIFIER, _IDENTIFIER_COLUMNS)(
        [(ids[row[0]], *row[1:]) for row in prepared.identifiers], encoded=True)
    bulk.BulkInsert(connection, _EVENT, _EVENT_COLUMNS)(
        [(ids[row[0]], recorded, *row[1:]) for row in prepared.events], encoded=True)
    return ids


def _encoded_one(dialect: Dialect, table: Table, column: str, value: Any) -> Any:
    return next(iter(bulk.RowEncoder(dialect, table, (column,))([(value,)])))[0]


def write(session: Session, index: ProgrammeIndex, the_plan: Plan, *, now: dt.datetime,
          source: str | None, run_id: int | None, track: bool = True) -> dict[str, int]:
    """Apply a plan; returns the counts it made. Keeps `index` current unless `track` is
    False (a snapshot switch, after which the index is not used again).

    A creation's dates and times may be given in their ISO form (as a snapshot stages
    them): they are stored and put into its events exactly as the date objects would be.
    """
    today = now.date()
    events: list[tuple[Any, ...]] = []
    identifier_rows: list[tuple[Any, ...]] = []
    session.flush()
    connection = session.connection()
    if the_plan.creates:
        prepared = prepare_creations(connection.dialect, index.programme_id,
                                     the_plan.creates, today=today, source=source,
                                     run_id=run_id)
        ids = write_prepared(session, prepared, now=now)
        if track:
            for op_id, data in zip(ids, the_plan.creates, strict=True):
                fp = data.values.get("fingerprint")
                index.by_key[data.stable_key] = IndexEntry(op_id, fp, False)
                if fp:
                    index.by_fingerprint[fp] = data.stable_key
    if the_plan.updates:
        update_rows = []
        replace_ids = []
        for upd in the_plan.updates:
            row = {**upd.data.values, "id": upd.operator_id, "removed_at": None,
                   "last_effective": upd.last_effective}
            if upd.specs:
                row["updated_at"] = now
            update_rows.append(row)
            events.extend(_event_rows(upd.operator_id, upd.specs, now, source, run_id))
            if upd.identifiers_changed:
                replace_ids.append(upd.operator_id)
                identifier_rows.extend(_identifier_rows(upd.operator_id, upd.data))
            if not track:
                continue
            fp = upd.data.values.get("fingerprint")
            entry = index.by_key[upd.data.stable_key]
            if entry.fingerprint and index.by_fingerprint.get(entry.fingerprint) == (
                    upd.data.stable_key):
                del index.by_fingerprint[entry.fingerprint]
            entry.fingerprint, entry.removed = fp, False
            if fp:
                index.by_fingerprint[fp] = upd.data.stable_key
        for start in range(0, len(update_rows), CHUNK):
            session.execute(update(Operator), update_rows[start:start + CHUNK])
        for start in range(0, len(replace_ids), CHUNK):
            session.execute(delete(OperatorIdentifier).where(
                OperatorIdentifier.operator_id.in_(replace_ids[start:start + CHUNK])))
    if the_plan.refreshes:
        session.execute(update(Operator), [{"id": op_id, "fingerprint": fp}
                                           for op_id, fp in the_plan.refreshes])
    if the_plan.removals:
        spec = history.removal_event(today)
        session.execute(update(Operator), [
            {"id": op_id, "removed_at": now, "updated_at": now, "last_effective": today}
            for op_id in the_plan.removals])
        for op_id in the_plan.removals:
            events.extend(_event_rows(op_id, [spec], now, source, run_id))
        removed = set(the_plan.removals) if track else set()
        for entry in index.by_key.values() if removed else ():
            if entry.operator_id in removed:
                entry.removed = True
                if entry.fingerprint:
                    index.by_fingerprint.pop(entry.fingerprint, None)
    insert_identifiers = bulk.BulkInsert(connection, _IDENTIFIER, _IDENTIFIER_COLUMNS)
    insert_events = bulk.BulkInsert(connection, _EVENT, _EVENT_COLUMNS)
    insert_identifiers(identifier_rows)
    insert_events(events)
    return {
        "created": len(the_plan.creates),
        "updated": len(the_plan.updates),
        "removed": len(the_plan.removals),
        "status_changes": the_plan.status_changes,
    }
