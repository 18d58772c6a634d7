"""The hub's own events reach the audit log, in the same transaction as the change."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import g
from sqlalchemy import select

from hub import db
from hub.arrangements import service as arrangements
from hub.arrangements.service import load_reference_data
from hub.audit import acting_as, current_actor, service
from hub.audit.models import AuditEntry
from hub.errors import InvalidInput
from hub.sync import connections as conns
from hub.sync import engine, quarantine
from hub.sync.models import QuarantinedRecord
from tests.sync.feeds import eu_row, write_feed


def _entries(session, prefix=""):
    rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    return [e for e in rows if e.action.startswith(prefix)]


@pytest.fixture
def hub_app(app):
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    return app


@pytest.fixture
def feed(hub_app, tmp_path):
    return write_feed(tmp_path / "eu.csv", [])


@pytest.fixture
def connection_id(hub_app, feed):
    with hub_app.app_context(), acting_as("user:ana"):
        session = db.session()
        row = conns.add_connection(
            session, conns.SyncSettings.from_config(hub_app.config), name="eu-csv",
            connector_type="csv_snapshot", programmes=["EU-AEO"],
            config={"path": str(feed), "programme": "EU-AEO"}, schedule="interval:1h")
        session.commit()
        return row.id


def _sync(app, connection_id, **kw):
    return engine.run_sync(db.get_db(app), conns.SyncSettings.from_config(app.config),
                           connection_id, **kw)


def test_reference_load_is_audited_only_when_it_changes_something(session):
    load_reference_data(session)
    assert [e.action for e in _entries(session)] == ["reference.loaded"]
    assert _entries(session)[0].details["created"]["arrangement"] > 0
    load_reference_data(session)
    assert len(_entries(session)) == 1


def test_arrangement_status_changes_are_audited_for_every_party(session):
    load_reference_data(session)
    arrangements.change_status(session, "EU-US", "suspend", dt.date(2026, 3, 1),
                               note="review", actor="user:lead")
    arrangements.change_status(session, "EU-US", "resume", dt.date(2026, 4, 1))
    suspended, resumed = _entries(session, "arrangement.")
    assert suspended.action == "arrangement.suspended"
    assert suspended.actor == "user:lead" and suspended.subject == "arrangement:EU-US"
    assert suspended.details == {"arrangement": "EU-US", "status": "suspended",
                                 "effective_date": "2026-03-01", "previous": "in_force",
                                 "note": "review"}
    assert len(suspended.administrations) == 2
    assert resumed.action == "arrangement.resumed" and resumed.actor == "cli"
    with pytest.raises(InvalidInput):
        arrangements.change_status(session, "EU-US", "resume", dt.date(2026, 5, 1))
    assert len(_entries(session, "arrangement.")) == 2
    assert service.verify(session).ok


def test_connection_changes_are_audited_without_secrets(hub_app, connection_id):
    with hub_app.app_context():
        session = db.session()
        row = conns.get_connection(session, connection_id)
        conns.edit_connection(session, conns.SyncSettings.from_config(hub_app.config), row,
                              schedule="interval:2h")
        session.commit()
        conns.remove_connection(session, conns.get_connection(session, connection_id))
        session.commit()
        added, edited, removed = _entries(session, "connection.")
        assert (added.action, edited.action, removed.action) == (
            "connection.added", "connection.edited", "connection.removed")
        assert added.actor == "user:ana"
        assert edited.actor == "system" and edited.details["schedule"] == "interval:2h"
        assert added.subject == f"connection:{connection_id}"
        assert added.details["programmes"] == ["EU-AEO"]
        assert added.administrations == ["EU"]


def test_sync_outcomes_are_audited(hub_app, feed, connection_id):
    held = _sync(hub_app, connection_id, trigger="schedule")  # an empty snapshot is held
    assert held.status == "needs_confirmation"
    discarded = engine.discard(db.get_db(hub_app), held.id)
    assert discarded.status == "discarded"
    write_feed(feed, [eu_row(i) for i in range(1, 4)])
    ok = _sync(hub_app, connection_id)
    assert ok.status == "succeeded"
    _sync(hub_app, connection_id, dry_run=True)  # changes nothing: not audited
    write_feed(feed, [])
    held_again = _sync(hub_app, connection_id)
    with acting_as("user:ana"):
        confirmed = engine.confirm(db.get_db(hub_app),
                                   conns.SyncSettings.from_config(hub_app.config),
                                   held_again.id)
    assert confirmed.status == "succeeded"
    feed.unlink()
    failed = _sync(hub_app, connection_id)
    assert failed.status == "failed"
    with hub_app.app_context():
        entries = _entries(db.session(), "sync.")
        assert [(e.action, e.subject) for e in entries] == [
            ("sync.held", f"sync_run:{held.id}"),
            ("sync.discarded", f"sync_run:{held.id}"),
            ("sync.succeeded", f"sync_run:{ok.id}"),
            ("sync.held", f"sync_run:{held_again.id}"),
            ("sync.confirmed", f"sync_run:{held_again.id}"),
            ("sync.failed", f"sync_run:{failed.id}"),
        ]
        assert entries[0].actor == "system"  # a scheduled run
        assert entries[4].actor == "user:ana"
        assert entries[2].details["counts"]["created"] == 3
        assert "empty" in entries[0].details["held_reason"]
        assert entries[5].details["error"]
        assert {a for e in entries for a in e.administrations} == {"EU"}
        assert service.verify(db.session()).ok


def test_quarantine_decisions_are_audited(hub_app, feed, connection_id):
    write_feed(feed, [eu_row(1), eu_row(2, status="exploded"), eu_row(3, status="melted")])
    run = _sync(hub_app, connection_id)
    assert run.counts["quarantined"] == 2
    with hub_app.app_context():
        session = db.session()
        first, second = session.scalars(select(QuarantinedRecord)
                                        .order_by(QuarantinedRecord.id)).all()
        quarantine.replay(session, first.id, {"status": "valid"}, actor="user:ops")
        with acting_as("cli"):  # as inside an aeohub command
            quarantine.dismiss(session, second.id, note="test row")
        session.commit()
        replayed, dismissed = _entries(session, "quarantine.")
        assert replayed.action == "quarantine.replayed" and replayed.actor == "user:ops"
        assert replayed.subject == f"quarantined_record:{first.id}"
        assert dismissed.action == "quarantine.dismissed" and dismissed.actor == "cli"
        assert dismissed.details["note"] == "test row"


def test_current_actor_context(app):
    assert current_actor() == "system"
    with acting_as("user:x"):
        assert current_actor() == "user:x"
    with app.test_request_context("/"):
        g.audit_actor = "client:abc"
        assert current_actor() == "client:abc"
