"""`GET /metrics`: request counters by route, database gauges, decision counters."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from hub import db, metrics
from hub.arrangements.service import load_reference_data
from hub.audit import record
from hub.sync import connections as conns
from hub.sync import engine
from tests.sync.feeds import eu_row, write_feed


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_not_by_path(client):
    before = scrape(client)
    assert client.get("/healthz").status_code == 200
    assert client.get("/no/such/page/123").status_code == 404
    assert client.get("/no/such/page/456").status_code == 404
    after = scrape(client)
    key = {"method": "GET", "route": "/healthz", "status": "200"}
    assert value(after, "aeohub_http_requests_total", **key) == \
        value(before, "aeohub_http_requests_total", **key) + 1
    missing = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert value(after, "aeohub_http_requests_total", **missing) == \
        value(before, "aeohub_http_requests_total", **missing) + 2
    assert not any("/no/such" in str(labels) for _name, labels in after)
    count = ("aeohub_http_request_duration_seconds_count",
             (("method", "GET"), ("route", "/healthz")))
    assert after[count] == before.get(count, 0) + 1


def test_routes_with_parameters_use_the_rule(app, client):
    @app.get("/api/v1/_probe/<int:item>")
    def _probe(item: int) -> dict[str, int]:
        return {"item": item}

    labels = {"method": "GET", "route": "/api/v1/_probe/<int:item>", "status": "200"}
    before = value(scrape(client), "aeohub_http_requests_total", **labels)
    client.get("/api/v1/_probe/1")
    client.get("/api/v1/_probe/2")
    assert value(scrape(client), "aeohub_http_requests_total", **labels) == before + 2


def test_verify_decisions_and_webhook_deliveries_are_counted(client):
    before = scrape(client)
    metrics.count_decision("recognised")
    metrics.count_decision("recognised")
    metrics.count_decision("Not Recognised")
    metrics.count_decision("unknown_trader", 3)
    metrics.count_webhook_delivery("delivered", event_type="operator.suspended")
    metrics.count_webhook_delivery("failed", event_type="operator.suspended")
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("aeohub_verify_decisions_total", decision="recognised") == 2
    assert delta("aeohub_verify_decisions_total", decision="not_recognised") == 1
    assert delta("aeohub_verify_decisions_total", decision="unknown_trader") == 3
    assert delta("aeohub_webhook_deliveries_total", event_type="operator.suspended",
                 outcome="delivered") == 1
    assert delta("aeohub_webhook_deliveries_total", event_type="operator.suspended",
                 outcome="failed") == 1


def test_sync_runs_feed_ages_and_pending_work_come_from_the_database(app, client, tmp_path):
    feed = write_feed(tmp_path / "eu.csv", [])
    settings = conns.SyncSettings.from_config(app.config)
    with app.app_context():
        session = db.session()
        load_reference_data(session)
        connection = conns.add_connection(
            session, settings, name="eu-csv", connector_type="csv_snapshot",
            programmes=["EU-AEO"], config={"path": str(feed), "programme": "EU-AEO"},
            schedule="interval:1h")
        session.commit()
        connection_id = connection.id
    empty = scrape(client)
    assert value(empty, "aeohub_feed_stale", connection="eu-csv") == 1
    assert ("aeohub_feed_age_seconds", (("connection", "eu-csv"),)) not in empty

    database = db.get_db(app)
    held = engine.run_sync(database, settings, connection_id)
    assert held is not None and held.status == "needs_confirmation"
    waiting = scrape(client)
    assert value(waiting, "aeohub_sync_runs", connection="eu-csv",
                 status="needs_confirmation") == 1
    assert value(waiting, "aeohub_sync_runs_held") == 1
    write_feed(feed, [eu_row(1), eu_row(2, status="exploded")])
    newer = engine.run_sync(database, settings, connection_id)
    assert newer is not None and newer.status == "succeeded"
    samples = scrape(client)
    assert value(samples, "aeohub_sync_runs", connection="eu-csv", status="succeeded") == 1
    # the newer run superseded the held one: it can no longer be confirmed
    assert value(samples, "aeohub_sync_runs", connection="eu-csv",
                 status="superseded") == 1
    assert value(samples, "aeohub_sync_runs_held") == 0
    assert value(samples, "aeohub_sync_runs_running") == 0
    assert value(samples, "aeohub_quarantine_open", connection="eu-csv") == 1
    assert value(samples, "aeohub_feed_stale", connection="eu-csv") == 0
    assert 0 <= value(samples, "aeohub_feed_age_seconds", connection="eu-csv") < 60
    assert value(samples, "aeohub_feed_consecutive_failures", connection="eu-csv") == 0
    # reference load, connection added, held, superseded, succeeded
    assert value(samples, "aeohub_audit_entries") == 5


def test_scrape_sources_can_be_added(app, client):
    def webhooks_pending(_session):
        family = GaugeMetricFamily("aeohub_test_pending", "A test source.")
        family.add_metric([], 7)
        return [family]

    metrics.add_scrape_source(app, webhooks_pending)
    assert value(scrape(client), "aeohub_test_pending") == 7


def test_audit_entries_gauge_counts_the_chain(app, client):
    with app.app_context():
        record(db.session(), "user.login", actor="user:a")
        db.session().commit()
    assert value(scrape(client), "aeohub_audit_entries") == 1


def test_multiprocess_mode_adds_up_the_workers(tmp_path, committed_db):
    """With PROMETHEUS_MULTIPROC_DIR, a scrape sums the counters of every process."""
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    script = textwrap.dedent(f"""
        import sys
        from hub import create_app
        app = create_app({{"ENV": "testing", "DATABASE_URL": {committed_db.url!r},
                          "IMPORT_DIR": {str(tmp_path)!r}}})
        client = app.test_client()
        for _ in range(int(sys.argv[1])):
            client.get("/healthz")
        if sys.argv[2] == "scrape":
            sys.stdout.write(client.get("/metrics").get_data(as_text=True))
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    first = subprocess.run([sys.executable, "-c", script, "3", "quiet"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, "-c", script, "2", "scrape"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0, second.stderr
    healthz = [s for f in text_string_to_metric_families(second.stdout) for s in f.samples
               if s.name == "aeohub_http_requests_total" and s.labels.get("route") == "/healthz"]
    assert sum(s.value for s in healthz) == 5
