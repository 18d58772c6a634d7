"""Webhook figures for `GET /metrics`, read from the database at scrape time.

Deliveries run in the worker process, so its in-process counters never reach the web
workers' `/metrics`; the database holds the truth for every process: deliveries by
status and event type, attempts by outcome, subscriptions by status (paused ones are the
notice an operator acts on) and the age of the oldest waiting delivery.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub import clock
from hub.metrics import add_scrape_source
from hub.notify.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


def init_app(app: Flask) -> None:
    add_scrape_source(app, webhook_metrics)


def webhook_metrics(session: Session) -> Iterable[Metric]:
    deliveries = GaugeMetricFamily("aeohub_webhook_queue",
                                   "Webhook deliveries by status and event type.",
                                   labels=["status", "event_type"])
    for status, event_type, count in session.execute(
            select(WebhookDelivery.status, WebhookDelivery.event_type, func.count())
            .group_by(WebhookDelivery.status, WebhookDelivery.event_type)):
        deliveries.add_metric([status, event_type], count)
    attempts = CounterMetricFamily("aeohub_webhook_attempts",
                                   "Webhook delivery attempts by outcome.",
                                   labels=["outcome"])
    for outcome, count in session.execute(
            select(WebhookAttempt.outcome, func.count()).group_by(WebhookAttempt.outcome)):
        attempts.add_metric([outcome], count)
    subscriptions = GaugeMetricFamily("aeohub_webhook_subscriptions",
                                      "Webhook subscriptions by status.", labels=["status"])
    for status, count in session.execute(
            select(WebhookSubscription.status, func.count())
            .group_by(WebhookSubscription.status)):
        subscriptions.add_metric([status], count)
    oldest = session.scalar(select(func.min(WebhookDelivery.created_at))
                            .where(WebhookDelivery.status == "pending"))
    waiting = GaugeMetricFamily("aeohub_webhook_oldest_pending_seconds",
                                "Age of the oldest webhook delivery still waiting.")
    waiting.add_metric([], (clock.now() - oldest).total_seconds() if oldest else 0.0)
    return [deliveries, attempts, subscriptions, waiting]
