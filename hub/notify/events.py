"""The dispatcher: turns registry changes and sync outcomes into queued webhook deliveries.

Operator events come from the change feed (`hub.notify.changes`), read for each
subscription with the subscribing client's `View`, exactly as that client would read
`GET /api/v1/changes`: the same safe horizon (no event skipped while a sync is still
committing), the same policy (only operators and fields the client may see) and the same
tombstones (`no_longer_shared` after a consent withdrawal or when an arrangement stops
sharing a programme). Each subscription keeps its own change-feed cursor; the cursor and
the deliveries it produced are written in one transaction, guarded by the cursor's old
value, so two dispatchers never queue an event twice.

Feed items map to event types:
- `created`, `restored`, `shared` (consent given again) -> `operator.created`;
- `status_changed` -> `operator.<new status>` (`valid` -> `operator.reinstated`);
- `categories_changed` where a component's status moved -> the same types, with the
  component named (an AEOF holder's security part suspended is `operator.suspended`);
- `removed` -> `operator.removed`; a tombstone -> `operator.no_longer_shared`;
- `details_changed` and `consent_changed` without a change of view send nothing.

Node administrators' events (`sync.failed`, `sync.held`, `feed.stale`) come from the sync
runs and connections of the client's own administration, deduplicated per subscription.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from hub import clock
from hub.auth import policy
from hub.auth.cursors import decode_cursor, encode_cursor
from hub.auth.models import OAuthClient
from hub.auth.shared import programme_codes, shared_record
from hub.db import Database
from hub.jsonio import iso
from hub.notify import changes as feed
from hub.notify.models import ViewChange, WebhookDelivery, WebhookSubscription
from hub.registry.models import Administration, Operator, Programme
from hub.sync.connections import is_stale
from hub.sync.models import Connection, SyncRun

log = logging.getLogger(__name__)

#: Operator event types, for every client with the `webhooks` scope.
OPERATOR_EVENT_TYPES = (
    "operator.created",
    "operator.suspended",
    "operator.reinstated",
    "operator.revoked",
    "operator.annulled",
    "operator.expired",
    "operator.withdrawn",
    "operator.removed",
    "operator.no_longer_shared",
)
#: Event types about a node administration's own connections (scope `node:admin`).
NODE_EVENT_TYPES = ("sync.failed", "sync.held", "feed.stale")
#: A test event a subscriber can ask for (`POST /api/v1/webhooks/<id>/ping`).
PING = "webhook.ping"
EVENT_TYPES = (*OPERATOR_EVENT_TYPES, *NODE_EVENT_TYPES)

STATUS_EVENTS: Mapping[str, str] = {
    "suspended": "operator.suspended",
    "revoked": "operator.revoked",
    "annulled": "operator.annulled",
    "expired": "operator.expired",
    "withdrawn": "operator.withdrawn",
    "valid": "operator.reinstated",
}
PAGE = 500
MAX_PAGES_PER_TICK = 20
# Sync runs are looked at again for this long, so a run committed late is not missed.
SYNC_LOOKBACK = dt.timedelta(minutes=5)


@dataclass
class QueuedEvent:
    """An event ready to be queued for one subscription."""

    event_type: str
    dedupe_key: str
    ordering_key: str
    data: dict[str, Any]
    event_id: str = field(default_factory=lambda: "evt_" + uuid.uuid4().hex)


def envelope(subscription: WebhookSubscription | str, event: QueuedEvent,
             created_at: dt.datetime) -> dict[str, Any]:
    """The JSON document a receiver gets."""
    public_id = subscription if isinstance(subscription, str) else subscription.public_id
    return {"id": event.event_id, "type": event.event_type,
            "created_at": created_at.isoformat(), "subscription": public_id,
            "data": event.data}


def queue(session: Session, subscription: WebhookSubscription | int, public_id: str,
          events: Iterable[QueuedEvent], now: dt.datetime | None = None) -> int:
    """Add deliveries for `events` (the caller commits)."""
    now = now or clock.now()
    sub_id = subscription if isinstance(subscription, int) else subscription.id
    count = 0
    for event in events:
        session.add(WebhookDelivery(
            event_id=event.event_id, subscription_id=sub_id, event_type=event.event_type,
            dedupe_key=event.dedupe_key[:200], ordering_key=event.ordering_key[:80],
            payload=envelope(public_id, event, now), status="pending", attempts=0,
            next_attempt_at=now, created_at=now))
        count += 1
    return count


# --- operator events ---------------------------------------------------------------------


def _component_changes(item: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(component code, event type) for each component whose status moved."""
    new = {str(c.get("code")): c.get("status")
           for c in (item.get("changes") or {}).get("categories") or () if isinstance(c, dict)}
    old = {str(c.get("code")): c.get("status")
           for c in (item.get("previous") or {}).get("categories") or () if isinstance(c, dict)}
    out: list[tuple[str, str]] = []
    for code, status in sorted(new.items()):
        before = old.get(code)
        if code not in old or before == status or not isinstance(status, str):
            continue
        kind = STATUS_EVENTS.get(status)
        if kind is not None:
            out.append((code, kind))
    return out


