"""Honest outcomes: a bad row keeps its operator, the quarantine de-duplicates and closes
itself, every run ends in a terminal status, held and dry runs show their difference."""

from __future__ import annotations

import datetime as dt
import gc
import json
import threading

import pytest
from sqlalchemy import select, update

from connectors.base import Batch, ConnectorError, DeferredRecords
from connectors.csv_snapshot import CsvSnapshotConnector
from hub import clock as hub_clock
from hub import db
from hub.errors import Conflict
from hub.sync import admin, engine, lease, quarantine
from hub.sync import connections as conns
from hub.sync.models import Connection, QuarantinedRecord, SyncRun
from hub.sync.scheduler import HubScheduler, latest_fire
from tests.sync.feeds import eu_row, write_feed
from tests.sync.test_sync_engine import operators, sync
from tests.waiting import wait_until


def entries(app):
    with app.app_context():
        return db.session().scalars(select(QuarantinedRecord).order_by(
            QuarantinedRecord.id)).all()


@pytest.mark.parametrize("bad", [
    {"trader_id": "DE0000000000000X5!"},          # not an EORI any more
    {"authorised_on": "2019-02-30"},              # no such date
    {"legal_name": "M" * 5_000_000},              # a 5 MB field
    {"legal_name": "Muster\x00Logistik"},         # NUL: PostgreSQL text cannot hold it
])
def test_a_rejected_row_keeps_its_operator(hub_app, feed, connection_id, bad):
    rows = [eu_row(i) for i in range(1, 21)]
    write_feed(feed, rows)
    assert sync(hub_app, connection_id).status == "succeeded"
    rows[4] = eu_row(5, **bad)
    write_feed(feed, rows)
    run = sync(hub_app, connection_id)
    assert run.status == "succeeded", run.held_reason or run.error
    assert (run.counts["quarantined"], run.counts["removed"]) == (1, 0)
    kept = operators(hub_app)["DE000000000000005"]
    assert kept.removed_at is None and kept.legal_name == "Muster Logistik 5 GmbH"
    (entry,) = entries(hub_app)
    assert entry.operator_id == kept.id
    first = entry.reasons[0]
    field = next(iter(bad))
    # the real problem first: the field named (by the validator, or by the connector's
    # own finding, which comes before the fields)
    assert first["field"] == field or first["reason"].startswith(f"line 6: {field} "), (
        entry.reasons)
    assert len(json.dumps(entry.record)) < 10_000  # a 5 MB value is cut, not stored


def test_a_wrong_check_digit_is_tied_by_authorisation_number(hub_app, tmp_path):
    """A Swiss UID with a wrong check digit cannot give the stable key: the record is
    tied to its operator by its authorisation number, which keeps its state."""
    path = tmp_path / "ch.csv"
    rows = [eu_row(1, programme="CH-AEO", trader_id_scheme="CH_UID",
                   trader_id="CHE-787.789.327", authorisation_number="CHAEO0001",
                   country="CH", categories="AEO:valid:2019-03-01")]
    rows += [eu_row(i, programme="CH-AEO", trader_id_scheme="CH_UID",
                    trader_id=uid, authorisation_number=f"CHAEO000{i}", country="CH",
                    categories="AEO:valid:2019-03-01")
             for i, uid in ((2, "CHE-116.281.710"), (3, "CHE-105.838.471"))]
    write_feed(path, rows)
    with hub_app.app_context():
        row = conns.add_connection(
            db.session(), conns.SyncSettings.from_config(hub_app.config), name="ch",
            connector_type="csv_snapshot", programmes=["CH-AEO"], schedule="interval:1d",
            config={"path": str(path), "programme": "CH-AEO"})
        db.session().commit()
        conn_id = row.id
    first = sync(hub_app, conn_id)
    assert first.counts["created"] == 3, first.counts
    rows[0] = {**rows[0], "trader_id": "CHE-787.789.328"}
    write_feed(path, rows)
    run = sync(hub_app, conn_id)
    assert run.status == "succeeded" and run.counts["removed"] == 0
    (entry,) = entries(hub_app)
    assert entry.operator_id is not None and entry.reason_code == "invalid_identifier"


