"""Webhook subscriptions: create, list, show, change, resume, rotate, delete, inspect.

Every function acts for one principal (the OAuth client of the request) and only on that
client's own subscriptions; anything else is "not found". Input is validated before
anything is stored and every problem is reported at once (`InvalidInput` with fields).
The secret is returned once, at creation or rotation, and kept Fernet-encrypted. Each
function that changes a subscription is a transaction of its own (`hub.db.transactional`).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from hub import clock
from hub.auth.service import Principal
from hub.db import Database, transactional
from hub.errors import InvalidInput, NotFound
from hub.jsonio import iso
from hub.notify import events as notify_events
from hub.notify.audit import audit
from hub.notify.destinations import DestinationRefused, WebhookSettings, resolve_destination
from hub.notify.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from hub.sync.secrets import encrypt

MAX_SUBSCRIPTIONS_PER_CLIENT = 25


@dataclass
class CreatedSubscription:
    subscription: WebhookSubscription
    secret: str


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def allowed_event_types(principal: Principal) -> tuple[str, ...]:
    """The event types this client may subscribe to."""
    node_admin = principal.is_admin or (
        "node:admin" in principal.scopes and principal.administration_id is not None)
    return notify_events.EVENT_TYPES if node_admin else notify_events.OPERATOR_EVENT_TYPES


def _validate(settings: WebhookSettings, principal: Principal, *, url: str | None,
              events: Iterable[str] | None, problems: dict[str, str]) -> list[str] | None:
    if url is not None:
        try:
            resolve_destination(url, settings)
        except DestinationRefused as exc:
            problems["url"] = str(exc)
    if events is None:
        return None
    chosen = list(dict.fromkeys(str(e) for e in events))
    if not chosen:
        problems["events"] = "name at least one event type"
        return chosen
    allowed = allowed_event_types(principal)
    unknown = [e for e in chosen if e not in notify_events.EVENT_TYPES]
    denied = [e for e in chosen if e in notify_events.EVENT_TYPES and e not in allowed]
    if unknown:
        problems["events"] = (f"unknown event type(s): {', '.join(unknown)} (known: "
                              f"{', '.join(notify_events.EVENT_TYPES)})")
    elif denied:
        problems["events"] = (f"{', '.join(denied)} are for node administrators (scope "
                              "node:admin, for a client of an administration)")
    return chosen


def _raise(problems: dict[str, str]) -> None:
    if problems:
        raise InvalidInput("the subscription is invalid: " + "; ".join(
            f"{k}: {v}" for k, v in problems.items()), fields=problems)


def _actor(principal: Principal) -> str:
    return f"client:{principal.client_id}"


@transactional
def create_subscription(session: Session, database: Database, settings: WebhookSettings,
                        principal: Principal, *, url: str, events: Iterable[str],
                        description: str | None = None) -> CreatedSubscription:
    """Subscribe the client to `events` at `url`; the secret is shown only now."""
    problems: dict[str, str] = {}
    chosen = _validate(settings, principal, url=url, events=events, problems=problems)
    count = len(session.scalars(select(WebhookSubscription.id).where(
        WebhookSubscription.client_pk == principal.client_pk)).all())
    if count >= MAX_SUBSCRIPTIONS_PER_CLIENT:
        problems["(client)"] = (f"a client may hold at most {MAX_SUBSCRIPTIONS_PER_CLIENT} "
                                "subscriptions")
    _raise(problems)
    secret = new_secret()
    now = clock.now()
    sub = WebhookSubscription(
        public_id="whs_" + secrets.token_hex(12), client_pk=principal.client_pk, url=url,
        event_types=list(chosen or []), description=description,
        secret_encrypted=encrypt(settings.fernet, {"secret": secret}) or "",
        status="active", consecutive_failures=0,
        cursor=notify_events.initial_cursor(session, database), sync_checked_at=now,
        created_at=now, updated_at=now)
    session.add(sub)
    session.flush()
    audit(session, "webhook.created", actor=_actor(principal),
          subject=f"webhook:{sub.public_id}", administration_id=principal.administration_id,
          details={"url": url, "events": sub.event_types})
    return CreatedSubscription(sub, secret)


def list_subscriptions(session: Session, principal: Principal) -> list[WebhookSubscription]:
    return list(session.scalars(select(WebhookSubscription)
                                .where(WebhookSubscription.client_pk == principal.client_pk)
                                .order_by(WebhookSubscription.id)))


def get_subscription(session: Session, principal: Principal, public_id: str
                     ) -> WebhookSubscription:
    sub = session.scalar(select(WebhookSubscription).where(
        WebhookSubscription.public_id == public_id,
        WebhookSubscription.client_pk == principal.client_pk))
    if sub is None:
        raise NotFound(f"no webhook subscription {public_id!r} for this client",
                       fields={"subscription": "unknown"})
    return sub


@transactional
def update_subscription(session: Session, settings: WebhookSettings, principal: Principal,
                        public_id: str, *, url: str | None = None,
                        events: Iterable[str] | None = None, description: str | None = None,
                        active: bool | None = None) -> WebhookSubscription:
    """Change a subscription; `active=True` resumes a paused one, `False` disables it."""
    sub = get_subscription(session, principal, public_id)
    problems: dict[str, str] = {}
    chosen = _validate(settings, principal, url=url, events=events, problems=problems)
    _raise(problems)
    now = clock.now()
    changed: dict[str, Any] = {}
    if url is not None and url != sub.url:
        sub.url = changed["url"] = url
    if chosen is not None and chosen != sub.event_types:
        sub.event_types = changed["events"] = chosen
    if description is not None:
        sub.description = description
    if active is True and sub.status != "active":
        resume(session, sub, now)
        changed["status"] = "active"
    elif active is False and sub.status != "disabled":
        sub.status = changed["status"] = "disabled"
    sub.updated_at = now
    session.flush()
    if changed:
        audit(session, "webhook.changed", actor=_actor(principal),
              subject=f"webhook:{sub.public_id}",
              administration_id=principal.administration_id, details=changed)
    return sub


@transactional
def resume(session: Session, sub: WebhookSubscription, now: dt.datetime) -> None:
    """Deliver again: failures forgotten, waiting deliveries due now (in order)."""
    sub.status = "active"
    sub.paused_at = None
    sub.paused_reason = None
    sub.consecutive_failures = 0
    sub.updated_at = now
    session.execute(update(WebhookDelivery)
                    .where(WebhookDelivery.subscription_id == sub.id,
                           WebhookDelivery.status == "pending")
                    .values(next_attempt_at=now))


@transactional
def rotate_secret(session: Session, settings: WebhookSettings, principal: Principal,
                  public_id: str) -> tuple[WebhookSubscription, str]:
    sub = get_subscription(session, principal, public_id)
    secret = new_secret()
    sub.secret_encrypted = encrypt(settings.fernet, {"secret": secret}) or ""
    sub.updated_at = clock.now()
    session.flush()
    audit(session, "webhook.secret_rotated", actor=_actor(principal),
          subject=f"webhook:{sub.public_id}", administration_id=principal.administration_id)
    return sub, secret


@transactional
def delete_subscription(session: Session, principal: Principal, public_id: str) -> None:
    sub = get_subscription(session, principal, public_id)
    audit(session, "webhook.deleted", actor=_actor(principal),
          subject=f"webhook:{sub.public_id}", administration_id=principal.administration_id,
          details={"url": sub.url})
    session.delete(sub)
    session.flush()


@transactional
def ping(session: Session, principal: Principal, public_id: str) -> WebhookDelivery:
    """Queue a `webhook.ping` event, to test the receiver and its signature check."""
    sub = get_subscription(session, principal, public_id)
    event = notify_events.QueuedEvent(notify_events.PING, f"ping:{secrets.token_hex(8)}",
                                      "ping", {"message": "ping from AEO Hub"})
    notify_events.queue(session, sub, sub.public_id, [event])
    session.flush()
    return session.scalars(select(WebhookDelivery)
                           .where(WebhookDelivery.event_id == event.event_id)).one()


def recent_deliveries(session: Session, sub: WebhookSubscription, *, status: str | None,
                      limit: int) -> list[WebhookDelivery]:
    query = (select(WebhookDelivery).where(WebhookDelivery.subscription_id == sub.id)
             .order_by(WebhookDelivery.id.desc()).limit(limit))
    if status:
        query = query.where(WebhookDelivery.status == status)
    return list(session.scalars(query))


def attempts_of(session: Session, delivery_ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    out: dict[int, list[WebhookAttempt]] = {i: [] for i in delivery_ids}
    if delivery_ids:
        for row in session.scalars(select(WebhookAttempt)
                                   .where(WebhookAttempt.delivery_id.in_(delivery_ids))
                                   .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)):
            out[row.delivery_id].append(row)
    return out



def subscription_dict(sub: WebhookSubscription) -> dict[str, Any]:
    return {"id": sub.public_id, "url": sub.url, "events": list(sub.event_types),
            "description": sub.description, "status": sub.status,
            "paused_at": iso(sub.paused_at), "paused_reason": sub.paused_reason,
            "consecutive_failures": sub.consecutive_failures,
            "last_success_at": iso(sub.last_success_at),
            "last_failure_at": iso(sub.last_failure_at),
            "created_at": iso(sub.created_at), "updated_at": iso(sub.updated_at)}


def delivery_dict(delivery: WebhookDelivery, attempts: list[WebhookAttempt]
                  ) -> dict[str, Any]:
    return {"event_id": delivery.event_id, "type": delivery.event_type,
            "status": delivery.status, "attempts": delivery.attempts,
            "created_at": iso(delivery.created_at),
            "next_attempt_at": iso(delivery.next_attempt_at)
            if delivery.status == "pending" else None,
            "delivered_at": iso(delivery.delivered_at),
            "last_status_code": delivery.last_status_code, "last_error": delivery.last_error,
            "attempt_log": [{"number": a.number, "started_at": iso(a.started_at),
                             "duration_ms": a.duration_ms, "outcome": a.outcome,
                             "status_code": a.status_code, "error": a.error}
                            for a in attempts]}


def all_subscriptions(session: Session) -> list[WebhookSubscription]:
    """Every subscription with its client (the CLI's listing)."""
    return list(session.scalars(select(WebhookSubscription)
                                .options(selectinload(WebhookSubscription.client))
                                .order_by(WebhookSubscription.id)))
