"""Admin API for the sync engine: connections, triggered syncs, runs, quarantine, reach.

On both backends, through the app's HTTP interface with real bearer tokens. Syncs run
through the real engine on CSV feeds in the app's import directory; a triggered sync is
picked up by the real scheduler's notification poll.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.audit.models import AuditEntry
from hub.db import Database
from hub.registry.models import Operator
from hub.sync import connections as conns
from hub.sync import engine
from hub.sync.models import Connection, SyncRun
from hub.sync.scheduler import HubScheduler
from tests.auth.hubkit import bearer, make_client
from tests.sync.feeds import eu_row, write_feed

API = "/api/v1/admin"


class Caller:
    """A test client that sends one client's bearer token."""

    def __init__(self, client: Any, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers

    def __call__(self, method: str, path: str, body: Any = None,
                 **query: Any) -> Any:
        return self.client.open(API + path, method=method, json=body,
                                query_string=query or None, headers=self.headers)


@pytest.fixture
def kit(ref_app, committed_db: Database, tmp_path: Path) -> dict[str, Any]:
    client = ref_app.test_client()

    def caller(programme: str | None, scopes: str) -> Caller:
        return Caller(client, bearer(committed_db, make_client(committed_db, programme,
                                                               scopes)))

    return {"app": ref_app, "db": committed_db, "dir": tmp_path,
            "admin": caller(None, "admin"), "eu": caller("EU-AEO", "node:admin"),
            "uk": caller("UK-AEO", "node:admin"), "partner": caller("US-CTPAT", "verify")}


def csv_connection(call: Caller, name: str, path: Path, programme: str = "EU-AEO") -> int:
    write_feed(path, []) if not path.exists() else None
    response = call("POST", "/connections", {
        "name": name, "type": "csv_snapshot", "programmes": [programme],
        "config": {"path": str(path), "programme": programme}, "schedule": "interval:1h"})
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def sync(kit: dict[str, Any], connection_id: int) -> SyncRun:
    run = engine.run_sync(kit["db"], conns.SyncSettings.from_config(kit["app"].config),
                          connection_id)
    assert run is not None
    return run


def test_connections_create_show_edit_and_secrets_stay_write_only(kit):
    eu = kit["eu"]
    created = eu("POST", "/connections", {
        "name": "de-node", "type": "aeo_node", "programmes": ["EU-AEO"],
        "config": {"base_url": "http://127.0.0.1:9/", "token": "s3cret-node-token",
                   "programme": "EU-AEO"},
        "schedule": "interval:15m"})
    assert created.status_code == 201, created.json
    conn_id = created.json["id"]
    assert created.headers["Location"].endswith(f"/connections/{conn_id}")
    assert created.json["administration"] == "EU"
    assert created.json["config"]["token"] == "********"
    assert created.json["config"]["base_url"] == "http://127.0.0.1:9/"

    for response in (eu("GET", "/connections"), eu("GET", f"/connections/{conn_id}"),
                     kit["admin"]("GET", "/connections")):
        assert response.status_code == 200
        assert "s3cret-node-token" not in response.get_data(as_text=True)

    edited = eu("PATCH", f"/connections/{conn_id}",
                {"schedule": "interval:1h", "max_removal_share": 0.2,
                 "config": {"token": "rotated-token"}})
    assert edited.status_code == 200, edited.json
    assert edited.json["schedule"] == "interval:1h"
    assert edited.json["max_removal_share"] == 0.2
    assert edited.json["snapshot_schedule"] is None
    weekly = eu("PATCH", f"/connections/{conn_id}", {"snapshot_schedule": "cron:0 2 * * sun"})
    assert weekly.status_code == 200, weekly.json
    assert weekly.json["snapshot_schedule"] == "cron:0 2 * * sun"
    assert eu("GET", f"/connections/{conn_id}").json["snapshot_schedule"] == "cron:0 2 * * sun"
    cleared = eu("PATCH", f"/connections/{conn_id}", {"snapshot_schedule": "none"})
    assert cleared.status_code == 200 and cleared.json["snapshot_schedule"] is None
    assert "rotated-token" not in edited.get_data(as_text=True)
    with kit["db"].session_scope() as session:
        row = session.get(Connection, conn_id)
        assert row is not None
        full = conns.full_config(row, conns.SyncSettings.from_config(kit["app"].config))
        assert full["token"] == "rotated-token"
        assert "rotated-token" not in str(row.config) and "token" not in row.config


@pytest.mark.parametrize(("config", "field"), [
    ({"base_url": "not a url", "programme": "EU-AEO"}, "config.base_url"),
    ({"base_url": "http://example.org/", "programme": "EU-AEO"}, "config.base_url"),
    ({"programme": "EU-AEO"}, "config.base_url"),
])
def test_invalid_config_is_a_problem_naming_the_field(kit, config, field):
    response = kit["admin"]("POST", "/connections", {
        "name": "bad", "type": "aeo_node", "programmes": ["EU-AEO"], "config": config,
        "schedule": "interval:1h"})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert field in {e["field"] for e in response.json["errors"]}
    assert kit["admin"]("GET", "/connections").json["connections"] == []


def test_invalid_edit_and_request_fields_are_named(kit):
    admin = kit["admin"]
    conn_id = csv_connection(admin, "eu-csv", kit["dir"] / "eu.csv")
    bad_path = admin("PATCH", f"/connections/{conn_id}", {"config": {"batch_size": "many"}})
    assert bad_path.status_code == 400
    assert "config.batch_size" in {e["field"] for e in bad_path.json["errors"]}
    bad_schedule = admin("PATCH", f"/connections/{conn_id}", {"schedule": "often"})
    assert bad_schedule.status_code == 400
    assert {e["field"] for e in bad_schedule.json["errors"]} == {"schedule"}
    bad_snapshots = admin("PATCH", f"/connections/{conn_id}", {"snapshot_schedule": "often"})
    assert bad_snapshots.status_code == 400
    assert {e["field"] for e in bad_snapshots.json["errors"]} == {"snapshot_schedule"}
    unknown = admin("POST", "/connections", {"name": "x"})
    assert unknown.status_code == 400
    assert {"type", "programmes", "config", "schedule"} <= {
        e["field"] for e in unknown.json["errors"]}
    taken = admin("POST", "/connections", {
        "name": "eu-csv", "type": "csv_snapshot", "programmes": ["EU-AEO"],
        "config": {"path": str(kit["dir"] / "eu.csv"), "programme": "EU-AEO"},
        "schedule": "interval:1h"})
    assert taken.status_code == 409


def test_trigger_leaves_the_run_to_the_scheduler(kit):
    admin = kit["admin"]
    feed = write_feed(kit["dir"] / "eu.csv", [eu_row(i) for i in range(1, 6)])
    conn_id = csv_connection(admin, "eu-csv", feed)
    response = admin("POST", f"/connections/{conn_id}/sync")
    assert response.status_code == 202, response.json
    assert response.json["status"] == "requested"
    again = admin("POST", f"/connections/{conn_id}/sync")
    assert again.json["requested_at"] == response.json["requested_at"]  # coalesced
    with kit["db"].session_scope() as session:
        assert session.scalar(select(func.count()).select_from(SyncRun)) == 0
    assert admin("GET", f"/connections/{conn_id}").json["sync_requested_at"] is not None

    scheduler = HubScheduler(kit["app"], poll_seconds=0.1)
    scheduler.poll_notifications()
    scheduler.pool.shutdown(wait=True)
    runs = admin("GET", "/runs", connection=conn_id).json["runs"]
    assert [(r["trigger"], r["status"], r["created"]) for r in runs] == [
        ("notify", "succeeded", 5)]
    assert admin("GET", f"/connections/{conn_id}").json["sync_requested_at"] is None

    admin("PATCH", f"/connections/{conn_id}", {"enabled": False})
    assert admin("POST", f"/connections/{conn_id}/sync").status_code == 409


def test_a_failing_connection_says_when_its_backoff_ends(kit):
    """30 s after the first failure, 60 s after the second; none once a run succeeds."""
    admin = kit["admin"]
    feed = write_feed(kit["dir"] / "eu.csv", [eu_row(i) for i in range(1, 4)])
    conn_id = csv_connection(admin, "eu-csv", feed)
    assert admin("GET", f"/connections/{conn_id}").json["retry_after"] is None
    feed.unlink()
    for failures, wait in ((1, 30), (2, 60)):
        assert sync(kit, conn_id).status == "failed"
        shown = admin("GET", f"/connections/{conn_id}").json
        assert shown["consecutive_failures"] == failures
        ends = dt.datetime.fromisoformat(shown["retry_after"])
        assert ends - dt.datetime.fromisoformat(shown["last_failure_at"]) == dt.timedelta(
            seconds=wait)
    write_feed(feed, [eu_row(1)])
    assert sync(kit, conn_id).status == "succeeded"
    assert admin("GET", f"/connections/{conn_id}").json["retry_after"] is None


def test_runs_held_confirmed_discarded_and_quarantine_reviewed(kit):
    admin = kit["admin"]
    feed = kit["dir"] / "eu.csv"
    rows = [eu_row(i) for i in range(1, 21)]
    write_feed(feed, [*rows, eu_row(21, status="exploded"), eu_row(22, country="Germany")])
    conn_id = csv_connection(admin, "eu-csv", feed)
    first = sync(kit, conn_id)
    assert first.status == "succeeded"

    detail = admin("GET", f"/runs/{first.id}")
    assert detail.status_code == 200
    assert (detail.json["created"], detail.json["quarantined"]) == (20, 2)
    assert detail.json["connection"] == "eu-csv"

    # the broken rows stay in the feed: their entries stay open (one each, seen twice)
    write_feed(feed, [*rows[:15], eu_row(21, status="exploded"), eu_row(22, country="Germany")])
    held = sync(kit, conn_id)
    assert held.status == "needs_confirmation"
    listed = admin("GET", "/runs", status="needs_confirmation").json["runs"]
    assert [r["id"] for r in listed] == [held.id]
    assert "would be removed" in listed[0]["held_reason"]
    confirmed = admin("POST", f"/runs/{held.id}/confirm")
    assert confirmed.status_code == 200, confirmed.json
    assert (confirmed.json["status"], confirmed.json["removed"]) == ("succeeded", 5)
    with kit["db"].session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Operator)
                              .where(Operator.removed_at.is_not(None))) == 5
    assert admin("POST", f"/runs/{held.id}/confirm").status_code == 400  # not held now

    write_feed(feed, [])
    empty = sync(kit, conn_id)
    assert empty.status == "needs_confirmation"
    discarded = admin("POST", f"/runs/{empty.id}/discard")
    assert discarded.status_code == 200 and discarded.json["status"] == "discarded"

    page = admin("GET", "/runs", limit=2).json
    assert len(page["runs"]) == 2 and page["next_before"] is not None
    older = admin("GET", "/runs", limit=2, before=page["next_before"]).json
    assert [r["id"] for r in older["runs"]] == [first.id] and older["next_before"] is None

    records = admin("GET", "/quarantine", connection=conn_id).json["records"]
    assert len(records) == 2 and "record" not in records[0]
    by_key = {r["stable_key"]: r for r in records}
    bad_status = by_key["DE000000000000021"]
    shown = admin("GET", f"/quarantine/{bad_status['id']}").json
    assert shown["record"]["legal_name"] == "Muster Logistik 21 GmbH"
    assert "status" in {r["field"] for r in shown["reasons"]}

    still = admin("POST", f"/quarantine/{bad_status['id']}/replay", {})
    assert still.status_code == 400 and "still fails" in still.json["detail"]
    fixed = admin("POST", f"/quarantine/{bad_status['id']}/replay",
                  {"corrections": {"status": "valid"}})
    assert fixed.status_code == 200, fixed.json
    assert fixed.json["status"] == "replayed"
    assert fixed.json["resolved_by"].startswith("client:")
    with kit["db"].session_scope() as session:
        assert session.scalar(select(Operator.status).where(
            Operator.trader_id == "DE000000000000021")) == "valid"

    other = by_key["DE000000000000022"]
    dismissed = admin("POST", f"/quarantine/{other['id']}/dismiss", {"note": "not ours"})
    assert dismissed.status_code == 200
    assert (dismissed.json["status"], dismissed.json["resolution_note"]) == (
        "dismissed", "not ours")
    assert admin("GET", "/quarantine").json["records"] == []
    assert len(admin("GET", "/quarantine", status="dismissed").json["records"]) == 1


