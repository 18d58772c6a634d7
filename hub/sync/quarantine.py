"""Quarantine review: list, show, replay after a fix, dismiss.

Replaying re-validates the stored record (optionally corrected field by field) and, when
it now passes, applies it through the same diff and history path as a sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import CanonicalRecord
from connectors.formats import DateParser, parse_categories, parse_identifiers
from hub import clock
from hub.audit import current_actor
from hub.db import transactional
from hub.errors import InvalidInput, NotFound
from hub.registry.models import Programme
from hub.sync import audit as audit_hooks
from hub.sync import engine, merge
from hub.sync.models import Connection, QuarantinedRecord, SyncRun
from hub.sync.validate import (
    ProgrammeRules,
    Rejection,
    record_from_dict,
    record_to_dict,
    validate,
)


def get(session: Session, record_id: int) -> QuarantinedRecord:
    row = session.get(QuarantinedRecord, record_id)
    if row is None:
        raise NotFound(f"no quarantined record {record_id}", fields={"id": "unknown"})
    return row


STATUSES = ("open", "resolved", "replayed", "dismissed")
#: The longest note a dismissal keeps (the admin API's schema documents the same).
NOTE_MAX_LENGTH = 2000


def list_page(session: Session, *, connection_id: int | None = None, status: str = "open",
              administration_id: int | None = None, after: int | None = None,
              limit: int = 100) -> tuple[list[tuple[QuarantinedRecord, str]], int | None]:
    """Quarantined records with their connection's name, oldest first, at most `limit`
    after the entry `after`; with the id to continue after (None: the list is done).
    `administration_id` limits it to one administration's connections."""
    if status not in STATUSES:
        raise InvalidInput(f"status {status!r} is not one of {', '.join(STATUSES)}",
                           fields={"status": "unknown"})
    query = (select(QuarantinedRecord, Connection.name)
             .join(Connection, Connection.id == QuarantinedRecord.connection_id)
             .where(QuarantinedRecord.status == status)
             .order_by(QuarantinedRecord.id).limit(limit + 1))
    if administration_id is not None:
        query = query.where(Connection.administration_id == administration_id)
    if connection_id is not None:
        query = query.where(QuarantinedRecord.connection_id == connection_id)
    if after is not None:
        query = query.where(QuarantinedRecord.id > after)
    rows = [(row, str(name)) for row, name in session.execute(query)]
    page = rows[:limit]
    return page, (page[-1][0].id if len(rows) > limit else None)


#: The fields a correction may set: a record's own (not the connector's bookkeeping).
CORRECTABLE = frozenset(CanonicalRecord.__slots__) - {"fingerprint", "position", "problems"}


def corrected(corrections: Mapping[str, Any]) -> dict[str, Any]:
    """Corrections in a stored record's form. `categories` and `identifiers` may be given
    as a feed writes them (`AEOC:valid:2019-01-01|AEOS:valid:2019-01-01`,
    `EORI:DE123:linked`), read by the connectors' own parser, or as lists of objects;
    an unknown field, or a list that does not parse, is refused."""
    unknown = sorted(set(corrections) - CORRECTABLE)
    if unknown:
        raise InvalidInput(
            f"{', '.join(map(repr, unknown))}: not a field of a record (fields: "
            f"{', '.join(sorted(CORRECTABLE))})",
            fields=dict.fromkeys(unknown, "not a field of a record"))
    out = dict(corrections)
    for name, parse in (("categories", _categories), ("identifiers", _identifiers)):
        value = out.get(name)
        if isinstance(value, str):
            problems: list[str] = []
            out[name] = parse(value, problems)
            if problems:
                raise InvalidInput(f"{name}: {'; '.join(problems)}", fields={name: problems})
        elif name in out and not (value is None or (isinstance(value, list) and all(
                isinstance(item, Mapping) for item in value))):
            raise InvalidInput(f"{name}: expected text such as the feed's, or a list of "
                               "objects", fields={name: "invalid"})
    return out