def types_for(item: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The webhook event types of one change-feed item, each with extra data."""
    kind = item.get("kind")
    if kind == "tombstone":
        extra = {"reason": item.get("reason", "no_longer_shared")}
        if item.get("arrangement"):
            extra["arrangement"] = item["arrangement"]
        return [("operator.no_longer_shared", extra)]
    if kind in ("created", "restored", "shared"):
        return [("operator.created", {} if kind == "created" else {"reason": kind})]
    if kind == "removed":
        return [("operator.removed", {})]
    if kind == "status_changed":
        status = (item.get("changes") or {}).get("status")
        found = STATUS_EVENTS.get(status) if isinstance(status, str) else None
        return [(found, {})] if found else []
    if kind == "categories_changed":
        return [(kind_, {"component": code}) for code, kind_ in _component_changes(item)]
    return []


def _dedupe_key(item: Mapping[str, Any], event_type: str, extra: Mapping[str, Any]) -> str:
    if item.get("view_change_id") is not None:
        return f"view:{item['view_change_id']}:{event_type}"
    if item.get("event_id") is not None:
        return f"ev:{item['event_id']}:{event_type}:{extra.get('component', '')}"
    return (f"arr:{item.get('arrangement', '')}:{item.get('effective_date', '')}:"
            f"{item.get('operator_id')}")


def _codes(session: Session, view: policy.View) -> dict[int, tuple[str, Any]]:
    ids = view.programme_ids()
    if ids is None:
        ids = frozenset(session.scalars(select(Programme.id)))
    return programme_codes(session, ids)


def _view(session: Session, client: OAuthClient) -> policy.View:
    return policy.view_for(session, client.programme_id, admin=client.is_admin)


def operator_events(session: Session, view: policy.View, items: list[dict[str, Any]],
                    wanted: Iterable[str], codes: Mapping[int, tuple[str, Any]]
                    ) -> list[QueuedEvent]:
    """Webhook events for change-feed items, with the operator as the view may see it."""
    wanted_set = set(wanted)
    typed = [(item, t, extra) for item in items for t, extra in types_for(item)
             if t in wanted_set]
    ids = sorted({int(item["operator_id"]) for item, t, _ in typed
                  if t != "operator.no_longer_shared"})
    records: dict[int, dict[str, Any]] = {}
    if ids:
        rows = list(session.scalars(select(Operator).where(Operator.id.in_(ids))
                                    .options(selectinload(Operator.identifiers))))
        grants = policy.grants_of_rows(session, view, rows)
        for row in rows:
            grant = grants.get(row.id)
            if grant is not None:
                records[row.id] = shared_record(row, grant, codes, row.identifiers)
    out: list[QueuedEvent] = []
    for item, event_type, extra in typed:
        operator_id = int(item["operator_id"])
        data: dict[str, Any] = {
            "operator_id": operator_id, "programme": item.get("programme"),
            "effective_date": item.get("effective_date"),
            "recorded_at": item.get("recorded_at"), **extra}
        if event_type != "operator.no_longer_shared":
            if operator_id not in records:
                continue  # left the view since the feed was read: the tombstone follows
            data["change_id"] = item.get("event_id")
            data["changes"] = item.get("changes") or {}
            data["previous"] = item.get("previous") or {}
            data["operator"] = records[operator_id]
        out.append(QueuedEvent(event_type, _dedupe_key(item, event_type, extra),
                               f"operator:{operator_id}", data))
    return out


def initial_cursor(session: Session, database: Database) -> str:
    """A cursor at the feed's present: a new subscription gets changes from now on."""
    return encode_cursor({"e": feed.safe_horizon(database), "v": _max_view_change(session)})


def _max_view_change(session: Session) -> int:
    return int(session.scalar(select(func.max(ViewChange.id))) or 0)


def _eligible(client: OAuthClient | None) -> bool:
    if client is None or client.disabled_at is not None:
        return False
    scopes = set(client.scopes or ())
    return "webhooks" in scopes or "admin" in scopes


def _feed_page(session: Session, view: policy.View, cursor: str, horizon: int,
               codes: dict[int, tuple[str, Any]]
               ) -> tuple[list[dict[str, Any]], str, bool]:
    """One page of the client's change feed after `cursor`, up to `horizon`."""
    pos = decode_cursor(cursor or None, feed.CURSOR_KEYS)
    items = feed.view_changes(session, view, pos, PAGE)
    more = len(items) >= PAGE
    if not more:
        events, more = feed._operator_changes(session, view, pos, PAGE - len(items),
                                              horizon, codes)
        items.extend(events)
        if not more:
            # Every event up to the horizon was judged: skip the ones of programmes the
            # view does not cover, so the next look starts at the horizon.
            pos["e"] = max(pos["e"], horizon)
    return items, encode_cursor(pos), more


def dispatch_subscription(database: Database, subscription_id: int, horizon: int,
                          max_view: int) -> int:
    """Queue the operator events of one subscription up to `horizon`; return how many."""
    queued = 0
    for _page in range(MAX_PAGES_PER_TICK):
        with database.session_scope() as session:
            sub = session.get(WebhookSubscription, subscription_id)
            if sub is None or sub.status == "disabled" or not _eligible(sub.client):
                return queued
            wanted = [t for t in sub.event_types if t in OPERATOR_EVENT_TYPES]
            old_cursor = sub.cursor
            pos = decode_cursor(old_cursor or None, feed.CURSOR_KEYS)
            if pos["e"] >= horizon and pos["v"] >= max_view:
                return queued
            view = _view(session, sub.client)
            codes = _codes(session, view)
            items, new_cursor, more = _feed_page(session, view, old_cursor, horizon, codes)
            events = operator_events(session, view, items, wanted, codes) if wanted else []
            public_id = sub.public_id
        if new_cursor == old_cursor and not events:
            return queued
        with database.session_scope(write=True) as session:
            moved = session.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id == subscription_id,
                       WebhookSubscription.cursor == old_cursor)
                .values(cursor=new_cursor))
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                return queued  # another dispatcher took this page
            queued += queue(session, subscription_id, public_id, events)
        if not more:
            return queued
    return queued


