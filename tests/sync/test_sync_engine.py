"""The sync pipeline on a CSV feed: counts, history, quarantine, guards, dry runs."""

from __future__ import annotations

import json

import pytest
from click.testing import Result
from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult

from hub import db
from hub.errors import InvalidInput
from hub.registry.models import (
    Administration,
    Operator,
    OperatorEvent,
    OperatorIdentifier,
    Programme,
)
from hub.sync import connections as conns
from hub.sync import engine, quarantine
from hub.sync.models import QuarantinedRecord, StagedRecord, SyncLease
from tests.sync.feeds import eu_row, write_feed


def sync(app, connection_id, **kw):
    return engine.run_sync(db.get_db(app), conns.SyncSettings.from_config(app.config),
                           connection_id, **kw)


def counts(run):
    return {k: run.counts.get(k, 0) for k in engine.COUNT_NAMES}


def operators(app):
    with app.app_context():
        return {o.trader_id: o for o in db.session().scalars(select(Operator))}


def events(app, kind=None):
    with app.app_context():
        query = select(func.count()).select_from(OperatorEvent)
        if kind:
            query = query.where(OperatorEvent.kind == kind)
        return db.session().scalar(query)


def test_first_sync_then_unchanged_then_churn(hub_app, feed, connection_id):
    rows = [eu_row(i) for i in range(1, 11)]
    write_feed(feed, rows)
    first = sync(hub_app, connection_id)
    assert first.status == "succeeded", first.error
    assert counts(first) == {"read": 10, "created": 10, "updated": 0, "unchanged": 0,
                             "removed": 0, "quarantined": 0}
    assert len(operators(hub_app)) == 10
    created_events = events(hub_app)

    second = sync(hub_app, connection_id)
    assert counts(second) == {"read": 10, "created": 0, "updated": 0, "unchanged": 10,
                              "removed": 0, "quarantined": 0}
    assert events(hub_app) == created_events

    rows[0] = eu_row(1, categories="AEOC:valid:2019-03-01|AEOS:suspended:2024-05-01")
    rows[1] = eu_row(2, legal_name="Muster Logistik Zwei SE")
    write_feed(feed, rows)
    third = sync(hub_app, connection_id)
    assert counts(third)["updated"] == 2 and counts(third)["unchanged"] == 8
    ops = operators(hub_app)
    aeos = {c["code"]: c["status"] for c in ops["DE000000000000001"].categories}
    assert aeos == {"AEOC": "valid", "AEOS": "suspended"}
    assert ops["DE000000000000002"].legal_name == "Muster Logistik Zwei SE"
    assert events(hub_app, "categories_changed") == 1
    with hub_app.app_context():
        programme = db.session().scalars(select(Programme).where(Programme.code == "EU-AEO")).one()
        assert programme.data_version is not None


def test_invalid_rows_are_quarantined_with_every_reason(hub_app, feed, connection_id):
    rows = [eu_row(i) for i in range(1, 6)]
    rows.append(eu_row(6, trader_id="D", status="sleeping", country="Germany",
                       categories="AEOX:valid:2019-01-01"))
    write_feed(feed, rows)
    run = sync(hub_app, connection_id)
    assert counts(run)["created"] == 5 and counts(run)["quarantined"] == 1
    with hub_app.app_context():
        record = db.session().scalars(select(QuarantinedRecord)).one()
        fields_ = {r["field"] for r in record.reasons}
        assert {"status", "country"} <= fields_
        assert record.position and "line" in record.position


def test_quarantined_row_keeps_last_good_state(hub_app, feed, connection_id):
    rows = [eu_row(i) for i in range(1, 21)]
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    rows[4] = eu_row(5, status="exploded")  # the operator's new row is broken
    write_feed(feed, rows)
    run = sync(hub_app, connection_id)
    assert run.status == "succeeded"
    assert counts(run)["quarantined"] == 1 and counts(run)["removed"] == 0
    op = operators(hub_app)["DE000000000000005"]
    assert op.status == "valid" and op.removed_at is None

    # fixed and replayed from quarantine
    with hub_app.app_context():
        session = db.session()
        record = session.scalars(select(QuarantinedRecord)).one()
        with pytest.raises(InvalidInput, match="still fails"):
            quarantine.replay(session, record.id)
        session.rollback()
        quarantine.replay(session, record.id, {"status": "suspended",
                                               "status_effective": "2024-06-01"})
        session.commit()
    assert operators(hub_app)["DE000000000000005"].status == "suspended"


