"""Sync administration services: connections, runs, differences and quarantine.

The CLI, the admin API and the dashboard call these. For the admin API:

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

from connectors.catalogue import available_connectors
from hub import clock
from hub.auth.service import Principal
from hub.db import Database, transactional
from hub.errors import Conflict, Forbidden, InvalidInput, NotFound
from hub.jsonio import iso
from hub.registry.models import Operator, OperatorEvent, Programme
from hub.sync import connections as conns
from hub.sync import engine, merge, quarantine
from hub.sync.models import Connection, QuarantinedRecord, StagedRecord, SyncRun

#: What a difference lists: the operators a run creates, updates or removes (or would),
#: and the records it rejected.
DIFFERENCE_KINDS = ("create", "update", "remove", "rejected")


def connection_summary(connection: Connection) -> dict[str, Any]:
    age = conns.feed_age(connection)
    return {
        "id": connection.id, "name": connection.name, "type": connection.connector_type,
        "administration": connection.administration.code,
        "programmes": connection.programmes, "schedule": connection.schedule,
        "snapshot_schedule": connection.snapshot_schedule,
        "scope_countries": list(connection.scope_countries or []),
        "enabled": connection.enabled,
        "last_success_at": connection.last_success_at.isoformat()
        if connection.last_success_at else None,
        "feed_age_seconds": round(age) if age is not None else None,
        "stale": conns.is_stale(connection),
        "consecutive_failures": connection.consecutive_failures,
        "config": conns.shown_config(connection),
    }


def applied(run: SyncRun) -> bool:
    """Whether a run's counts happened (False: what it would do: a dry run, a held one,
    or one discarded or superseded while held). A failed incremental run counts the
    pages it committed; a failed snapshot applied nothing and counts nothing."""
    return not run.dry_run and run.status not in ("needs_confirmation", "discarded",
                                                   "superseded")


def run_summary(run: SyncRun) -> dict[str, Any]:
    counts = {name: int((run.counts or {}).get(name, 0)) for name in engine.COUNT_NAMES}
    return {"id": run.id, "connection_id": run.connection_id, "trigger": run.trigger,
            "status": run.status, "dry_run": run.dry_run, "applied": applied(run),
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "held_reason": run.held_reason, "error": run.error,
            "stopped_by_guard": run.stopped_by_guard, **counts,
            # source columns holding data that no setting reads (the connector's report)
            "unread": list((run.staged_state or {}).get("unread") or [])}


def counts_text(summary: dict[str, Any]) -> str:
    """A run's counts in words: what happened, or what would (held and dry runs)."""
    verbs = (("created", "create"), ("updated", "update"), ("removed", "remove"))
    parts = [f"read {summary['read']:,}"]
    for done, would in verbs:
        parts.append(f"{done} {summary[done]:,}" if summary["applied"]
                     else f"would {would} {summary[done]:,}")
    parts += [f"unchanged {summary['unchanged']:,}", f"quarantined {summary['quarantined']:,}"]
    return ", ".join(parts)


def _scope(session: Session, connection: Connection) -> merge.Scope:
    ids = session.scalars(select(Programme.id).where(
        Programme.code.in_(list(connection.programmes)))).all()
    return merge.Scope(tuple(ids), tuple(connection.scope_countries or ()))