def test_quarantine_entries_repeat_close_themselves_and_stay_dismissed(
        hub_app, feed, connection_id):
    rows = [eu_row(i) for i in range(1, 21)]
    write_feed(feed, [*rows, eu_row(21, status="exploded"), eu_row(22, country="Germany")])
    for _ in range(3):
        assert sync(hub_app, connection_id).status == "succeeded"
    found = entries(hub_app)
    assert [(e.stable_key, e.seen_count, e.status) for e in found] == [
        ("DE000000000000021", 3, "open"), ("DE000000000000022", 3, "open")]
    with hub_app.app_context():
        quarantine.dismiss(db.session(), found[1].id, note="known, being fixed")
        db.session().commit()
    sync(hub_app, connection_id)
    assert [e.status for e in entries(hub_app)] == ["open", "dismissed"]
    # fixed at the source: 21 syncs cleanly and its entry closes; 22 changes (still bad)
    write_feed(feed, [*rows, eu_row(21), eu_row(22, country="Deutschland")])
    run = sync(hub_app, connection_id)
    assert run.counts["created"] == 1
    assert [(e.status, e.seen_count) for e in entries(hub_app)] == [
        ("resolved", 4), ("open", 5)]  # a dismissed record that changed is open again


def test_random_bytes_end_the_run_in_a_terminal_status(hub_app, feed, connection_id):
    write_feed(feed, [eu_row(i) for i in range(1, 5)])
    sync(hub_app, connection_id)
    feed.write_bytes(bytes(range(256)) * 40 + b"\xff\xfe\xed\n" * 50)
    run = sync(hub_app, connection_id)
    assert run.status in ("failed", "needs_confirmation")
    assert len(operators(hub_app)) == 4
    assert all(o.removed_at is None for o in operators(hub_app).values())


def test_batches_run_with_the_collector_paused_and_every_run_restores_it(
        hub_app, feed, connection_id, collector_at, monkeypatch):
    """A batch's short-lived objects are left to reference counting (`hub.gcpause`); the
    cyclic collector runs again after each batch, whether the run succeeds or fails."""
    write_feed(feed, [eu_row(i) for i in range(1, 5)])
    seen = collector_at("_classify")
    assert sync(hub_app, connection_id).status == "succeeded"
    assert seen and not any(seen) and gc.isenabled()

    def broken(self, batch):
        raise RuntimeError("the disk went away")

    monkeypatch.setattr(engine.SyncJob, "_classify", broken)
    run = sync(hub_app, connection_id)
    assert run.status == "failed" and "disk went away" in run.error
    assert gc.isenabled()


def test_a_deferred_batch_missing_fingerprints_fails_the_run(hub_app, feed, connection_id,
                                                              monkeypatch):
    """A connector whose deferred batch names fewer fingerprints than records is broken:
    the run fails saying so, and nothing is applied (no record is silently skipped)."""
    write_feed(feed, [eu_row(i) for i in range(1, 5)])
    read = CsvSnapshotConnector.read

    def short(self, state=None):
        for batch in read(self, state):
            records = batch.records
            assert isinstance(records, DeferredRecords)
            yield Batch(records=DeferredRecords(
                [records[i] for i in range(len(records))], records.fingerprints[:-1],
                records.programmes[:-1], lambda record: record),
                state=batch.state, complete=batch.complete)

    monkeypatch.setattr(CsvSnapshotConnector, "read", short)
    run = sync(hub_app, connection_id)
    assert run.status == "failed" and "fingerprint for some of its records" in run.error
    assert operators(hub_app) == {}


def test_a_newer_run_supersedes_a_held_one_and_a_dead_one_is_abandoned(
        hub_app, feed, connection_id):
    rows = [eu_row(i) for i in range(1, 21)]
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    write_feed(feed, rows[:10])
    held = sync(hub_app, connection_id)
    assert held.status == "needs_confirmation"
    with db.get_db(hub_app).session_scope(write=True) as session:  # a process that died
        session.add(SyncRun(connection_id=connection_id, trigger="schedule",
                            status="running", counts={}))
    write_feed(feed, rows)
    assert sync(hub_app, connection_id).status == "succeeded"
    with hub_app.app_context():
        statuses = [r.status for r in db.session().scalars(select(SyncRun).order_by(
            SyncRun.id))]
    assert statuses == ["succeeded", "superseded", "abandoned", "succeeded"]
    with pytest.raises(Exception, match="superseded"):
        engine.confirm(db.get_db(hub_app), conns.SyncSettings.from_config(hub_app.config),
                       held.id)


