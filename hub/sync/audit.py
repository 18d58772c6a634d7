"""Audit entries for the sync's own events, one call per hook point.

Called from inside the sync's transactions (one line each), so that the entry commits or
rolls back with the change it records:

- `sync_outcome`: a run succeeded, failed, was held, was applied after confirmation, was
  discarded or abandoned (`hub.sync.engine`). Dry runs change nothing and are not audited.
- `connection_changed`: a connection was added, edited or removed (`hub.sync.connections`);
  its non-secret settings are recorded, secret fields only by name.
- `quarantine_decision`: a quarantined record was replayed or dismissed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.audit import current_actor, record
from hub.audit.models import AuditEntry
from hub.sync.models import Connection, QuarantinedRecord, SyncRun

SYSTEM_TRIGGERS = ("schedule", "notify")


def sync_outcome(session: Session, run_id: int | None, outcome: str, *,
                 trigger: str = "manual") -> AuditEntry | None:
    """`sync.succeeded|failed|held|confirmed|discarded` for run `run_id`."""
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


def _connection_settings(connection: Connection, config: dict[str, Any]) -> dict[str, Any]:
    return {"name": connection.name, "type": connection.connector_type,
            "programmes": list(connection.programmes), "config": config,
            "schedule": connection.schedule, "enabled": connection.enabled,
            "staleness_seconds": connection.staleness_seconds,
            "max_removal_share": connection.max_removal_share,
            "max_change_share": connection.max_change_share}


def connection_changed(session: Session, connection: Connection, change: str,
                       config: dict[str, Any]) -> AuditEntry:
    """`connection.added|edited|removed`, with the connection's settings after the change
    (`config`: its connector settings as shown, secrets by name only)."""
    return record(session, f"connection.{change}", actor=current_actor(),
                  subject=f"connection:{connection.id}",
                  administrations=[connection.administration.code],
                  details=_connection_settings(connection, config))


def quarantine_decision(session: Session, row: QuarantinedRecord, decision: str,
                        actor: str | None = None) -> AuditEntry:
    """`quarantine.replayed|dismissed` for a quarantined record."""
    connection = session.get(Connection, row.connection_id)
    details: dict[str, Any] = {"record": row.id, "programme": row.programme,
                               "stable_key": row.stable_key, "run": row.run_id,
                               "resolved_by": row.resolved_by}
    if row.resolution_note:
        details["note"] = row.resolution_note
    return record(session, f"quarantine.{decision}", actor=current_actor(actor),
                  subject=f"quarantined_record:{row.id}",
                  administrations=[connection.administration.code] if connection else (),
                  details=details)
