"""Quarantine review: list, show, replay after a fix, dismiss.

Replaying re-validates the stored record (optionally corrected field by field) and, when
it now passes, applies it through the same diff and history path as a sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.audit import hooks as audit_hooks
from hub.db import utcnow
from hub.errors import InvalidInput, NotFound
from hub.registry.models import Programme
from hub.sync import apply
from hub.sync.models import QuarantinedRecord
from hub.sync.validate import Rejection, validate_record


def get(session: Session, record_id: int) -> QuarantinedRecord:
    row = session.get(QuarantinedRecord, record_id)
    if row is None:
        raise NotFound(f"no quarantined record {record_id}", fields={"id": "unknown"})
    return row


def list_open(session: Session, connection_id: int | None = None, *, status: str = "open",
              limit: int = 100) -> list[QuarantinedRecord]:
    query = select(QuarantinedRecord).where(QuarantinedRecord.status == status)
    if connection_id is not None:
        query = query.where(QuarantinedRecord.connection_id == connection_id)
    return list(session.scalars(query.order_by(QuarantinedRecord.id).limit(limit)))


def replay(session: Session, record_id: int, corrections: Mapping[str, Any] | None = None,
           *, actor: str = "cli") -> QuarantinedRecord:
    """Validate the record again (with corrections) and apply it when it passes."""
    from hub.sync.engine import rules_for

    row = get(session, record_id)
    if row.status != "open":
        raise InvalidInput(f"quarantined record {record_id} is {row.status}",
                           fields={"id": row.status})
    programme = session.scalar(select(Programme).where(Programme.code == row.programme))
    if programme is None:
        raise InvalidInput(f"record {record_id} names no known programme",
                           fields={"programme": "unknown"})
    raw = {**row.record, **dict(corrections or {})}
    raw["problems"] = [] if corrections else raw.get("problems", [])
    raw["fingerprint"] = None  # the source form is no longer what was read
    result = validate_record(raw, rules_for(programme))
    if isinstance(result, Rejection):
        raise InvalidInput(
            f"record {record_id} still fails: "
            + "; ".join(f"{r['field']}: {r['reason']}" for r in result.reasons),
            fields={r["field"]: r["reason"] for r in result.reasons})
    now = utcnow()
    index = apply.ProgrammeIndex.load(session, programme.id)
    the_plan = apply.plan(session, index, [result], now.date())
    apply.write(session, index, the_plan, now=now, source=f"quarantine:{record_id}",
                run_id=row.run_id)
    row.record = raw
    row.status = "replayed"
    row.resolved_at = now
    row.resolved_by = actor
    audit_hooks.quarantine_decision(session, row, "replayed", actor)
    return row


def dismiss(session: Session, record_id: int, *, note: str | None = None,
            actor: str = "cli") -> QuarantinedRecord:
    row = get(session, record_id)
    if row.status != "open":
        raise InvalidInput(f"quarantined record {record_id} is {row.status}",
                           fields={"id": row.status})
    row.status = "dismissed"
    row.resolved_at = utcnow()
    row.resolved_by = actor
    row.resolution_note = note
    audit_hooks.quarantine_decision(session, row, "dismissed", actor)
    return row