def test_a_dead_run_with_nothing_staged_is_abandoned_by_the_scheduler(hub_app,
                                                                       connection_id):
    with db.get_db(hub_app).session_scope(write=True) as session:
        session.add(SyncRun(connection_id=connection_id, trigger="schedule",
                            status="running", counts={}))
    assert len(engine.abandon_dead_runs(db.get_db(hub_app))) == 1
    with hub_app.app_context():
        assert db.session().scalar(select(SyncRun.status)) == "abandoned"


def test_held_and_dry_runs_list_their_difference(hub_app, feed, connection_id):
    rows = [eu_row(i) for i in range(1, 21)]
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    write_feed(feed, [*rows[:14], eu_row(15, legal_name="Renamed GmbH"),
                      eu_row(30), eu_row(31, status="bad")])
    for dry in (True, False):
        run = sync(hub_app, connection_id, dry_run=dry)
        assert run.status == ("succeeded" if dry else "needs_confirmation")
        summary = admin.run_summary(run)
        assert not summary["applied"]
        assert "would remove 5" in admin.counts_text(summary)
        with hub_app.app_context():
            session = db.session()
            run_row = session.get(SyncRun, run.id)
            assert run_row is not None
            removed = admin.difference(session, run_row, "remove", limit=2)
            assert [i["stable_key"] for i in removed["items"]] == [
                "DE000000000000016", "DE000000000000017"]
            rest = admin.difference(session, run_row, "remove", after=removed["next_after"])
            assert len(rest["items"]) == 3 and rest["next_after"] is None
            assert [i["stable_key"] for i in admin.difference(
                session, run_row, "update")["items"]] == ["DE000000000000015"]
            assert [i["stable_key"] for i in admin.difference(
                session, run_row, "create")["items"]] == ["DE000000000000030"]
    assert all(o.removed_at is None for o in operators(hub_app).values())
    runner = hub_app.test_cli_runner()
    shown = runner.invoke(args=["sync", "diff", str(run.id), "--kind", "remove"])
    assert shown.exit_code == 0 and "would remove: 5" in shown.output
    confirmed = runner.invoke(args=["sync", "confirm", str(run.id)])
    assert confirmed.exit_code == 0, confirmed.output
    applied = runner.invoke(args=["sync", "diff", str(run.id), "--kind", "create",
                                  "--kind", "remove"])  # from the events it wrote
    assert "create: 1\n  DE000000000000030" in applied.output
    assert "remove: 5\n  DE000000000000016" in applied.output
    rejected = runner.invoke(args=["sync", "diff", str(run.id), "--kind", "rejected"])
    assert "rejected: 1" in rejected.output and "status" in rejected.output
    # the dry run's staged rows went when the held run started: not shown as nothing
    dry = runner.invoke(args=["sync", "diff", str(run.id - 1), "--json"])
    assert dry.exit_code == 0, dry.output
    errors = {page["kind"]: page.get("error", "") for page in json.loads(dry.output)}
    assert all("no longer known" in errors[k] for k in ("create", "update", "remove"))
    assert "a dry run: it counts the records it would refuse" in errors["rejected"]
    assert runner.invoke(args=["sync", "diff", str(run.id), "--limit", "0"]).exit_code == 2


def test_exit_codes_say_held_busy_and_failed(hub_app, feed, connection_id):
    runner = hub_app.test_cli_runner()
    write_feed(feed, [eu_row(i) for i in range(1, 11)])
    assert runner.invoke(args=["sync", "run", "eu-csv"]).exit_code == 0
    write_feed(feed, [])
    held = runner.invoke(args=["sync", "run", "eu-csv"])
    assert held.exit_code == 3 and "would remove" in held.output
    assert lease.acquire(db.get_db(hub_app), connection_id, "another-process")
    assert runner.invoke(args=["sync", "run", "eu-csv"]).exit_code == 4
    listed = json.loads(runner.invoke(args=["sync", "runs", "--json"]).stdout)
    assert listed[0]["snapshot"] is True and listed[0]["connection"] == "eu-csv"
    busy = runner.invoke(args=["sync", "run", "eu-csv", "--json"])
    assert busy.exit_code == 4 and "records read" not in busy.stderr
    assert json.loads(busy.stdout)["status"] == "busy"
    lease.release(db.get_db(hub_app), connection_id, "another-process")
    feed.unlink()
    assert runner.invoke(args=["sync", "run", "eu-csv"]).exit_code == 1