def test_duplicate_stable_keys_are_quarantined_not_merged(hub_app, feed, connection_id):
    rows = [eu_row(i) for i in range(1, 21)]
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    rows.append(eu_row(3, legal_name="Impostor GmbH"))
    write_feed(feed, rows)
    run = sync(hub_app, connection_id)
    assert counts(run)["quarantined"] == 2
    assert counts(run)["removed"] == 0
    assert operators(hub_app)["DE000000000000003"].legal_name == "Muster Logistik 3 GmbH"


def test_a_key_met_again_in_a_later_batch_writes_none_of_its_staged_history(
        hub_app, feed, connection_id):
    """A renamed operator and a new one, each listed again two batches later: both were
    staged with their events and identifiers, then turned into keep markers. The renamed
    operator keeps its state and history, and the new one is not created; another
    renamed operator, listed once, is updated with its one event."""
    rows = [eu_row(i) for i in range(1, 21)]
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    before = events(hub_app)
    rows[9] = eu_row(10, legal_name="Also Renamed GmbH")
    changed = [eu_row(3, legal_name="Renamed GmbH"), eu_row(25)]
    write_feed(feed, [*changed, *rows[3:], *rows[:2], *changed])
    run = sync(hub_app, connection_id)
    assert (counts(run)["quarantined"], counts(run)["created"], counts(run)["updated"]) == (
        4, 0, 1)
    known = operators(hub_app)
    assert "DE000000000000025" not in known
    assert known["DE000000000000003"].legal_name == "Muster Logistik 3 GmbH"
    assert known["DE000000000000010"].legal_name == "Also Renamed GmbH"
    assert events(hub_app) == before + 1
    with hub_app.app_context():
        assert db.session().scalar(select(func.count()).select_from(
            OperatorIdentifier).where(OperatorIdentifier.value == "DE000000000000025")) == 0


def test_mass_removal_is_held_then_confirmed(hub_app, feed, connection_id):
    rows = [eu_row(i) for i in range(1, 21)]
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    write_feed(feed, rows[:15])  # 5 of 20 gone: 25%
    held = sync(hub_app, connection_id)
    assert held.status == "needs_confirmation"
    assert "would be removed" in held.held_reason and "25%" in held.held_reason
    assert all(o.removed_at is None for o in operators(hub_app).values())
    confirmed = engine.confirm(db.get_db(hub_app), conns.SyncSettings.from_config(
        hub_app.config), held.id)
    assert confirmed.status == "succeeded"
    assert counts(confirmed)["removed"] == 5
    gone = [o for o in operators(hub_app).values() if o.removed_at is not None]
    assert len(gone) == 5 and events(hub_app, "removed") == 5
    with hub_app.app_context():
        assert db.session().scalar(select(func.count()).select_from(StagedRecord)) == 0


def test_small_removal_passes_and_mass_status_change_is_held(hub_app, feed, connection_id):
    rows = [eu_row(i) for i in range(1, 21)]
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    write_feed(feed, rows[:19])  # 1 of 20 = 5%: allowed
    run = sync(hub_app, connection_id)
    assert run.status == "succeeded" and counts(run)["removed"] == 1
    changed = [eu_row(i, status="suspended", status_effective="2024-06-01")
               for i in range(1, 20)]
    write_feed(feed, changed)
    held = sync(hub_app, connection_id)
    assert held.status == "needs_confirmation" and "change status" in held.held_reason
    discarded = engine.discard(db.get_db(hub_app), held.id)
    assert discarded.status == "discarded"
    assert all(o.status == "valid" for o in operators(hub_app).values())


def test_empty_feed_is_held(hub_app, feed, connection_id):
    write_feed(feed, [eu_row(i) for i in range(1, 4)])
    sync(hub_app, connection_id)
    write_feed(feed, [])
    run = sync(hub_app, connection_id)
    assert run.status == "needs_confirmation" and "empty" in run.held_reason, run.error
    assert all(o.removed_at is None for o in operators(hub_app).values())


def test_dry_run_applies_nothing(hub_app, feed, connection_id):
    write_feed(feed, [eu_row(i) for i in range(1, 6)] + [eu_row(6, status="bad")])
    run = sync(hub_app, connection_id, dry_run=True)
    assert run.status == "succeeded" and run.dry_run
    assert counts(run)["created"] == 5 and counts(run)["quarantined"] == 1
    assert operators(hub_app) == {}
    with hub_app.app_context():
        assert db.session().scalar(select(func.count()).select_from(QuarantinedRecord)) == 0
        # its staged rows stay for `sync diff` until the connection's next run
        assert db.session().scalar(select(func.count()).select_from(StagedRecord)) == 5
    assert sync(hub_app, connection_id).status == "succeeded"
    with hub_app.app_context():
        assert db.session().scalar(select(func.count()).select_from(StagedRecord)) == 0