# --- node administrators' events ---------------------------------------------------------



def node_events(session: Session, sub: WebhookSubscription, now: dt.datetime
                ) -> list[QueuedEvent]:
    """sync.failed / sync.held / feed.stale for the client's administration, not yet queued."""
    client = sub.client
    wanted = {t for t in sub.event_types if t in NODE_EVENT_TYPES}
    scopes = set(client.scopes or ())
    if not wanted or not ({"node:admin", "admin"} & scopes):
        return []
    if client.administration_id is None and not client.is_admin:
        return []
    connections = select(Connection).options(selectinload(Connection.administration))
    if not client.is_admin:
        connections = connections.where(
            Connection.administration_id == client.administration_id)
    found: list[QueuedEvent] = []
    if {"sync.failed", "sync.held"} & wanted:
        since = max(sub.created_at, (sub.sync_checked_at or sub.created_at) - SYNC_LOOKBACK)
        statuses = [s for s, t in (("failed", "sync.failed"),
                                   ("needs_confirmation", "sync.held")) if t in wanted]
        runs = session.execute(
            select(SyncRun, Connection, Administration)
            .join(Connection, Connection.id == SyncRun.connection_id)
            .join(Administration, Administration.id == Connection.administration_id)
            .where(SyncRun.status.in_(statuses), SyncRun.dry_run.is_(False),
                   SyncRun.finished_at >= since,
                   *([] if client.is_admin
                     else [Connection.administration_id == client.administration_id]))
            .order_by(SyncRun.id))
        for run, connection, administration in runs:
            event_type = "sync.failed" if run.status == "failed" else "sync.held"
            found.append(QueuedEvent(event_type, f"run:{run.id}:{run.status}",
                                     f"connection:{connection.id}", {
                "connection": connection.name, "connection_id": connection.id,
                "administration": administration.code, "run_id": run.id,
                "status": run.status, "trigger": run.trigger,
                "started_at": iso(run.started_at), "finished_at": iso(run.finished_at),
                "error": run.error, "held_reason": run.held_reason,
                "counts": dict(run.counts or {})}))
    if "feed.stale" in wanted:
        for connection in session.scalars(connections.where(Connection.enabled.is_(True))):
            reference = connection.last_success_at or connection.created_at
            if connection.last_success_at is None and (
                    now - reference).total_seconds() <= connection.staleness_seconds:
                continue  # a new connection is not stale before its first deadline
            if not is_stale(connection, now):
                continue
            found.append(QueuedEvent(
                "feed.stale", f"stale:{connection.id}:{iso(connection.last_success_at)}",
                f"connection:{connection.id}", {
                    "connection": connection.name, "connection_id": connection.id,
                    "administration": connection.administration.code,
                    "last_success_at": iso(connection.last_success_at),
                    "age_seconds": int((now - reference).total_seconds()),
                    "staleness_seconds": connection.staleness_seconds}))
    if not found:
        return []
    known = set(session.scalars(select(WebhookDelivery.dedupe_key).where(
        WebhookDelivery.subscription_id == sub.id,
        WebhookDelivery.dedupe_key.in_([e.dedupe_key for e in found]))))
    return [e for e in found if e.dedupe_key not in known]