def test_many_quarantined_records_hold_a_snapshot(hub_app, feed, connection_id):
    rows = [eu_row(i) for i in range(1, 101)]
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    write_feed(feed, [eu_row(i, status="??") if i <= 30 else rows[i - 1]
                      for i in range(1, 101)])
    run = sync(hub_app, connection_id)
    assert run.status == "needs_confirmation" and "quarantined" in run.held_reason


def test_a_second_connection_on_a_programme_needs_a_disjoint_scope(hub_app, feed,
                                                                   connection_id):
    settings = conns.SyncSettings.from_config(hub_app.config)
    with hub_app.app_context():
        session = db.session()
        with pytest.raises(Conflict, match="already syncs EU-AEO"):
            conns.add_connection(session, settings, name="eu-2", connector_type="csv_snapshot",
                                 programmes=["EU-AEO"], schedule="interval:1h",
                                 config={"path": str(feed), "programme": "EU-AEO"})
        session.rollback()
        first = conns.get_connection(session, connection_id)
        conns.edit_connection(session, settings, first, scope_countries=["DE"])
        conns.add_connection(session, settings, name="eu-fr", connector_type="csv_snapshot",
                             programmes=["EU-AEO"], schedule="interval:1h",
                             config={"path": str(feed), "programme": "EU-AEO"},
                             scope_countries=["FR"])
        session.commit()
    write_feed(feed, [eu_row(1), eu_row(2, country="FR")])
    run = sync(hub_app, connection_id)  # the DE connection refuses the FR row
    assert run.counts["created"] == 1 and run.counts["quarantined"] == 1
    assert entries(hub_app)[0].reason_code == "out_of_scope"


def test_another_connections_operator_is_out_of_scope_even_unchanged(hub_app, feed,
                                                                     connection_id, tmp_path):
    """An operator of the DE connection, met unchanged (same fingerprint) in the FR
    connection's feed, is refused as out of scope, not counted unchanged by FR."""
    settings = conns.SyncSettings.from_config(hub_app.config)
    fr_feed = tmp_path / "fr.csv"
    with hub_app.app_context():
        session = db.session()
        conns.edit_connection(session, settings, conns.get_connection(session, connection_id),
                              scope_countries=["DE"])
        fr_id = conns.add_connection(
            session, settings, name="eu-fr", connector_type="csv_snapshot",
            programmes=["EU-AEO"], schedule="interval:1h",
            config={"path": str(fr_feed), "programme": "EU-AEO"}, scope_countries=["FR"]).id
        session.commit()
    write_feed(feed, [eu_row(1)])
    write_feed(fr_feed, [eu_row(1), eu_row(2, country="FR")])
    assert sync(hub_app, connection_id).counts["created"] == 1
    for unchanged in (0, 1):  # the FR operator: created, then unchanged
        run = sync(hub_app, fr_id)
        assert run.status == "succeeded", run.held_reason
        assert (run.counts["unchanged"], run.counts["quarantined"]) == (unchanged, 1), (
            run.counts)
    (entry,) = entries(hub_app)
    assert (entry.reason_code, entry.status) == ("out_of_scope", "open")
    assert operators(hub_app)["DE000000000000001"].source == f"connection:{connection_id}"


def test_a_slot_that_found_its_connection_busy_runs_once_when_it_is_free(
        hub_app, feed, connection_id, clock):
    write_feed(feed, [eu_row(i) for i in range(1, 4)])
    clock.next_hour()
    scheduler = HubScheduler(hub_app, poll_seconds=0.1)
    scheduler.reload()
    assert lease.acquire(db.get_db(hub_app), connection_id, "another-process")
    assert scheduler.fire(connection_id) is None
    assert scheduler.unserved_slots() == {}  # a run is going: its end is awaited
    lease.release(db.get_db(hub_app), connection_id, "another-process")
    ((slot, ended),) = scheduler.unserved_slots().values()
    assert ended is None
    _step(hub_app, "tick")
    _step(hub_app, "tick")  # served: nothing more
    assert [(r.trigger, r.status, r.scheduled_for) for r in runs_of(hub_app)] == [
        ("schedule", "succeeded", slot)]


