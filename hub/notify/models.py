"""Webhook subscriptions, their queued deliveries (an outbox) and every delivery attempt.

A subscription belongs to one OAuth client and sees what that client may see. The
dispatcher turns registry and sync changes into one `WebhookDelivery` per subscription
and event (unique per subscription and `dedupe_key`, so an event is never queued twice);
the delivery worker posts them in order per `ordering_key` (one operator, one connection)
and logs each try as a `WebhookAttempt`. The subscription's secret is kept encrypted
(Fernet), because the hub needs it in clear to sign.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub import clock
from hub.auth.models import OAuthClient
from hub.db import Base, UTCDateTime

#: Subscription states: delivering, paused after failing (resumable), or switched off.
SUBSCRIPTION_STATUSES = ("active", "paused", "disabled")
#: Delivery states: waiting (first try or a retry), delivered, given up.
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookSubscription(Base):
    """A client's request to receive some event types at one URL."""

    __tablename__ = "webhook_subscription"
    __table_args__ = (Index("ix_webhook_subscription_client", "client_pk"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The id the API shows ("whs_" + 24 hex digits).
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("oauth_client.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    # Event type names ("operator.suspended", ...).
    event_types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(String(200))
    # The signing secret, Fernet-encrypted with the hub's encryption key.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="active")
    paused_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    paused_reason: Mapped[str | None] = mapped_column(Text)
    # Failed attempts since the last success; pauses the subscription at a threshold.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Where the dispatcher resumes in the change feed (a change-feed cursor).
    cursor: Mapped[str] = mapped_column(String(200), default="")
    # Sync runs finished from this time on are checked for sync.* events.
    sync_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)

    client: Mapped[OAuthClient] = relationship()


class WebhookDelivery(Base):
    """One event for one subscription: its payload, where it stands, when to try next."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "dedupe_key"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_order", "subscription_id", "ordering_key", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The event id receivers see (AEOHub-Event-Id); the same on every retry.
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscription.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(40))
    # What makes the event unique for its subscription ("op:123", "run:7:failed", ...).
    dedupe_key: Mapped[str] = mapped_column(String(200))
    # Deliveries with the same key go out in id order ("operator:12", "connection:3").
    ordering_key: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # A worker holds the delivery until then while it posts it.
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)

    subscription: Mapped[WebhookSubscription] = relationship()


class WebhookAttempt(Base):
    """One try at posting a delivery: when, how long, what the receiver answered."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_delivery", "delivery_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_delivery.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    # success | failure
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # The start of the receiver's answer (at most 500 characters), for diagnosis.
    response_excerpt: Mapped[str | None] = mapped_column(Text)


class ViewGrant(Base):
    """What the clients of one programme are shared of another: the grant the hub last
    announced (in the change feed and webhooks) for that pair.

    The daily job (`hub.notify.views`) compares these with the grants the rulebook gives
    today and writes a `ViewChange` for every operator that entered or left the view, then
    stores today's grants: a change of view is announced once.
    """

    __tablename__ = "view_grant"

    recognising_id: Mapped[int] = mapped_column(
        ForeignKey("programme.id", ondelete="CASCADE"), primary_key=True)
    recognised_id: Mapped[int] = mapped_column(
        ForeignKey("programme.id", ondelete="CASCADE"), primary_key=True)
    # Category codes of the recognised programme in scope (sorted).
    categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    consent_required: Mapped[bool] = mapped_column(default=False)
    # Codes of the arrangements granting it (sorted).
    arrangements: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # The day it was announced.
    since: Mapped[dt.date] = mapped_column()


class ViewChange(Base):
    """One operator entering (`shared`) or leaving (`tombstone`) the view of one
    programme's clients on a day, because a direction started, was suspended or ended."""

    __tablename__ = "view_change"
    __table_args__ = (
        UniqueConstraint("recognising_id", "operator_id", "kind", "effective_date"),
        Index("ix_view_change_recognising", "recognising_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recognising_id: Mapped[int] = mapped_column(
        ForeignKey("programme.id", ondelete="CASCADE"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operator.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # shared | tombstone
    # Codes of the arrangements whose directions started or stopped sharing it.
    arrangement: Mapped[str] = mapped_column(String(200))
    effective_date: Mapped[dt.date] = mapped_column()
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=clock.now)
