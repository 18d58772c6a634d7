"""`GET /metrics`: the hub's operational metrics in the Prometheus text format.

Two kinds of metric, chosen for correctness under several gunicorn workers and a separate
scheduler process:

- Per-process counters, kept by the process that sees the event: HTTP requests and
  latency by route (the Flask URL rule, never the raw path, so label values stay few),
  verify decisions (`count_decision`), webhook deliveries (`count_webhook_delivery`).
  With `PROMETHEUS_MULTIPROC_DIR` set (prometheus-client's multiprocess mode, the same
  directory for every worker of a host, emptied before start), `/metrics` adds up every
  worker of the host; gunicorn's `child_exit` hook should call `child_exit` below.
- Database-derived gauges, computed at scrape time, so every worker answers the same and
  work done in the scheduler process is visible: sync runs by connection and status,
  feed age and staleness per connection, held runs, running runs, open quarantine, and
  the audit chain's length. Each package adds its own with `add_scrape_source`
  (`hub.sync.gauges`, `hub.audit.gauges`, `hub.notify.gauges`).

`/metrics` is open unless `METRICS_TOKEN` is configured; then a scrape must carry it as a
bearer token (Prometheus: `authorization: {credentials: ...}`).

Each request is also logged once on `hub.access` (method, path without query string,
status, duration) with its request id; health and metrics probes only at DEBUG.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from sqlalchemy.orm import Session

from hub import db
from hub.errors import problem_response

access_log = logging.getLogger("hub.access")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SOURCES_KEY = "aeohub.metrics.sources"
UNMATCHED_ROUTE = "<unmatched>"
QUIET_PATHS = ("/metrics", "/healthz", "/readyz")
_LABEL_VALUE = re.compile(r"[^a-z0-9_.:-]+")

REQUESTS = Counter("aeohub_http_requests", "HTTP requests answered, by route and status.",
                   ["method", "route", "status"])
LATENCY = Histogram("aeohub_http_request_duration_seconds",
                    "Time to answer an HTTP request, by route.", ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
VERIFY_DECISIONS = Counter("aeohub_verify_decisions",
                           "Verify answers given to partners, by decision.", ["decision"])
WEBHOOK_DELIVERIES = Counter("aeohub_webhook_deliveries",
                             "Webhook delivery attempts, by event type and outcome.",
                             ["event_type", "outcome"])

OAUTH_AUTH_FAILURES = Counter("aeohub_oauth_client_auth_failures",
                              "Failed client authentications at the OAuth endpoints.")
OAUTH_THROTTLED = Counter("aeohub_oauth_throttled",
                          "OAuth requests refused (429) after too many failed client "
                          "authentications, by the limit reached.", ["limit"])

ScrapeSource = Callable[[Session], Iterable[Metric]]


def _label(value: str) -> str:
    """A short, safe label value (callers pass domain words; this keeps them bounded)."""
    return _LABEL_VALUE.sub("_", str(value).strip().lower())[:64] or "unknown"


def count_decision(decision: str, count: int = 1) -> None:
    """Count `count` verify decisions of one kind ("recognised", "not_recognised", ...)."""
    counter = _DECISION_COUNTERS.get(decision)
    if counter is None:
        # A handful of kinds: each one's labelled counter is looked up once per process.
        counter = VERIFY_DECISIONS.labels(decision=_label(decision))
        if len(_DECISION_COUNTERS) < 64:
            _DECISION_COUNTERS[decision] = counter
    counter.inc(count)


_DECISION_COUNTERS: dict[str, Any] = {}


def count_webhook_delivery(outcome: str, *, event_type: str = "") -> None:
    """Count one webhook delivery attempt: outcome "delivered", "failed" or "gave_up".

    Deliveries run in the scheduler or worker process: expose that process's counters
    (multiprocess directory shared with the web workers on one host, or
    `prometheus_client.start_http_server` in the worker), or publish delivery state from
    the database with `add_scrape_source`.
    """
    WEBHOOK_DELIVERIES.labels(event_type=_label(event_type or "any"),
                              outcome=_label(outcome)).inc()


def count_oauth_failure() -> None:
    OAUTH_AUTH_FAILURES.inc()


def count_oauth_throttled(limit: str) -> None:
    """Count one request refused by the failure throttle ("address", "client_address")."""
    OAUTH_THROTTLED.labels(limit=_label(limit)).inc()


def add_scrape_source(app: Flask, source: ScrapeSource) -> None:
    """Add a function that yields metric families from the database at each scrape."""
    app.extensions.setdefault(SOURCES_KEY, []).append(source)


# -- exposition ---------------------------------------------------------------------------


def _process_registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


class _Families:
    """A collector over metric families already computed (one scrape's database gauges)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def exposition() -> bytes:
    """The whole scrape: this host's process counters, then the database gauges."""
    session = db.session()
    families: list[Metric] = []
    for source in current_app.extensions.get(SOURCES_KEY, []):
        families.extend(source(session))
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_Families(families))
    return generate_latest(_process_registry()) + generate_latest(scraped)


def metrics_view() -> Response:
    """The scrape; with `METRICS_TOKEN` configured, only for a request that carries it as
    a bearer token (compared in constant time)."""
    expected = current_app.config.get("METRICS_TOKEN")
    if expected:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 str(expected).encode()):
            return problem_response(
                401, "the metrics need the bearer token configured as METRICS_TOKEN",
                headers={"WWW-Authenticate": 'Bearer realm="aeohub-metrics"'})
    return Response(exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST,
                                           "Cache-Control": "no-store"})


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn `child_exit` hook: drop a dead worker's live gauges in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(worker.pid)


# -- request instrumentation --------------------------------------------------------------


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    rule = request.url_rule
    route = rule.rule if rule is not None else UNMATCHED_ROUTE
    status = str(response.status_code)
    REQUESTS.labels(method=request.method, route=route, status=status).inc()
    elapsed = time.perf_counter() - started if started is not None else None
    if elapsed is not None:
        LATENCY.labels(method=request.method, route=route).observe(elapsed)
    level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
    if access_log.isEnabledFor(level):
        duration = f" {elapsed * 1000:.1f}ms" if elapsed is not None else ""
        access_log.log(level, "%s %s %s%s", request.method, request.path, status, duration)
    return response


def init_app(app: Flask) -> None:
    """Instrument every request and serve /metrics."""
    # First among before_request hooks, so requests refused early (401, 429) are timed too.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_observe)
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