def test_failed_run_keeps_serving_the_last_good_data(hub_app, feed, connection_id):
    write_feed(feed, [eu_row(i) for i in range(1, 4)])
    sync(hub_app, connection_id)
    feed.unlink()
    run = sync(hub_app, connection_id)
    assert run.status == "failed" and run.error
    assert len(operators(hub_app)) == 3
    with hub_app.app_context():
        connection = conns.get_connection(db.session(), connection_id)
        assert connection.consecutive_failures == 1


def test_paths_and_hosts_are_restricted(hub_app, tmp_path):
    settings = conns.SyncSettings.from_config(hub_app.config)
    with hub_app.app_context():
        session = db.session()
        with pytest.raises(InvalidInput) as exc:
            conns.add_connection(session, settings, name="db-thief", connector_type="csv_snapshot",
                                 programmes=["EU-AEO"], schedule="interval:1h",
                                 config={"path": "/etc/passwd", "programme": "EU-AEO"})
        assert "config.path" in exc.value.fields
        session.rollback()
        with pytest.raises(InvalidInput) as exc:
            conns.add_connection(session, settings, name="probe", connector_type="csv_snapshot",
                                 programmes=["EU-AEO"], schedule="interval:1h",
                                 config={"url": "http://10.1.2.3/registry.csv",
                                         "programme": "EU-AEO"})
        assert "config.url" in exc.value.fields
        session.rollback()
        with pytest.raises(InvalidInput) as exc:
            conns.add_connection(session, settings, name="bad", connector_type="csv_snapshot",
                                 programmes=["EU-AEO"], schedule="every hour",
                                 config={"path": str(tmp_path / "x.csv"), "programme": "EU-AEO"})
        assert "schedule" in exc.value.fields


def test_cli_connections_and_sync_run(hub_app, feed, tmp_path):
    write_feed(feed, [eu_row(i) for i in range(1, 4)])
    runner = hub_app.test_cli_runner()
    config = json.dumps({"base_url": "http://127.0.0.1:9/", "token": "s3cr3t-token",
                         "programme": "EU-AEO"})
    added = runner.invoke(args=["connections", "add", "--name", "eu-node", "--type", "aeo_node",
                                "--programme", "EU-AEO", "--config", config,
                                "--schedule", "interval:15m", "--scope", "FR"])
    assert added.exit_code == 0, added.output
    shown = runner.invoke(args=["connections", "show", "eu-node"])
    assert "s3cr3t-token" not in shown.output and "********" in shown.output
    with hub_app.app_context():
        stored = conns.get_connection(db.session(), "eu-node")
        assert "s3cr3t-token" not in json.dumps(stored.config)
        assert "s3cr3t-token" not in (stored.secrets_encrypted or "")
    bad = runner.invoke(args=["connections", "add", "--name", "x", "--type", "aeo_node",
                              "--programme", "EU-AEO", "--config", '{"base_url": "nope"}',
                              "--schedule", "interval:1h"])
    assert bad.exit_code == 1 and "config.base_url" in bad.output
    overlapping = runner.invoke(args=[
        "connections", "add", "--name", "eu-csv", "--type", "csv_snapshot",
        "--programme", "EU-AEO", "--config",
        json.dumps({"path": str(feed), "programme": "EU-AEO"}), "--schedule", "interval:1h"])
    assert overlapping.exit_code == 1 and "already syncs EU-AEO" in overlapping.output
    added = runner.invoke(args=["connections", "add", "--name", "eu-csv", "--type",
                                "csv_snapshot", "--programme", "EU-AEO", "--config",
                                json.dumps({"path": str(feed), "programme": "EU-AEO"}),
                                "--schedule", "interval:1h", "--scope", "DE"])
    assert added.exit_code == 0, added.output
    result = runner.invoke(args=["sync", "run", "eu-csv", "--json"])
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["status"] == "succeeded" and last["created"] == 3
    assert {"read", "created", "updated", "unchanged", "removed", "quarantined"} <= set(last)
    listed = runner.invoke(args=["connections", "list"])
    assert "eu-csv" in listed.output and "never synced" in listed.output  # eu-node
    down = runner.invoke(args=["sync", "run", "eu-node", "--json"])
    assert down.exit_code == 1
    assert json.loads(down.output.strip().splitlines()[-1])["status"] == "failed"


