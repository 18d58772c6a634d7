"""Admin API services for the sync engine: connections, runs and quarantine.

Who may act on what: a client with the `admin` scope acts on every connection; a client
with `node:admin` only on the connections of its own administration (that of the
programme it acts for). Anything outside a client's reach answers 404, as if it did not
exist, so that one administration cannot even learn the names of another's connections.

Secrets are write-only: responses carry the connection's config with secret fields
masked (`hub.sync.connections.shown_config`) and never the stored values.

Triggering a sync does not run it here: it sets `Connection.notify_requested_at`, which
the scheduler process polls and turns into a run (notifications arriving during a run
coalesce into one follow-up run). Confirming a held run does run inside the request:
`hub.sync.engine.confirm` applies what the run staged under the connection's lease (409
while a sync holds it), in one transaction, so an interrupted request leaves the run held
and the registry unchanged; it is a rare, deliberate operator action, and the scheduler
has no queue of confirmations to hand it to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.auth.service import Principal
from hub.db import Database, utcnow
from hub.errors import Conflict, Forbidden, NotFound
from hub.registry.models import Programme
from hub.sync import connections as conns
from hub.sync import engine, quarantine
from hub.sync.cli import connection_summary, run_summary
from hub.sync.models import Connection, QuarantinedRecord, SyncRun


def actor_of(principal: Principal) -> str:
    """How the audit trail names an API caller."""
    return f"client:{principal.client_id}"


def _reach(principal: Principal) -> int | None:
    """The administration a principal is limited to (None: every administration)."""
    if principal.is_admin:
        return None
    if principal.administration_id is None:
        # A node:admin client without an administration administers nothing.
        return -1
    return principal.administration_id


# --- connections -----------------------------------------------------------------------


def connection_dict(connection: Connection) -> dict[str, Any]:
    """A connection as the API shows it (secret fields masked, never their values)."""
    return {
        **connection_summary(connection),
        "max_removal_share": connection.max_removal_share,
        "max_change_share": connection.max_change_share,
        "staleness_seconds": connection.staleness_seconds,
        "last_run_at": _iso(connection.last_run_at),
        "last_failure_at": _iso(connection.last_failure_at),
        "sync_requested_at": _iso(connection.notify_requested_at),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def list_connections(session: Session, principal: Principal) -> list[Connection]:
    query = select(Connection).order_by(Connection.name)
    reach = _reach(principal)
    if reach is not None:
        query = query.where(Connection.administration_id == reach)
    return list(session.scalars(query))


def get_connection(session: Session, principal: Principal, connection_id: int) -> Connection:
    """The connection if the principal may act on it; 404 otherwise."""
    connection = session.get(Connection, connection_id)
    reach = _reach(principal)
    if connection is None or (reach is not None and connection.administration_id != reach):
        raise NotFound(f"no connection {connection_id}", fields={"id": "unknown"})
    return connection


def _check_programmes(session: Session, principal: Principal, codes: list[str]) -> None:
    reach = _reach(principal)
    if reach is None:
        return
    foreign = sorted(code for code, admin in session.execute(
        select(Programme.code, Programme.administration_id).where(Programme.code.in_(codes)))
        if admin != reach)
    if foreign:
        raise Forbidden(f"programme(s) {', '.join(foreign)} belong to another administration",
                        fields={"programmes": f"not yours: {', '.join(foreign)}"})


def create_connection(session: Session, settings: conns.SyncSettings, principal: Principal,
                      payload: Mapping[str, Any]) -> Connection:
    """Add a connection (config validated by its connector); the caller commits."""
    _check_programmes(session, principal, list(payload["programmes"]))
    connection = conns.add_connection(
        session, settings, name=payload["name"], connector_type=payload["type"],
        programmes=list(payload["programmes"]), config=payload["config"],
        schedule=payload["schedule"], staleness_seconds=payload.get("staleness_seconds"),
        enabled=payload.get("enabled", True))
    for attr in ("max_removal_share", "max_change_share"):
        if payload.get(attr) is not None:
            setattr(connection, attr, payload[attr])
    session.flush()
    return connection


def edit_connection(session: Session, settings: conns.SyncSettings, principal: Principal,
                    connection_id: int, payload: Mapping[str, Any]) -> Connection:
    """Change a connection; `config` is merged into the stored one and validated again."""
    connection = get_connection(session, principal, connection_id)
    return conns.edit_connection(
        session, settings, connection, config=payload.get("config"),
        schedule=payload.get("schedule"), enabled=payload.get("enabled"),
        staleness_seconds=payload.get("staleness_seconds"),
        max_removal_share=payload.get("max_removal_share"),
        max_change_share=payload.get("max_change_share"))


def request_sync(session: Session, principal: Principal, connection_id: int
                 ) -> dict[str, Any]:
    """Ask the scheduler to sync now (coalesced with a pending request); the caller commits."""
    connection = get_connection(session, principal, connection_id)
    if not connection.enabled:
        raise Conflict(f"connection {connection.name} is disabled: enable it first",
                       fields={"enabled": "false"})
    if connection.notify_requested_at is None:
        connection.notify_requested_at = utcnow()
    return {"connection_id": connection.id, "status": "requested",
            "requested_at": connection.notify_requested_at.isoformat()}


# --- runs ------------------------------------------------------------------------------


def run_dict(run: SyncRun, connection_name: str) -> dict[str, Any]:
    return {**run_summary(run), "connection": connection_name,
            "scheduled_for": _iso(run.scheduled_for), "snapshot": run.snapshot,
            "status_changes": int((run.counts or {}).get("status_changes", 0))}


def list_runs(session: Session, principal: Principal, *, connection_id: int | None = None,
              status: str | None = None, before: int | None = None, limit: int = 50
              ) -> dict[str, Any]:
    """Runs, newest first; `next_before` continues the list."""
    query = (select(SyncRun, Connection.name).join(Connection,
                                                   Connection.id == SyncRun.connection_id)
             .order_by(SyncRun.id.desc()).limit(limit + 1))
    reach = _reach(principal)
    if reach is not None:
        query = query.where(Connection.administration_id == reach)
    if connection_id is not None:
        query = query.where(SyncRun.connection_id == connection_id)
    if status:
        query = query.where(SyncRun.status == status)
    if before is not None:
        query = query.where(SyncRun.id < before)
    rows = session.execute(query).all()
    page = rows[:limit]
    return {"runs": [run_dict(run, name) for run, name in page],
            "next_before": page[-1][0].id if len(rows) > limit else None}


def get_run(session: Session, principal: Principal, run_id: int) -> SyncRun:
    run = session.get(SyncRun, run_id)
    if run is not None:
        try:
            get_connection(session, principal, run.connection_id)
        except NotFound:
            run = None
    if run is None:
        raise NotFound(f"no sync run {run_id}", fields={"id": "unknown"})
    return run


def run_detail(session: Session, principal: Principal, run_id: int) -> dict[str, Any]:
    run = get_run(session, principal, run_id)
    return run_dict(run, run.connection.name)


def decide_run(database: Database, settings: conns.SyncSettings, session: Session,
               principal: Principal, run_id: int, decision: str) -> dict[str, Any]:
    """Confirm (apply what the run staged) or discard a held run."""
    run = get_run(session, principal, run_id)
    name = run.connection.name
    # The engine works in its own transactions: end the request's read first.
    session.rollback()
    if decision == "confirm":
        done = engine.confirm(database, settings, run_id)
    else:
        done = engine.discard(database, run_id)
    return run_dict(done, name)


# --- quarantine ------------------------------------------------------------------------


def quarantine_dict(row: QuarantinedRecord, connection_name: str, *, full: bool = False
                    ) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "connection_id": row.connection_id, "connection": connection_name,
        "run_id": row.run_id, "programme": row.programme, "stable_key": row.stable_key,
        "position": row.position, "reasons": list(row.reasons or []), "status": row.status,
        "created_at": row.created_at.isoformat(), "resolved_at": _iso(row.resolved_at),
        "resolved_by": row.resolved_by, "resolution_note": row.resolution_note,
    }
    if full:
        out["record"] = dict(row.record or {})
    return out


def list_quarantine(session: Session, principal: Principal, *,
                    connection_id: int | None = None, status: str = "open",
                    after: int | None = None, limit: int = 100) -> dict[str, Any]:
    """Quarantined records, oldest first; `next_after` continues the list."""
    query = (select(QuarantinedRecord, Connection.name)
             .join(Connection, Connection.id == QuarantinedRecord.connection_id)
             .where(QuarantinedRecord.status == status)
             .order_by(QuarantinedRecord.id).limit(limit + 1))
    reach = _reach(principal)
    if reach is not None:
        query = query.where(Connection.administration_id == reach)
    if connection_id is not None:
        query = query.where(QuarantinedRecord.connection_id == connection_id)
    if after is not None:
        query = query.where(QuarantinedRecord.id > after)
    rows = session.execute(query).all()
    page = rows[:limit]
    return {"records": [quarantine_dict(row, name) for row, name in page],
            "next_after": page[-1][0].id if len(rows) > limit else None}


def get_quarantined(session: Session, principal: Principal, record_id: int
                    ) -> tuple[QuarantinedRecord, Connection]:
    row = session.get(QuarantinedRecord, record_id)
    connection = None
    if row is not None:
        try:
            connection = get_connection(session, principal, row.connection_id)
        except NotFound:
            row = None
    if row is None or connection is None:
        raise NotFound(f"no quarantined record {record_id}", fields={"id": "unknown"})
    return row, connection


def quarantine_detail(session: Session, principal: Principal, record_id: int
                      ) -> dict[str, Any]:
    row, connection = get_quarantined(session, principal, record_id)
    return quarantine_dict(row, connection.name, full=True)


def replay_quarantined(session: Session, principal: Principal, record_id: int,
                       corrections: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate the record again (with corrections) and apply it; the caller commits."""
    _row, connection = get_quarantined(session, principal, record_id)
    row = quarantine.replay(session, record_id, corrections, actor=actor_of(principal))
    return quarantine_dict(row, connection.name, full=True)


def dismiss_quarantined(session: Session, principal: Principal, record_id: int,
                        note: str | None) -> dict[str, Any]:
    _row, connection = get_quarantined(session, principal, record_id)
    row = quarantine.dismiss(session, record_id, note=note, actor=actor_of(principal))
    return quarantine_dict(row, connection.name, full=True)
