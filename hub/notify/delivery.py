"""Posting queued deliveries: signed, in order per operator, retried, logged, paused.

- Order: a delivery is due only when no earlier delivery of the same subscription and
  `ordering_key` (one operator, one connection) is still pending, so a receiver always
  gets an operator's events in the order they happened, across retries and workers.
- Claims: a worker claims a due delivery by setting `locked_until` in a conditional
  update; a second worker (or process) skips it, and a worker that dies releases it when
  the lock expires.
- Signature: `AEOHub-Signature: t=<unix>,v1=<HMAC-SHA256 of "t.body">` with the
  subscription's secret (`hub.notify.signing`), a fresh timestamp on every attempt; the
  body and `AEOHub-Event-Id` stay the same, so receivers can deduplicate.
- Failures (no 2xx answer, a timeout, a refused destination) are retried with
  exponential back-off (`WEBHOOK_RETRY_BASE_SECONDS` doubling up to
  `WEBHOOK_RETRY_MAX_SECONDS`) until `WEBHOOK_MAX_ATTEMPTS`; every attempt is logged as a
  `WebhookAttempt`. After `WEBHOOK_PAUSE_AFTER_FAILURES` failed attempts in a row the
  subscription is paused with its reason; resuming it sends what waited, in order.
- Destination: the URL is checked again before every attempt
  (`hub.notify.destinations.resolve_destination`), and the post connects to the address
  resolved then (the Host header and, over https, the certificate check keep the name),
  so a name that changes its address in between cannot send the post elsewhere.
- Redirects are not followed: a receiver must answer at the URL it registered.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import certifi
import urllib3
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from hub import clock, metrics
from hub.db import Database
from hub.notify import signing
from hub.notify.audit import record_notice
from hub.notify.destinations import (
    Destination,
    DestinationRefused,
    WebhookSettings,
    resolve_destination,
)
from hub.notify.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from hub.sync.secrets import decrypt

log = logging.getLogger(__name__)
USER_AGENT = "aeohub-webhooks/1"
EXCERPT = 500


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    delivery_id: int
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


def body_of(payload: dict[str, Any]) -> bytes:
    """The exact bytes posted (and signed) for a payload."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def claim_due(database: Database, limit: int, lock_seconds: float,
              now: dt.datetime | None = None) -> list[int]:
    """Claim up to `limit` deliveries that are due and first in their order."""
    if limit <= 0:
        return []
    now = now or clock.now()
    earlier = aliased(WebhookDelivery)
    blocked = exists().where(earlier.subscription_id == WebhookDelivery.subscription_id,
                             earlier.ordering_key == WebhookDelivery.ordering_key,
                             earlier.status == "pending", earlier.id < WebhookDelivery.id)
    query = (select(WebhookDelivery.id)
             .join(WebhookSubscription,
                   WebhookSubscription.id == WebhookDelivery.subscription_id)
             .where(WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    or_(WebhookDelivery.locked_until.is_(None),
                        WebhookDelivery.locked_until < now),
                    WebhookSubscription.status == "active", ~blocked)
             .order_by(WebhookDelivery.id).limit(limit))
    with database.session_scope() as session:
        candidates = list(session.scalars(query))
    if not candidates:
        return []
    claimed: list[int] = []
    until = now + dt.timedelta(seconds=lock_seconds)
    with database.session_scope(write=True) as session:
        for delivery_id in candidates:
            taken = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                       or_(WebhookDelivery.locked_until.is_(None),
                           WebhookDelivery.locked_until < now))
                .values(locked_until=until))
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(delivery_id)
    return claimed


def _excerpt(response: urllib3.BaseHTTPResponse) -> str:
    try:
        raw = response.read(EXCERPT, decode_content=True)
    except Exception:  # the excerpt is diagnostic only
        return ""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""


def post(destination: Destination, secret: str, event_id: str, event_type: str, body: bytes,
         attempt: int, timeout: float) -> tuple[int, str]:
    """POST one signed delivery to the destination's resolved address; return (status
    code, start of the answer). Redirects are answers, not followed."""
    headers = {
        "Host": destination.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.EVENT_ID_HEADER: event_id,
        signing.EVENT_TYPE_HEADER: event_type,
        "AEOHub-Delivery-Attempt": str(attempt),
        signing.SIGNATURE_HEADER: signing.signature_header(secret, body),
    }
    pool: urllib3.HTTPConnectionPool
    if destination.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            destination.address, destination.port, timeout=timeout, retries=False,
            cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
            server_hostname=destination.host, assert_hostname=destination.host)
    else:
        pool = urllib3.HTTPConnectionPool(destination.address, destination.port,
                                          timeout=timeout, retries=False)
    with pool:
        response = pool.urlopen("POST", destination.target, body=body, headers=headers,
                                redirect=False, retries=False, preload_content=False,
                                assert_same_host=False)
        try:
            return response.status, _excerpt(response)
        finally:
            response.release_conn()


