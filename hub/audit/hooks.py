"""Audit entries for the hub's own domain events, one call per hook point.

The domain modules call these from inside their transactions (one line each), so the
entry commits or rolls back with the change:

- `sync_outcome`: a run succeeded, failed, was held, was applied after confirmation, or
  was discarded (`hub.sync.engine`). Dry runs change nothing and are not audited.
- `connection_changed`: a connection was added, edited or removed (`hub.sync.connections`);
  its non-secret settings are recorded, secret fields only by name.
- `quarantine_decision`: a quarantined record was replayed or dismissed.
- `arrangement_status_changed`, `reference_loaded`: `hub.arrangements.service`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from hub.audit.actors import current_actor
from hub.audit.models import AuditEntry
from hub.audit.service import record

if TYPE_CHECKING:
    from hub.arrangements.models import Arrangement, ArrangementStatusChange
    from hub.sync.models import Connection, QuarantinedRecord

SYSTEM_TRIGGERS = ("schedule", "notify")
REFERENCE_CHANGES_KEPT = 200


def sync_outcome(session: Session, run_id: int | None, outcome: str, *,
                 trigger: str = "manual") -> AuditEntry | None:
    """`sync.succeeded|failed|held|confirmed|discarded` for run `run_id`."""
    from hub.sync.models import SyncRun

    run = session.get(SyncRun, run_id) if run_id is not None else None
    if run is None or run.dry_run:
        return None
    if outcome == "succeeded" and run.held_reason:
        outcome = "confirmed"  # a held run applied by hand
    connection = run.connection
    actor = ("system" if trigger in SYSTEM_TRIGGERS and outcome not in ("confirmed", "discarded")
             else current_actor())
    details: dict[str, Any] = {"run": run.id, "connection": connection.name,
                               "trigger": run.trigger, "snapshot": run.snapshot,
                               "counts": dict(run.counts or {})}
    if run.held_reason:
        details["held_reason"] = run.held_reason
    if run.error:
        details["error"] = run.error
    return record(session, f"sync.{outcome}", actor=actor, subject=f"sync_run:{run.id}",
                  administrations=[connection.administration.code], details=details)


def _connection_settings(connection: Connection) -> dict[str, Any]:
    from hub.sync.connections import shown_config

    return {"name": connection.name, "type": connection.connector_type,
            "programmes": list(connection.programmes), "config": shown_config(connection),
            "schedule": connection.schedule, "enabled": connection.enabled,
            "staleness_seconds": connection.staleness_seconds,
            "max_removal_share": connection.max_removal_share,
            "max_change_share": connection.max_change_share}


def connection_changed(session: Session, connection: Connection, change: str) -> AuditEntry:
    """`connection.added|edited|removed`, with the connection's settings after the change."""
    return record(session, f"connection.{change}", actor=current_actor(),
                  subject=f"connection:{connection.id}",
                  administrations=[connection.administration.code],
                  details=_connection_settings(connection))


def quarantine_decision(session: Session, row: QuarantinedRecord, decision: str,
                        actor: str | None = None) -> AuditEntry:
    """`quarantine.replayed|dismissed` for a quarantined record."""
    from hub.sync.models import Connection

    connection = session.get(Connection, row.connection_id)
    details: dict[str, Any] = {"record": row.id, "programme": row.programme,
                               "stable_key": row.stable_key, "run": row.run_id,
                               "resolved_by": row.resolved_by}
    if row.resolution_note:
        details["note"] = row.resolution_note
    return record(session, f"quarantine.{decision}", actor=_actor(actor),
                  subject=f"quarantined_record:{row.id}",
                  administrations=[connection.administration.code] if connection else (),
                  details=details)


_STATUS_ACTIONS = {"suspended": "suspended", "in_force": "resumed", "terminated": "terminated"}


def arrangement_status_changed(session: Session, arrangement: Arrangement,
                               change: ArrangementStatusChange, previous: str | None,
                               actor: str | None = None) -> AuditEntry:
    """`arrangement.suspended|resumed|terminated`, for every party's administration."""
    codes = {p.programme.administration.code for p in arrangement.parties
             if p.programme is not None}
    return record(session, f"arrangement.{_STATUS_ACTIONS.get(change.status, change.status)}",
                  actor=_actor(actor), subject=f"arrangement:{arrangement.code}",
                  administrations=codes,
                  details={"arrangement": arrangement.code, "status": change.status,
                           "effective_date": change.effective_date, "previous": previous,
                           "note": change.note})


def reference_loaded(session: Session, report: Any, source: str) -> AuditEntry:
    """`reference.loaded` when a reference-data load changed something."""
    changes = list(report.changes)
    return record(session, "reference.loaded", actor=current_actor(), subject="reference",
                  details={"source": source, "created": dict(report.created),
                           "updated": dict(report.updated),
                           "changes": changes[:REFERENCE_CHANGES_KEPT],
                           "changes_total": len(changes)})


def _actor(given: str | None) -> str:
    """A service's own actor argument when it names someone, else the current actor."""
    return given or current_actor()