def dispatch_node_events(database: Database, subscription_id: int) -> int:
    now = clock.now()
    with database.session_scope(write=True) as session:
        sub = session.get(WebhookSubscription, subscription_id)
        if sub is None or sub.status == "disabled" or not _eligible(sub.client):
            return 0
        events = node_events(session, sub, now)
        sub.sync_checked_at = now
        return queue(session, sub, sub.public_id, events, now)


# --- the dispatcher ----------------------------------------------------------------------


def dispatch(database: Database) -> int:
    """Queue every new event for every subscription; return how many were queued."""
    with database.session_scope() as session:
        subs = list(session.execute(
            select(WebhookSubscription.id, WebhookSubscription.event_types)
            .where(WebhookSubscription.status != "disabled")
            .order_by(WebhookSubscription.id)))
        max_view = _max_view_change(session) if subs else 0
    if not subs:
        return 0
    horizon = feed.safe_horizon(database)
    total = 0
    for sub_id, types in subs:
        try:
            if any(t in OPERATOR_EVENT_TYPES for t in types or ()):
                total += dispatch_subscription(database, sub_id, horizon, max_view)
            if any(t in NODE_EVENT_TYPES for t in types or ()):
                total += dispatch_node_events(database, sub_id)
        except Exception:  # one subscription's trouble must not stop the others
            log.exception("dispatching events for webhook subscription %s failed", sub_id)
    return total