def test_a_second_fire_of_a_slot_leaves_its_held_run_alone(hub_app, feed, connection_id,
                                                          clock):
    """The same slot fired again after its run was held (by another scheduler, or a
    catch-up that lost the race to the fire): it stops before doing anything. It used to
    supersede the held run, then find the slot claimed, so nothing was left to confirm."""
    write_feed(feed, [eu_row(i) for i in range(1, 41)])
    assert sync(hub_app, connection_id).status == "succeeded"
    clock.next_hour()
    write_feed(feed, [eu_row(i) for i in range(1, 21)])  # half of them gone: held
    scheduler = HubScheduler(hub_app, poll_seconds=0.1)
    scheduler.reload()
    held = scheduler.fire(connection_id)
    assert held is not None and held.status == "needs_confirmation"
    assert scheduler.fire(connection_id) is None
    assert [r.status for r in runs_of(hub_app)] == ["succeeded", "needs_confirmation"]


class _Stop(BaseException):
    """The process stops here: what a kill -9 leaves, in this process (the run stays
    `running`, its staged rows stay)."""


def test_a_scheduled_run_that_resumes_a_dead_run_serves_its_slot(
        hub_app, feed, connection_id, clock, monkeypatch):
    """A manual run died after its first batch; the next slot's fire resumes it, and the
    resumed run takes the slot: no second read of the source at the next tick."""
    write_feed(feed, [eu_row(i) for i in range(1, 7)])
    _die_after_first_batch(hub_app, connection_id, monkeypatch)
    clock.next_hour()
    scheduler = HubScheduler(hub_app, poll_seconds=0.1)
    scheduler.reload()
    run = scheduler.fire(connection_id)
    assert run is not None and (run.trigger, run.status) == ("manual", "succeeded")
    assert run.scheduled_for is not None and scheduler.unserved_slots() == {}
    _step(hub_app, "tick")
    assert [r.id for r in runs_of(hub_app)] == [run.id]


def _notify(app, connection_id, when):
    with db.get_db(app).session_scope(write=True) as session:
        session.execute(update(Connection).where(Connection.id == connection_id)
                        .values(notify_requested_at=when))


def _step(app, step="poll_notifications"):
    """One step of a scheduler starting in this process, its runs to their end."""
    scheduler = HubScheduler(app, poll_seconds=0.1)
    try:
        getattr(scheduler, step)()
    finally:
        scheduler.pool.shutdown(wait=True)


def _notification(app, connection_id):
    with db.get_db(app).session_scope() as session:
        return session.scalar(select(Connection.notify_requested_at).where(
            Connection.id == connection_id))


def test_a_notification_waits_while_another_process_holds_the_connection(
        hub_app, feed, connection_id):
    """The scheduler took a notification before its run had the lease: a node's push
    during another process's run (`aeohub sync run`, another scheduler's slot) was
    dropped with the busy run. It now waits, and runs when the connection is free."""
    write_feed(feed, [eu_row(i) for i in range(1, 4)])
    _notify(hub_app, connection_id, hub_clock.now())
    assert lease.acquire(db.get_db(hub_app), connection_id, "a-sync-run-elsewhere")
    _step(hub_app)
    assert runs_of(hub_app) == [] and _notification(hub_app, connection_id) is not None
    lease.release(db.get_db(hub_app), connection_id, "a-sync-run-elsewhere")
    _step(hub_app)
    assert [(r.trigger, r.status) for r in runs_of(hub_app)] == [("notify", "succeeded")]
    assert _notification(hub_app, connection_id) is None


def test_a_notified_run_that_fails_answers_its_notification(hub_app, feed, connection_id):
    """A run that starts takes the notification even when it fails (the source cannot be
    read): the next poll does not start it again; the schedule and its backoff retry."""
    feed.unlink()
    _notify(hub_app, connection_id, hub_clock.now())
    _step(hub_app, "tick")
    _step(hub_app, "tick")  # a second poll starts nothing
    assert [(r.trigger, r.status) for r in runs_of(hub_app)] == [("notify", "failed")]
    assert _notification(hub_app, connection_id) is None


