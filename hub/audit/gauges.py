"""The audit chain's length for `GET /metrics`, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy.orm import Session

from hub.audit.service import head
from hub.metrics import add_scrape_source


def init_app(app: Flask) -> None:
    add_scrape_source(app, audit_metrics)


def audit_metrics(session: Session) -> Iterable[Metric]:
    entries = GaugeMetricFamily("aeohub_audit_entries",
                                "Entries in the audit chain (the head's seq).")
    entries.add_metric([], head(session).seq)
    return [entries]