def difference(session: Session, run: SyncRun, kind: str, *, after: str | None = None,
               limit: int = 100) -> dict[str, Any]:
    """The operators a run creates, updates or removes (a held or dry run: would), or
    the records it rejected, in stable-key order; `next_after` continues the list."""
    if kind not in DIFFERENCE_KINDS:
        raise InvalidInput(f"kind {kind!r} is not one of {', '.join(DIFFERENCE_KINDS)}",
                           fields={"kind": "unknown"})
    limit = max(1, min(limit, 1000))
    staged = session.scalar(select(StagedRecord.run_id).where(
        StagedRecord.run_id == run.id).limit(1)) is not None
    if kind == "rejected" and run.dry_run:
        raise Conflict(f"run {run.id} is a dry run: it counts the records it would refuse "
                       "but quarantines none; `aeohub connectors check` lists the problems "
                       "of a sample", fields={"kind": "not kept for a dry run"})
    if kind != "rejected" and not staged and not applied(run):
        raise Conflict(f"run {run.id} is {'a dry run' if run.dry_run else run.status} and "
                       "its staged rows are gone (deleted when it ended, or when a later "
                       "run of its connection started): what it would have done is no "
                       "longer known", fields={"kind": "no longer known"})
    items: list[dict[str, Any]]
    if kind == "rejected":
        query: Any = select(QuarantinedRecord).where(QuarantinedRecord.run_id == run.id)
        if after:
            query = query.where(QuarantinedRecord.record_key > after)
        rows = session.scalars(query.order_by(QuarantinedRecord.record_key)
                               .limit(limit + 1)).all()
        items = [{"key": r.record_key, "stable_key": r.stable_key,
                  "operator_id": r.operator_id, "position": r.position,
                  "reason": (r.reasons or [{}])[0]} for r in rows]
    elif staged and kind in ("create", "update"):
        query = select(StagedRecord).where(StagedRecord.run_id == run.id,
                                           StagedRecord.action == kind)
        if after:
            query = query.where(StagedRecord.stable_key > after)
        found = session.scalars(query.order_by(StagedRecord.stable_key).limit(limit + 1))
        items = [{"key": r.stable_key, "stable_key": r.stable_key,
                  "legal_name": r.legal_name, "country": r.country, "status": r.status,
                  "position": r.position} for r in found]
    elif staged:  # remove
        query = select(Operator).where(merge.removal_condition(
            run.id, _scope(session, run.connection), snapshot=run.snapshot))
        if after:
            query = query.where(Operator.stable_key > after)
        found_ops = session.scalars(query.order_by(Operator.stable_key).limit(limit + 1))
        items = [{"key": o.stable_key, "stable_key": o.stable_key, "operator_id": o.id,
                  "legal_name": o.legal_name, "country": o.country, "status": o.status}
                 for o in found_ops]
    else:  # an applied run: its events say what it did
        kinds = {"create": ["created"], "remove": ["removed"]}.get(kind)
        event_kind = (OperatorEvent.kind.in_(kinds) if kinds
                      else OperatorEvent.kind.not_in(["created", "removed"]))
        query = (select(Operator.stable_key, Operator.id, Operator.legal_name,
                        Operator.country, Operator.status).distinct()
                 .join(OperatorEvent, OperatorEvent.operator_id == Operator.id)
                 .where(OperatorEvent.sync_run_id == run.id, event_kind))
        if after:
            query = query.where(Operator.stable_key > after)
        items = [{"key": key, "stable_key": key, "operator_id": op_id, "legal_name": name,
                  "country": country, "status": status}
                 for key, op_id, name, country, status in session.execute(
                     query.order_by(Operator.stable_key).limit(limit + 1))]
    page = items[:limit]
    return {"run": run.id, "kind": kind, "applied": applied(run), "items": page,
            "next_after": page[-1]["key"] if len(items) > limit else None}


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
        "max_quarantine_share": connection.max_quarantine_share,
        "max_quarantined": connection.max_quarantined,
        "staleness_seconds": connection.staleness_seconds,
        "last_run_at": iso(connection.last_run_at),
        "last_failure_at": iso(connection.last_failure_at),
        "retry_after": iso(conns.backoff_until(connection)),
        "sync_requested_at": iso(connection.notify_requested_at),
    }



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


def _check_connector(principal: Principal, connector_type: str) -> None:
    """Connectors whose configuration reaches far (a database query) are for the hub's
    administrators only."""
    cls = available_connectors().get(connector_type)
    if cls is not None and cls.hub_admin_only and not principal.is_admin:
        raise Forbidden(f"only the hub's administrators may configure {connector_type} "
                        "connections", fields={"type": "hub administrators only"})