def test_readyz_reports_feed_freshness(hub_app, feed, connection_id):
    client = hub_app.test_client()
    before = client.get("/readyz").get_json()["checks"]["feeds"]
    assert before["ok"] is True and before["stale"] == ["eu-csv"]
    write_feed(feed, [eu_row(1)])
    sync(hub_app, connection_id)
    after = client.get("/readyz").get_json()
    assert after["status"] == "ready"
    feeds = after["checks"]["feeds"]
    assert feeds["stale"] == [] and feeds["feeds"][0]["age_seconds"] < 60


def _take_over_lease(app, connection_id):
    """What another process does once this run's lease has expired: takes it over."""
    with db.get_db(app).session_scope(write=True) as session:
        taken = session.execute(update(SyncLease).where(
            SyncLease.connection_id == connection_id).values(holder="other-host:1:abcd"))
        assert isinstance(taken, CursorResult) and taken.rowcount == 1


def _lease_holder(app, connection_id):
    with app.app_context():
        return db.session().scalar(select(SyncLease.holder).where(
            SyncLease.connection_id == connection_id))


@pytest.mark.parametrize("step", ["staging", "switch"])
def test_a_run_whose_lease_was_taken_over_applies_nothing_more(hub_app, feed, connection_id,
                                                               monkeypatch, step):
    """A run held up past its lease, which another process then took over, is refused
    at its next committed step (the step renews the lease in its own transaction): it
    fails, the registry keeps what it had, and the other process keeps the lease."""
    write_feed(feed, [eu_row(i) for i in range(1, 4)])
    assert sync(hub_app, connection_id).status == "succeeded"
    before = {k: o.legal_name for k, o in operators(hub_app).items()}
    write_feed(feed, [eu_row(i, legal_name=f"Renamed {i} GmbH") for i in range(1, 6)])

    # (between the run's transactions: on SQLite a writer waits for the run's own)
    if step == "staging":  # taken over before the second batch is staged
        classify, seen = engine.SyncJob._classify, []

        def classified(job, batch):
            seen.append(batch)
            if len(seen) == 2:
                _take_over_lease(hub_app, connection_id)
            return classify(job, batch)

        monkeypatch.setattr(engine.SyncJob, "_classify", classified)
    else:  # taken over once every batch is staged, as the switch begins
        switch = engine.SyncJob._switch

        def late(job, **kw):
            _take_over_lease(hub_app, connection_id)
            return switch(job, **kw)

        monkeypatch.setattr(engine.SyncJob, "_switch", late)
    run = sync(hub_app, connection_id)
    assert run.status == "failed"
    assert "taken over by another process" in run.error
    assert {k: o.legal_name for k, o in operators(hub_app).items()} == before
    assert _lease_holder(hub_app, connection_id) == "other-host:1:abcd"


def test_a_connection_name_is_unique_within_its_administration_only(hub_app, feed, tmp_path):
    """Another administration's names are not this one's to learn: both may name a
    connection `registry`. Across the hub the name is then ambiguous, and the command
    line asks for the id."""
    write_feed(feed, [eu_row(1)])
    runner = hub_app.test_cli_runner()

    def add(programme: str) -> Result:
        return runner.invoke(args=[
            "connections", "add", "--name", "registry", "--type", "csv_snapshot",
            "--programme", programme, "--config",
            json.dumps({"path": str(feed), "programme": programme}),
            "--schedule", "interval:1h"])

    assert add("EU-AEO").exit_code == 0
    assert add("UK-AEO").exit_code == 0
    again = add("EU-AEO")
    assert again.exit_code == 1 and "a connection named 'registry' exists" in again.output
    with hub_app.app_context():
        session = db.session()
        eu, uk = (conns.get_connection(session, "registry", administration_id=session.scalar(
            select(Administration.id).where(Administration.code == code))) for code in ("EU", "UK"))
        assert (eu.administration.code, uk.administration.code) == ("EU", "UK")
        with pytest.raises(InvalidInput) as ambiguous:
            conns.get_connection(session, "registry")
        assert f"{min(eu.id, uk.id)} (" in ambiguous.value.detail
        ids = {eu.administration.code: eu.id, uk.administration.code: uk.id}
    shown = runner.invoke(args=["connections", "show", "registry"])
    assert shown.exit_code == 1
    assert "2 connections are named 'registry': give the id" in shown.output
    by_id = runner.invoke(args=["connections", "show", str(ids["UK"])])
    assert by_id.exit_code == 0 and "UK-AEO" in by_id.output
