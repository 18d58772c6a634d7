"""Incremental syncs from a live simulated node over HTTP: churn, tombstones, faults."""

from __future__ import annotations

import gc

import pytest
from sqlalchemy import func, select, update

from connectors.base import Batch
from hub import db
from hub.arrangements.service import load_reference_data
from hub.registry.models import Operator, OperatorEvent
from hub.sim.server import NodeServer
from hub.sync import admin, engine
from hub.sync import connections as conns
from hub.sync.models import Connection, QuarantinedRecord, SyncLease
from hub.sync.scheduler import HubScheduler
from tests.connectors.nodeserver import TOKEN, RunningServer, make_record
from tests.connectors.nodeserver import NodeServer as ScriptedNode


@pytest.fixture
def node():
    with NodeServer(["EU-AEO"], size=150, seed=5) as server:
        yield server


def add_node_connection(app, url: str, token: str, *, page_size: int, share: float) -> int:
    """An incremental connection to the node at `url`, with reference data loaded."""
    with app.app_context():
        session = db.session()
        load_reference_data(session)
        row = conns.add_connection(
            session, conns.SyncSettings.from_config(app.config), name="eu-node",
            connector_type="aeo_node", programmes=["EU-AEO"],
            config={"base_url": url, "token": token, "programme": "EU-AEO",
                    "page_size": page_size, "backoff_base": 0.01, "max_retries": 6},
            schedule="interval:1h")
        row.max_change_share = row.max_removal_share = share
        session.commit()
        return row.id


@pytest.fixture
def setup(app, node):
    return app, add_node_connection(app, node.url, "sim-token", page_size=40, share=0.5)


def run(app, connection_id):
    return engine.run_sync(db.get_db(app), conns.SyncSettings.from_config(app.config),
                           connection_id)


def connection(connection_id: int) -> Connection:
    """The connection's row, in the current app context."""
    row = db.session().get(Connection, connection_id)
    assert row is not None
    return row


def count(app, model, *where):
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(model).where(*where))


def test_incremental_pages_churn_and_tombstones(setup, node):
    app, connection_id = setup
    first = run(app, connection_id)
    assert first.status == "succeeded", first.error
    published = node.registry().published_count
    assert first.counts["created"] == published == count(app, Operator)
    with app.app_context():
        cursor = connection(connection_id).state.get("cursor")
    assert cursor  # the checkpoint is saved with the batches

    again = run(app, connection_id)
    assert again.counts["read"] == 0 and again.counts["created"] == 0

    changes = node.advance(3)
    victim = node.registry().record(0)["trader_id"]
    gone = node.registry().record(1)["trader_id"]
    node.apply("suspend", victim)
    node.apply("remove", gone)  # a tombstone
    third = run(app, connection_id)
    assert third.status == "succeeded", third.error
    assert 0 < third.counts["read"] <= len(changes) + 2
    assert third.counts["removed"] >= 1
    with app.app_context():
        op = db.session().scalars(select(Operator).where(Operator.trader_id == victim)).one()
        assert op.status == "suspended"
        removed = db.session().scalars(select(Operator).where(Operator.trader_id == gone)).one()
        assert removed.removed_at is not None
    assert count(app, OperatorEvent, OperatorEvent.kind == "status_changed") >= 1


def test_incremental_pages_run_with_the_collector_paused_and_every_end_restores_it(
        setup, node, collector_at):
    """As a snapshot's batches (`hub.gcpause`): paused for each page, running again after a
    run that succeeds, one held at a page (it returns from inside the pause) and one whose
    node fails while a page is read."""
    app, connection_id = setup
    seen = collector_at("_apply_page")
    assert run(app, connection_id).status == "succeeded"
    assert seen and not any(seen) and gc.isenabled()

    with app.app_context():
        connection(connection_id).max_change_share = 0.0
        db.session().commit()
    node.advance(1)
    node.apply("suspend", node.registry().record(0)["trader_id"])
    held = run(app, connection_id)
    assert held.status == "needs_confirmation", held.error
    assert gc.isenabled()

    node.set_faults(error_rate=1.0)
    assert run(app, connection_id).status == "failed"
    assert gc.isenabled()