def test_a_dead_notified_run_gives_its_notification_back(hub_app, connection_id):
    """A notified run whose process died (nothing staged: abandoned) asks for its
    follow-up run, once, when it is still its connection's latest run; a dead run of
    another trigger, or one that a later run followed, does not."""
    started = hub_clock.now() - dt.timedelta(minutes=5)
    with db.get_db(hub_app).session_scope(write=True) as session:
        session.add(SyncRun(connection_id=connection_id, trigger="notify",
                            status="running", counts={}, started_at=started))
    assert len(engine.abandon_dead_runs(db.get_db(hub_app))) == 1
    assert _notification(hub_app, connection_id) == started
    _notify(hub_app, connection_id, None)
    with db.get_db(hub_app).session_scope(write=True) as session:
        session.add_all([
            SyncRun(connection_id=connection_id, trigger="notify", status="running",
                    counts={}),
            SyncRun(connection_id=connection_id, trigger="manual", status="running",
                    counts={})])
    assert len(engine.abandon_dead_runs(db.get_db(hub_app))) == 2
    assert _notification(hub_app, connection_id) is None
    assert engine.abandon_dead_runs(db.get_db(hub_app)) == []


def test_a_feed_that_lost_a_column_is_held(hub_app, feed, connection_id):
    """Every city emptied at once is a column lost, not 20 moves: the run is held, and
    a few emptied values pass."""
    rows = [eu_row(i) for i in range(1, 21)]
    write_feed(feed, rows)
    sync(hub_app, connection_id)
    write_feed(feed, [{**row, "city": ""} for row in rows])
    held = sync(hub_app, connection_id)
    assert held.status == "needs_confirmation"
    assert "20 of 20 EU-AEO operators (100%) would lose a value" in held.held_reason
    assert {o.city for o in operators(hub_app).values()} == {"Hamburg"}
    write_feed(feed, [{**row, "city": ""} if i < 2 else row for i, row in enumerate(rows)])
    run = sync(hub_app, connection_id)  # 2 of 20: 10%, not more than allowed
    assert (run.status, run.counts["updated"]) == ("succeeded", 2), run.held_reason
    assert sorted(o.city or "" for o in operators(hub_app).values())[:3] == [
        "", "", "Hamburg"]


def test_an_older_version_of_a_record_does_not_overwrite_a_newer_one(
        hub_app, feed, connection_id):
    write_feed(feed, [eu_row(1), eu_row(2, legal_name="New Name GmbH",
                                         changed_at="2026-06-01T00:00:00Z")])
    sync(hub_app, connection_id)
    write_feed(feed, [eu_row(1), eu_row(2, legal_name="Old Name GmbH",
                                         changed_at="2020-01-01T00:00:00Z")])
    run = sync(hub_app, connection_id)
    assert (run.counts["updated"], run.counts["unchanged"]) == (0, 2), run.counts
    assert operators(hub_app)["DE000000000000002"].legal_name == "New Name GmbH"
    write_feed(feed, [eu_row(1), eu_row(2, legal_name="Newest Name GmbH",
                                         changed_at="2026-07-01T00:00:00Z")])
    assert sync(hub_app, connection_id).counts["updated"] == 1
    assert operators(hub_app)["DE000000000000002"].legal_name == "Newest Name GmbH"


def test_a_failed_incremental_run_counts_the_pages_it_applied():
    run = SyncRun(connection_id=1, trigger="manual", status="failed", dry_run=False,
                  snapshot=False, counts={"read": 500, "created": 500},
                  started_at=dt.datetime(2026, 12, 7, tzinfo=dt.UTC))
    summary = admin.run_summary(run)
    assert summary["applied"] and "created 500" in admin.counts_text(summary)
    for status in ("needs_confirmation", "discarded", "superseded"):
        run.status = status
        assert not admin.applied(run)
    run.status, run.dry_run = "succeeded", True
    assert not admin.applied(run)