@transactional
def create_connection(session: Session, settings: conns.SyncSettings, principal: Principal,
                      payload: Mapping[str, Any]) -> Connection:
    """Add a connection (config validated by its connector)."""
    _check_programmes(session, principal, list(payload["programmes"]))
    _check_connector(principal, str(payload["type"]))
    connection = conns.add_connection(
        session, settings, name=payload["name"], connector_type=payload["type"],
        programmes=list(payload["programmes"]), config=payload["config"],
        schedule=payload["schedule"], staleness_seconds=payload.get("staleness_seconds"),
        enabled=payload.get("enabled", True), scope_countries=payload.get("scope_countries"),
        snapshot_schedule=payload.get("snapshot_schedule"),
        **{attr: payload.get(attr) for attr in ("max_removal_share", "max_change_share",
                                                 "max_quarantine_share", "max_quarantined")})
    session.flush()
    return connection


@transactional
def edit_connection(session: Session, settings: conns.SyncSettings, principal: Principal,
                    connection_id: int, payload: Mapping[str, Any]) -> Connection:
    """Change a connection; `config` is merged into the stored one and validated again."""
    connection = get_connection(session, principal, connection_id)
    if payload.get("config") is not None:
        _check_connector(principal, connection.connector_type)
    return conns.edit_connection(
        session, settings, connection, config=payload.get("config"),
        schedule=payload.get("schedule"), enabled=payload.get("enabled"),
        staleness_seconds=payload.get("staleness_seconds"),
        max_removal_share=payload.get("max_removal_share"),
        max_change_share=payload.get("max_change_share"),
        max_quarantine_share=payload.get("max_quarantine_share"),
        max_quarantined=payload.get("max_quarantined"),
        scope_countries=payload.get("scope_countries"),
        snapshot_schedule=payload.get("snapshot_schedule"))


@transactional
def request_sync(session: Session, principal: Principal, connection_id: int
                 ) -> dict[str, Any]:
    """Ask the scheduler to sync now (coalesced with a pending request)."""
    connection = get_connection(session, principal, connection_id)
    if not connection.enabled:
        raise Conflict(f"connection {connection.name} is disabled: enable it first",
                       fields={"enabled": "false"})
    if connection.notify_requested_at is None:
        connection.notify_requested_at = clock.now()
    return {"connection_id": connection.id, "status": "requested",
            "requested_at": connection.notify_requested_at.isoformat()}


# --- runs ------------------------------------------------------------------------------


def run_dict(run: SyncRun, connection_name: str) -> dict[str, Any]:
    return {**run_summary(run), "connection": connection_name,
            "scheduled_for": iso(run.scheduled_for), "snapshot": run.snapshot,
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


def run_difference(session: Session, principal: Principal, run_id: int, kind: str, *,
                   after: str | None = None, limit: int = 100) -> dict[str, Any]:
    return difference(session, get_run(session, principal, run_id), kind, after=after,
                      limit=limit)


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
        "reason_code": row.reason_code, "operator_id": row.operator_id,
        "seen_count": row.seen_count, "last_seen_at": iso(row.last_seen_at),
        "created_at": row.created_at.isoformat(), "resolved_at": iso(row.resolved_at),
        "resolved_by": row.resolved_by, "resolution_note": row.resolution_note,
    }
    if full:
        out["record"] = dict(row.record or {})
    return out


def list_quarantine(session: Session, principal: Principal, *,
                    connection_id: int | None = None, status: str = "open",
                    after: int | None = None, limit: int = 100) -> dict[str, Any]:
    """Quarantined records, oldest first; `next_after` continues the list."""
    page, next_after = quarantine.list_page(
        session, connection_id=connection_id, status=status,
        administration_id=_reach(principal), after=after, limit=limit)
    return {"records": [quarantine_dict(row, name) for row, name in page],
            "next_after": next_after}


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


@transactional
def replay_quarantined(session: Session, principal: Principal, record_id: int,
                       corrections: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate the record again (with corrections) and apply it."""
    _row, connection = get_quarantined(session, principal, record_id)
    row = quarantine.replay(session, record_id, corrections, actor=actor_of(principal))
    return quarantine_dict(row, connection.name, full=True)


@transactional
def dismiss_quarantined(session: Session, principal: Principal, record_id: int,
                        note: str | None) -> dict[str, Any]:
    _row, connection = get_quarantined(session, principal, record_id)
    row = quarantine.dismiss(session, record_id, note=note, actor=actor_of(principal))
    return quarantine_dict(row, connection.name, full=True)