def test_retries_through_5xx_and_429(setup, node):
    app, connection_id = setup
    node.set_faults(fail_next=3)
    run1 = run(app, connection_id)
    assert run1.status == "succeeded", run1.error
    node.clear_faults()
    node.advance(1)
    node.set_faults(rate_limit=2, retry_after=1)
    run2 = run(app, connection_id)
    assert run2.status == "succeeded", run2.error


def test_malformed_rows_are_quarantined_and_repeated_ids_resolve_by_change_time(setup, node):
    """The simulator's twin records share a trader id within a page: in a change log two
    records of one key are two versions, and the latest `changed_at` wins."""
    app, connection_id = setup
    node.set_faults(malformed_rate=0.05, duplicate_ids=2)
    result = run(app, connection_id)
    assert result.status == "succeeded", result.error
    # one entry per record key and reason: a key met twice is one entry, counted twice
    quarantined = count(app, QuarantinedRecord)
    assert result.counts["quarantined"] >= quarantined >= 4
    assert result.counts["read"] == (result.counts["created"] + result.counts["unchanged"]
                                     + result.counts["quarantined"])


@pytest.fixture
def scripted(app):
    """An incremental connection to a node whose change log the test writes."""
    server = ScriptedNode()
    running = RunningServer(server)
    server.url = running.url
    connection_id = add_node_connection(app, server.url, TOKEN, page_size=100, share=1.0)
    try:
        yield app, connection_id, server
    finally:
        running.stop()


def operator_of(app, number: int) -> Operator:
    with app.app_context():
        return db.session().scalars(select(Operator).where(
            Operator.trader_id == f"DE{100000 + number}")).one()


def test_a_page_with_several_versions_of_an_operator_applies_the_latest(scripted):
    """A node resent an operator's held version beside its newer suspension (at least
    once delivery, docs/node-protocol.md): the suspension is applied whichever comes
    first in the page. Two different versions at one change time cannot be ordered:
    both are quarantined and the operator keeps its state. An identical repeat is one."""
    app, connection_id, log = scripted
    for number in (1, 2):
        log.log.append(("record", make_record(number)))
    first = run(app, connection_id)
    assert first.status == "succeeded" and first.counts["created"] == 2, first.error

    held = make_record(1)
    suspended = {**held, "status": "suspended", "status_effective": "2024-06-01",
                 "changed_at": "2024-06-01T09:00:00Z"}
    renamed = [{**make_record(2), "legal_name": name, "changed_at": "2024-06-02T09:00:00Z"}
               for name in ("Muster A GmbH", "Muster B GmbH")]
    log.log.extend([("record", suspended), ("record", held), ("record", renamed[0]),
                    ("record", renamed[1]), ("record", make_record(3)),
                    ("record", make_record(3))])
    second = run(app, connection_id)
    assert second.status == "succeeded", second.error
    assert operator_of(app, 1).status == "suspended"
    assert operator_of(app, 2).legal_name == make_record(2)["legal_name"]
    assert operator_of(app, 3).status == "valid"
    assert second.counts["read"] == 6 and second.counts["created"] == 1
    assert second.counts["updated"] == 1 and second.counts["quarantined"] == 2
    assert second.counts["unchanged"] == 2  # the held version resent, the repeat of 3
    with app.app_context():
        entries = db.session().scalars(select(QuarantinedRecord)).all()
        assert {e.stable_key for e in entries} == {"DE100002"}
        assert {r["code"] for e in entries for r in e.reasons} == {"duplicate_key"}