def test_scheduler_once_exits_with_its_runs_outcome(hub_app, feed, connection_id):
    runner = hub_app.test_cli_runner()
    feed.unlink()
    failed = runner.invoke(args=["scheduler", "--once"])
    assert failed.exit_code == 1, failed.output
    assert f"of connection {connection_id}: failed (" in failed.output
    again = runner.invoke(args=["scheduler", "--once"])  # backing off: nothing runs
    assert again.exit_code == 0 and "of connection" not in again.output
    assert (f"connection {connection_id} (eu-csv) backs off after 1 failure(s) in a row"
            in again.output)


def test_a_slot_missed_while_no_scheduler_ran_runs_once_when_one_starts(
        hub_app, feed, connection_id, clock):
    """The connection was added, then no scheduler ran for three hours: the scheduler
    that starts runs the latest slot at once (not the three missed ones, and not an hour
    late). A slot from before the connection existed was never missed."""
    write_feed(feed, [eu_row(i) for i in range(1, 4)])
    scheduler = HubScheduler(hub_app, poll_seconds=0.1)
    scheduler.reload()
    assert scheduler.unserved_slots() == {}  # its latest slot came before it
    clock.advance(3 * 3600)
    assert list(scheduler.unserved_slots()) == [connection_id]
    thread = threading.Thread(target=scheduler.run_forever, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: [run.status for run in runs_of(hub_app)] == ["succeeded"],
                          timeout=20, interval=0.05)
    finally:
        scheduler.stopping.set()
        thread.join(20)
    (run,) = runs_of(hub_app)
    assert run.trigger == "schedule" and run.counts["created"] == 3
    assert run.scheduled_for == clock.now().replace(minute=0, second=0, microsecond=0)
    assert scheduler.unserved_slots() == {}  # claimed: a second start runs nothing


def test_a_failed_slot_is_tried_again_after_the_backoff_until_it_is_served(
        hub_app, feed, connection_id, clock):
    """The node was down at the hourly slot: the failed run gives its slot up, and the
    slot is tried again each time the backoff has passed (30 s, then 60 s), not an hour
    later; once a run succeeds in it, the slot is served and nothing more runs."""
    rows = [eu_row(i) for i in range(1, 4)]
    clock.next_hour()
    feed.unlink()
    scheduler = HubScheduler(hub_app, poll_seconds=0.1)
    scheduler.reload()
    failed = scheduler.fire(connection_id)
    assert failed is not None and failed.status == "failed"
    slot = failed.scheduled_for
    assert scheduler.unserved_slots() == {}  # backing off
    clock.advance(31)
    assert scheduler.unserved_slots() == {connection_id: (slot, "failed")}
    _step(hub_app, "tick")  # the node is still down
    clock.advance(31)
    assert scheduler.unserved_slots() == {}  # the second failure backs off 60 s
    clock.advance(30)
    write_feed(feed, rows)
    _step(hub_app, "tick")
    _step(hub_app, "tick")  # served: nothing more
    runs = runs_of(hub_app)
    assert [(r.status, r.scheduled_for) for r in runs] == [
        ("failed", slot), ("failed", slot), ("succeeded", slot)]
    assert runs[-1].counts["created"] == 3 and scheduler.unserved_slots() == {}


def test_a_fire_skipped_by_the_backoff_runs_once_the_backoff_has_passed(
        hub_app, feed, connection_id, clock):
    """After seven failures the connection backs off 32 minutes: the hourly fire in that
    time is skipped, and its slot runs when the backoff has passed, not an hour later."""
    write_feed(feed, [eu_row(i) for i in range(1, 4)])
    clock.next_hour()
    with db.get_db(hub_app).session_scope(write=True) as session:
        session.execute(update(Connection).where(Connection.id == connection_id).values(
            consecutive_failures=7, last_failure_at=clock.now()))
    scheduler = HubScheduler(hub_app, poll_seconds=0.1)
    scheduler.reload()
    assert scheduler.fire(connection_id) is None and scheduler.unserved_slots() == {}
    clock.advance(32 * 60 + 1)
    (slot, ended), = scheduler.unserved_slots().values()
    assert ended is None and slot <= clock.now() - dt.timedelta(minutes=32)
    _step(hub_app, "tick")
    (run,) = runs_of(hub_app)
    assert (run.status, run.scheduled_for) == ("succeeded", slot)