def _categories(text: str, problems: list[str]) -> list[dict[str, Any]]:
    entries = parse_categories(text, DateParser(), None, problems)
    return list(record_to_dict(CanonicalRecord(categories=entries))["categories"])


def _identifiers(text: str, problems: list[str]) -> list[dict[str, Any]]:
    entries = parse_identifiers(text, None, problems)
    return list(record_to_dict(CanonicalRecord(identifiers=entries))["identifiers"])


@transactional
def replay(session: Session, record_id: int, corrections: Mapping[str, Any] | None = None,
           *, actor: str | None = None) -> QuarantinedRecord:
    """Validate the record again (with corrections) and, when it passes, stage and merge
    it through the sync's own path (`hub.sync.merge`), as a run of its own (`replay`)."""
    row = get(session, record_id)
    if row.status not in ("open", "dismissed"):
        raise InvalidInput(f"quarantined record {record_id} is {row.status}",
                           fields={"id": row.status})
    programme = session.scalar(select(Programme).where(Programme.code == row.programme))
    connection = session.get(Connection, row.connection_id)
    assert connection is not None  # (an entry goes with its connection)
    if programme is None or programme.code not in connection.programmes:
        raise InvalidInput(f"record {record_id} names no programme of connection "
                           f"{connection.name} ({', '.join(connection.programmes)})",
                           fields={"programme": "not a programme of the connection"})
    raw = {**row.record, **corrected(corrections or {})}
    if corrections:  # the connector's findings were about the record as read
        raw["problems"] = []
    raw["fingerprint"] = ""  # the source form is no longer what was read
    # as a run of its connection would: the same validation and the same scope
    scope = merge.Scope((programme.id,), tuple(connection.scope_countries or ()))
    result = engine.in_scope(validate(record_from_dict(raw), ProgrammeRules.of(programme)),
                             scope)
    if isinstance(result, Rejection):
        raise InvalidInput(
            f"record {record_id} still fails: "
            + "; ".join(f"{r['field']}: {r['reason']}" for r in result.reasons),
            fields={r["field"]: r["reason"] for r in result.reasons})
    now = clock.now()
    run = SyncRun(connection_id=row.connection_id, trigger="replay", status="running",
                  started_at=now, counts={})
    session.add(run)
    session.flush()
    current = engine.current_rows(session, programme.id, [result.stable_key])
    item = engine.plan_item(result, row.position, current, now.date())
    events: list[dict[str, Any]] = []
    identifiers: list[dict[str, Any]] = []
    staged = engine.staged_row(run.id, 1, programme.id, item, now.date(), events, identifiers)
    merge.stage(session, [staged], events, identifiers)
    diff = merge.difference(session, run.id, scope, snapshot=False)
    merge.merge(session, run.id, scope, diff, snapshot=False, now=now,
                source=f"quarantine:{record_id}")
    merge.drop_staged(session, run.id)
    run.status, run.finished_at = "succeeded", now
    run.counts = {"read": 1, "created": int(item.action == "create"),
                  "updated": int(item.action == "update"),
                  "unchanged": int(item.action == "same")}
    row.record = raw
    row.status = "replayed"
    row.resolved_at = now
    row.resolved_by = actor = current_actor(actor)
    audit_hooks.quarantine_decision(session, row, "replayed", actor)
    return row


@transactional
def dismiss(session: Session, record_id: int, *, note: str | None = None,
            actor: str | None = None) -> QuarantinedRecord:
    if note is not None and len(note) > NOTE_MAX_LENGTH:
        raise InvalidInput(f"the note has {len(note):,} characters; at most "
                           f"{NOTE_MAX_LENGTH:,} are kept", fields={"note": "too long"})
    row = get(session, record_id)
    if row.status != "open":
        raise InvalidInput(f"quarantined record {record_id} is {row.status}",
                           fields={"id": row.status})
    row.status = "dismissed"
    row.resolved_at = clock.now()
    row.resolved_by = actor = current_actor(actor)
    row.resolution_note = note
    audit_hooks.quarantine_decision(session, row, "dismissed", actor)
    return row