def test_node_down_fails_the_run_and_keeps_the_data(setup, node):
    app, connection_id = setup
    run(app, connection_id)
    before = count(app, Operator)
    node.set_faults(error_rate=1.0)
    failed = run(app, connection_id)
    assert failed.status == "failed" and failed.error
    assert count(app, Operator) == before
    with app.app_context():
        assert connection(connection_id).consecutive_failures == 1


def test_an_incremental_run_whose_lease_was_taken_over_stops_at_its_next_page(
        setup, node, monkeypatch):
    """Each page commits with its checkpoint only while the run holds its lease: once
    another process took the connection over, the next page is refused, and what was
    committed before stays with the checkpoint that covers it."""
    app, connection_id = setup
    applied: list[Batch] = []
    page = engine.SyncJob._classify

    def paged(job, batch):
        if len(applied) == 2:  # after two pages: another process takes over
            with db.get_db(app).session_scope(write=True) as session:
                session.execute(update(SyncLease).where(
                    SyncLease.connection_id == connection_id).values(holder="other:1:x"))
        applied.append(batch)
        return page(job, batch)

    monkeypatch.setattr(engine.SyncJob, "_classify", paged)
    run_ = run(app, connection_id)
    assert run_.status == "failed" and "taken over by another process" in run_.error
    assert count(app, Operator) == 80  # two pages of 40, the third refused
    with app.app_context():
        cursor = connection(connection_id).state.get("cursor")
        holder = db.session().scalar(select(SyncLease.holder).where(
            SyncLease.connection_id == connection_id))
    assert cursor and holder == "other:1:x"


def test_a_snapshot_of_an_incremental_feed_reconciles_it(setup, node):
    """`sync run --snapshot` reads the incremental feed whole: an operator whose
    tombstone was lost is removed, and the feed goes on from where the snapshot ended."""
    app, connection_id = setup
    assert run(app, connection_id).status == "succeeded"
    with db.get_db(app).session_scope(write=True) as session:  # a tombstone never sent
        template = session.scalars(select(Operator)).first()
        assert template is not None
        session.add(Operator(
            programme_id=template.programme_id, stable_key="DE999999999999999",
            authorisation_number="DEAEOF99999/19", trader_id_scheme="EORI",
            trader_id="DE999999999999999", legal_name="Vanished GmbH", country="DE",
            status="valid", categories=[], warnings=[]))
    again = run(app, connection_id)
    assert again.counts["removed"] == 0  # an incremental run cannot know
    result = app.test_cli_runner().invoke(args=["sync", "run", "eu-node", "--snapshot",
                                                "--json"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        vanished = db.session().scalars(select(Operator).where(
            Operator.stable_key == "DE999999999999999")).one()
        assert vanished.removed_at is not None
        cursor = connection(connection_id).state.get("cursor")
    assert cursor
    assert run(app, connection_id).counts["read"] == 0  # goes on from the snapshot's end


def test_an_incremental_run_stopped_by_its_quarantine_limits_keeps_its_slot(scripted,
                                                                             clock):
    """A page past the quarantine limits fails the run without applying the page. Unlike
    a run whose node was down, its slot is not tried again after the backoff: each try
    would apply one more page of a bad feed, wearing the guard down."""
    app, connection_id, log = scripted
    with db.get_db(app).session_scope(write=True) as session:
        session.execute(update(Connection).values(max_quarantined=2))
    log.log.extend(("record", make_record(number)) for number in range(1, 11))
    log.log.extend(("record", {**make_record(number), "status": "dormant"})
                   for number in range(11, 16))
    clock.next_hour()
    scheduler = HubScheduler(app, poll_seconds=0.1)
    scheduler.reload()
    failed = scheduler.fire(connection_id)
    assert failed is not None and failed.status == "failed" and failed.stopped_by_guard
    assert "this one was not" in (failed.error or "") and count(app, Operator) == 0
    assert admin.run_summary(failed)["stopped_by_guard"] is True
    clock.advance(31)  # past the backoff
    assert scheduler.unserved_slots() == {}