def attempt(database: Database, settings: WebhookSettings, delivery_id: int) -> Outcome | None:
    """Try one claimed delivery once and record the outcome."""
    with database.session_scope() as session:
        row = session.execute(
            select(WebhookDelivery, WebhookSubscription)
            .join(WebhookSubscription,
                  WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(WebhookDelivery.id == delivery_id)).first()
        if row is None or row[0].status != "pending":
            return None
        delivery, sub = row
        url, payload, number = sub.url, dict(delivery.payload), delivery.attempts + 1
        event_id, event_type, secret_token = (delivery.event_id, delivery.event_type,
                                              sub.secret_encrypted)
    started = clock.now()
    began = time.monotonic()
    status_code: int | None = None
    excerpt: str | None = None
    error: str | None = None
    try:
        secret = str(decrypt(settings.fernet, secret_token)["secret"])
        destination = resolve_destination(url, settings)
        status_code, excerpt = post(destination, secret, event_id, event_type,
                                    body_of(payload), number, settings.timeout)
        if not 200 <= status_code < 300:
            error = f"the receiver answered {status_code}"
    except DestinationRefused as exc:
        error = f"destination refused: {exc}"
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    except Exception as exc:  # a bug or an undecryptable secret: logged, retried later
        log.exception("webhook delivery %s failed unexpectedly", delivery_id)
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    duration = int((time.monotonic() - began) * 1000)
    outcome = Outcome(delivery_id, error is None, status_code, error, duration)
    gave_up = record(database, settings, outcome, number, started, excerpt)
    _count(event_type, "delivered" if outcome.ok else ("gave_up" if gave_up else "failed"))
    return outcome


def _count(event_type: str, outcome: str) -> None:
    """This process's counter (the worker's; `/metrics` reads the database's figures)."""
    metrics.count_webhook_delivery(outcome, event_type=event_type)


def record(database: Database, settings: WebhookSettings, outcome: Outcome, number: int,
           started: dt.datetime, excerpt: str | None) -> bool:
    """Log the attempt and move the delivery and its subscription on; True: given up."""
    now = clock.now()
    with database.session_scope(write=True) as session:
        delivery = session.get(WebhookDelivery, outcome.delivery_id)
        if delivery is None:
            return False
        sub = session.get(WebhookSubscription, delivery.subscription_id)
        assert sub is not None
        session.add(WebhookAttempt(
            delivery_id=delivery.id, number=number, started_at=started,
            duration_ms=outcome.duration_ms, outcome="success" if outcome.ok else "failure",
            status_code=outcome.status_code, error=outcome.error,
            response_excerpt=(excerpt or None) and excerpt[:EXCERPT]))
        delivery.attempts = number
        delivery.locked_until = None
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        if outcome.ok:
            delivery.status = "delivered"
            delivery.delivered_at = now
            sub.consecutive_failures = 0
            sub.last_success_at = now
            return False
        gave_up = number >= settings.max_attempts
        if gave_up:
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = now + dt.timedelta(seconds=settings.retry_delay(number))
        sub.consecutive_failures += 1
        sub.last_failure_at = now
        if sub.status == "active" and sub.consecutive_failures >= settings.pause_after:
            pause(session, sub, f"paused after {sub.consecutive_failures} failed attempts in a "
                                f"row; last: {outcome.error}", now)
        return gave_up


def pause(session: Any, sub: WebhookSubscription, reason: str, now: dt.datetime) -> None:
    """Pause a failing subscription; its deliveries wait until it is resumed."""
    sub.status = "paused"
    sub.paused_at = now
    sub.paused_reason = reason
    sub.updated_at = now
    log.warning("webhook subscription %s (%s) paused: %s", sub.public_id, sub.url, reason)

    record_notice(session, "webhook.paused", sub, {"reason": reason})


def pending_count(database: Database) -> int:
    """Deliveries waiting (for the worker's log and metrics)."""
    with database.session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(WebhookDelivery)
                                  .where(and_(WebhookDelivery.status == "pending"))) or 0)
