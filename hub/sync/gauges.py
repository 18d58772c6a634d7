"""Sync figures for `GET /metrics`, read from the database at scrape time: runs by
connection and status, held and running runs, feed age and staleness, consecutive
failures, open quarantine. The scheduler process runs the syncs, so the database, not a
process's counters, holds the truth every web worker reports."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.metrics import add_scrape_source
from hub.sync.connections import feed_age, is_stale
from hub.sync.models import Connection, QuarantinedRecord, SyncRun


def init_app(app: Flask) -> None:
    add_scrape_source(app, sync_metrics)


def sync_metrics(session: Session) -> Iterable[Metric]:
    """Runs by outcome, feed ages, pending work: read from the database at scrape time."""
    connections = list(session.scalars(select(Connection).order_by(Connection.id)))
    names = {c.id: c.name for c in connections}

    runs = GaugeMetricFamily("aeohub_sync_runs",
                             "Sync runs recorded, by connection and status (running, "
                             "succeeded, failed, needs_confirmation, discarded, superseded, "
                             "abandoned).",
                             labels=["connection", "status"])
    held = GaugeMetricFamily("aeohub_sync_runs_held",
                             "Runs held by a guard, waiting for confirm or discard.")
    running = GaugeMetricFamily("aeohub_sync_runs_running", "Runs in progress.")
    by_status: dict[str, int] = {}
    for connection_id, status, number in session.execute(
            select(SyncRun.connection_id, SyncRun.status, func.count())
            .where(SyncRun.dry_run.is_(False))
            .group_by(SyncRun.connection_id, SyncRun.status)):
        runs.add_metric([names.get(connection_id, str(connection_id)), status], number)
        by_status[status] = by_status.get(status, 0) + int(number)
    held.add_metric([], by_status.get("needs_confirmation", 0))
    running.add_metric([], by_status.get("running", 0))

    age = GaugeMetricFamily("aeohub_feed_age_seconds",
                            "Seconds since the connection's last successful sync "
                            "(absent until its first success).", labels=["connection"])
    stale = GaugeMetricFamily("aeohub_feed_stale",
                              "1 when the connection's feed is older than its staleness "
                              "limit (or never synced), else 0.", labels=["connection"])
    failures = GaugeMetricFamily("aeohub_feed_consecutive_failures",
                                 "Failed runs since the connection's last success.",
                                 labels=["connection"])
    for connection in connections:
        if not connection.enabled:
            continue
        seconds = feed_age(connection)
        if seconds is not None:
            age.add_metric([connection.name], seconds)
        stale.add_metric([connection.name], 1.0 if is_stale(connection) else 0.0)
        failures.add_metric([connection.name], connection.consecutive_failures)

    quarantine = GaugeMetricFamily("aeohub_quarantine_open",
                                   "Quarantined records waiting for review.",
                                   labels=["connection"])
    for connection_id, number in session.execute(
            select(QuarantinedRecord.connection_id, func.count())
            .where(QuarantinedRecord.status == "open")
            .group_by(QuarantinedRecord.connection_id)):
        quarantine.add_metric([names.get(connection_id, str(connection_id))], number)
    return [runs, held, running, age, stale, failures, quarantine]