def test_node_admin_reaches_only_its_own_administration(kit):
    admin, eu, uk = kit["admin"], kit["eu"], kit["uk"]
    eu_feed = write_feed(kit["dir"] / "eu.csv", [eu_row(1), eu_row(2, status="exploded")])
    uk_feed = write_feed(kit["dir"] / "uk.csv",
                         [eu_row(3, programme="UK-AEO", status="exploded")])
    eu_id = csv_connection(eu, "eu-csv", eu_feed)
    uk_id = csv_connection(uk, "uk-csv", uk_feed, programme="UK-AEO")
    eu_run, uk_run = sync(kit, eu_id), sync(kit, uk_id)
    uk_record = admin("GET", "/quarantine", connection=uk_id).json["records"][0]["id"]
    eu_record = admin("GET", "/quarantine", connection=eu_id).json["records"][0]["id"]

    assert [c["name"] for c in admin("GET", "/connections").json["connections"]] == [
        "eu-csv", "uk-csv"]
    assert [c["name"] for c in eu("GET", "/connections").json["connections"]] == ["eu-csv"]
    assert [r["id"] for r in eu("GET", "/runs").json["runs"]] == [eu_run.id]
    assert [r["id"] for r in uk("GET", "/runs").json["runs"]] == [uk_run.id]
    assert [r["id"] for r in eu("GET", "/quarantine").json["records"]] == [eu_record]
    assert eu("GET", "/runs", connection=uk_id).json["runs"] == []
    assert eu("GET", "/quarantine", connection=uk_id).json["records"] == []

    # Neither seen nor touched: every path about the other administration answers 404.
    for method, path, body in [
        ("GET", f"/connections/{uk_id}", None),
        ("PATCH", f"/connections/{uk_id}", {"schedule": "interval:5m"}),
        ("POST", f"/connections/{uk_id}/sync", None),
        ("GET", f"/runs/{uk_run.id}", None),
        ("POST", f"/runs/{uk_run.id}/confirm", None),
        ("POST", f"/runs/{uk_run.id}/discard", None),
        ("GET", f"/quarantine/{uk_record}", None),
        ("POST", f"/quarantine/{uk_record}/replay", {"corrections": {"status": "valid"}}),
        ("POST", f"/quarantine/{uk_record}/dismiss", {}),
    ]:
        response = eu(method, path, body)
        assert response.status_code == 404, (method, path, response.json)
        assert "uk-csv" not in response.get_data(as_text=True)
    foreign = eu("POST", "/connections", {
        "name": "sneaky", "type": "csv_snapshot", "programmes": ["UK-AEO"],
        "config": {"path": str(uk_feed), "programme": "UK-AEO"}, "schedule": "interval:1h"})
    assert foreign.status_code == 403
    with kit["db"].session_scope() as session:
        uk_row = session.get(Connection, uk_id)
        assert uk_row is not None
        assert uk_row.schedule == "interval:1h" and uk_row.notify_requested_at is None
        uk_run_row = session.get(SyncRun, uk_run.id)
        assert uk_run_row is not None and uk_run_row.status == uk_run.status

    # The owner and the hub admin can act on it.
    assert uk("POST", f"/quarantine/{uk_record}/dismiss", {}).status_code == 200
    assert admin("POST", f"/connections/{uk_id}/sync").status_code == 202

    # Scopes: a partner client without node:admin or admin gets 403 everywhere.
    for method, path in [("GET", "/connections"), ("GET", "/runs"), ("GET", "/quarantine"),
                         ("GET", f"/connections/{eu_id}"), ("POST", f"/runs/{eu_run.id}/"
                                                                    "discard")]:
        assert kit["partner"](method, path).status_code == 403
    assert kit["app"].test_client().get(API + "/connections").status_code == 401