def _die_after_first_batch(app, connection_id, monkeypatch, **options):
    """A run of the connection whose process stops after its first staged batch."""
    def stop(name):
        if name == "batch-1":
            raise _Stop

    monkeypatch.setattr(engine, "kill_point", stop)
    with pytest.raises(_Stop):
        engine.run_sync(db.get_db(app), conns.SyncSettings.from_config(app.config),
                        connection_id, **options)
    monkeypatch.undo()


def test_a_dead_slot_whose_source_is_down_backs_off(hub_app, feed, connection_id, clock,
                                                    monkeypatch):
    """The slot's run died with staged rows, and the source is down when a scheduler comes
    back: each try is a failed run of its own, so the backoff applies, and the dead run
    keeps the slot and resumes once the source answers. It used to lose its claim to the
    dead run quietly, recording nothing, and read the source again at every poll."""
    write_feed(feed, [eu_row(i) for i in range(1, 7)])
    clock.next_hour()
    scheduler = HubScheduler(hub_app, poll_seconds=0.1)
    scheduler.reload()
    slot = latest_fire(scheduler.triggers[connection_id], clock.now())
    _die_after_first_batch(hub_app, connection_id, monkeypatch, trigger="schedule",
                           scheduled_for=slot)

    def down(connector):
        raise ConnectorError("the source does not answer")

    monkeypatch.setattr(CsvSnapshotConnector, "discover", down)
    assert scheduler.unserved_slots() == {connection_id: (slot, "died")}
    _step(hub_app, "tick")
    assert scheduler.unserved_slots() == {}  # backing off
    monkeypatch.undo()
    clock.advance(31)
    _step(hub_app, "tick")
    assert [(r.status, r.scheduled_for) for r in runs_of(hub_app)] == [
        ("succeeded", slot), ("failed", None)]
    assert scheduler.unserved_slots() == {}


def test_a_scheduled_run_that_resumes_a_dead_notified_run_answers_the_notification(
        hub_app, feed, connection_id, clock, monkeypatch):
    """The dead notified run gave its notification back; the next slot's fire resumes
    that run, and so answers the notification: no second read of the source follows."""
    write_feed(feed, [eu_row(i) for i in range(1, 7)])
    _notify(hub_app, connection_id, hub_clock.now())
    _die_after_first_batch(hub_app, connection_id, monkeypatch, trigger="notify")
    engine.abandon_dead_runs(db.get_db(hub_app))
    assert _notification(hub_app, connection_id) is not None
    clock.next_hour()
    scheduler = HubScheduler(hub_app, poll_seconds=0.1)
    scheduler.reload()
    run = scheduler.fire(connection_id)
    assert run is not None and (run.trigger, run.status) == ("notify", "succeeded")
    assert _notification(hub_app, connection_id) is None


def test_a_fire_checked_before_another_schedulers_run_failed_its_slot_backs_off(
        hub_app, feed, connection_id, clock):
    """Two schedulers fire one slot: the first fails it while the second waits for the
    lease, having found no backoff. The second stops once it holds the lease, rather than
    asking the source again at once; a person's `aeohub sync run` is never held back."""
    write_feed(feed, [eu_row(i) for i in range(1, 4)])
    clock.next_hour()
    scheduler = HubScheduler(hub_app, poll_seconds=0.1)
    scheduler.reload()
    slot = latest_fire(scheduler.triggers[connection_id], clock.now())
    with db.get_db(hub_app).session_scope(write=True) as session:
        session.execute(update(Connection).values(consecutive_failures=1,
                                                  last_failure_at=clock.now()))
    settings = conns.SyncSettings.from_config(hub_app.config)
    assert engine.run_sync(db.get_db(hub_app), settings, connection_id, trigger="schedule",
                           scheduled_for=slot) is None
    manual = engine.run_sync(db.get_db(hub_app), settings, connection_id)
    assert manual is not None and manual.status == "succeeded"
    assert [r.trigger for r in runs_of(hub_app)] == ["manual"]


def runs_of(app) -> list[SyncRun]:
    with app.app_context():
        runs = db.session().scalars(select(SyncRun).order_by(SyncRun.id)).all()
        db.session().expunge_all()
        db.session().close()
        return list(runs)