def test_a_run_names_the_columns_with_data_that_nothing_reads(kit):
    admin = kit["admin"]
    feed = kit["dir"] / "eu.csv"
    write_feed(feed, [eu_row(1), eu_row(2)])
    # the administration's export carries a clerk's column that no setting reads
    lines = feed.read_text(encoding="utf-8").splitlines()
    feed.write_text("\n".join([lines[0] + ",clerk,spare", lines[1] + ",J. Weber,",
                               lines[2] + ",,"]) + "\n", encoding="utf-8")
    conn_id = csv_connection(admin, "eu-csv", feed)
    run = sync(kit, conn_id)
    assert run.status == "succeeded", run.error
    detail = admin("GET", f"/runs/{run.id}")
    assert detail.status_code == 200
    assert detail.json["unread"] == ["clerk"]  # the empty column is not reported
    (listed,) = admin("GET", "/runs", connection=conn_id).json["runs"]
    assert listed["unread"] == ["clerk"]
    write_feed(feed, [eu_row(1), eu_row(2)])
    again = sync(kit, conn_id)
    assert admin("GET", f"/runs/{again.id}").json["unread"] == []


def test_the_audit_log_names_the_client_that_acted(ref_app, committed_db: Database,
                                                   tmp_path: Path) -> None:
    """Not `system`: the client whose token made the change."""
    credentials = make_client(committed_db, "EU-AEO", "node:admin")
    eu = Caller(ref_app.test_client(), bearer(committed_db, credentials))
    conn_id = csv_connection(eu, "eu-audited", tmp_path / "eu.csv")
    assert eu("PATCH", f"/connections/{conn_id}", {"staleness_seconds": 7200}).status_code == 200
    with committed_db.session_scope() as session:
        actors = {str(action): str(actor) for action, actor in session.execute(
            select(AuditEntry.action, AuditEntry.actor).where(
                AuditEntry.subject == f"connection:{conn_id}"))}
    assert actors == {"connection.added": f"client:{credentials.client_id}",
                      "connection.edited": f"client:{credentials.client_id}"}
