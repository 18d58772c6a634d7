"""Removals of an incremental source from its scheduled snapshot: an incremental
`sql_query` connection never learns of a deleted row until the scheduler reads the source
whole, at the first scheduled sync at or after each slot of its `snapshot_schedule`.
Time is the hub's clock, moved by the test (no sleeping)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from hub import clock, db
from hub.errors import InvalidInput
from hub.registry.models import Operator
from hub.sync import connections as conns
from hub.sync import engine
from hub.sync.models import Connection, SyncRun
from hub.sync.scheduler import HubScheduler, latest_fire, snapshot_due, trigger_for
from tests.connectors.examples import example
from tests.connectors.sqlsource import registry_database

UTC = dt.UTC
DELETED = "FR77812345600011"  # holder 3 of the example registry


class Clock:
    """The hub's clock, set by the test."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock_at() -> Iterator[Clock]:
    source = Clock(dt.datetime(2026, 12, 7, 0, 30, tzinfo=UTC))
    with clock.use(source):
        yield source


@pytest.fixture
def registry_url(hub_app: Any, backend: str) -> Iterator[str]:
    hub_app.config["NODE_HOSTS_ALLOWED"] = ["127.0.0.1"]
    with registry_database(backend, Path(hub_app.config["IMPORT_DIR"])) as url:
        yield url


def add_sql_connection(app: Any, url: str, **extra: Any) -> int:
    settings = conns.SyncSettings.from_config(app.config)
    with app.app_context():
        session = db.session()
        row = conns.add_connection(
            session, settings, name="fr-sql", connector_type="sql_query",
            programmes=["EU-AEO"], config={**example("sql_view")["config"], "url": url},
            schedule="interval:15m", **extra)
        row.max_removal_share = 0.5  # one of three: over the default guard's 10 %
        session.commit()
        return row.id


def fire(scheduler: HubScheduler, connection_id: int, source: Clock,
         at: dt.datetime) -> SyncRun:
    """A scheduled fire at `at`: the run it made."""
    source.now = at
    scheduler.fire(connection_id)
    with scheduler.app.app_context():
        run = db.session().scalars(select(SyncRun).where(
            SyncRun.connection_id == connection_id, SyncRun.started_at == at)).one()
        db.session().expunge(run)
        return run


def listed(app: Any) -> set[str]:
    with app.app_context():
        return set(db.session().scalars(select(Operator.trader_id).where(
            Operator.removed_at.is_(None))))


def delete_holder(url: str) -> None:
    source = create_engine(url)
    with source.begin() as conn:
        conn.exec_driver_sql("DELETE FROM aeo_holder WHERE eori = 'FR77812345600011'")
    source.dispose()


def at(hour: int, minute: int = 0, day: int = 7) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def test_the_scheduled_snapshot_removes_what_incremental_runs_keep(
        hub_app: Any, registry_url: str, clock_at: Clock) -> None:
    connection_id = add_sql_connection(hub_app, registry_url,
                                       snapshot_schedule="cron:0 2 * * *")
    # a first incremental read, by hand
    clock_at.now = at(0, 20)
    first = engine.run_sync(db.get_db(hub_app), conns.SyncSettings.from_config(
        hub_app.config), connection_id, trigger="manual")
    assert first is not None and first.status == "succeeded" and not first.snapshot
    assert DELETED in listed(hub_app)
    # the previous day's 02:00 slot has no snapshot run yet: the first scheduled sync
    # reads whole (nothing to remove yet)
    scheduler = HubScheduler(hub_app)
    scheduler.reload()
    catch_up = fire(scheduler, connection_id, clock_at, at(0, 30))
    assert (catch_up.snapshot, catch_up.status) == (True, "succeeded")
    assert catch_up.counts["removed"] == 0

    delete_holder(registry_url)
    for when in (at(0, 45), at(1, 0), at(1, 45)):  # incremental: the row is not seen
        run = fire(scheduler, connection_id, clock_at, when)
        assert (run.snapshot, run.status, run.trigger) == (False, "succeeded", "schedule")
        assert run.counts["removed"] == 0
        assert DELETED in listed(hub_app)

    snapshot = fire(scheduler, connection_id, clock_at, at(2, 0))
    assert (snapshot.snapshot, snapshot.status, snapshot.trigger) == (
        True, "succeeded", "schedule")
    assert snapshot.scheduled_for == at(2, 0)
    assert snapshot.counts["removed"] == 1
    assert listed(hub_app) == {"FR53740792600014", "FR38291830400027"}
    with hub_app.app_context():  # the incremental source goes on from its end
        connection = db.session().get(Connection, connection_id)
        assert connection is not None
        assert connection.state == {"since": "2026-11-30T09:05:00"}

    # once per slot: the following syncs are incremental again until the next 02:00
    later = fire(scheduler, connection_id, clock_at, at(2, 15))
    assert (later.snapshot, later.status) == (False, "succeeded")
    assert fire(scheduler, connection_id, clock_at, at(2, 0, day=8)).snapshot is True


def test_a_held_snapshot_stands_for_its_slot_and_a_failed_one_is_tried_again(
        hub_app: Any, registry_url: str, clock_at: Clock) -> None:
    connection_id = add_sql_connection(hub_app, registry_url,
                                       snapshot_schedule="interval:1d")
    scheduler = HubScheduler(hub_app)
    scheduler.reload()
    assert fire(scheduler, connection_id, clock_at, at(0, 30)).snapshot is True
    delete_holder(registry_url)
    with hub_app.app_context():
        session = db.session()
        row = session.get(Connection, connection_id)
        assert row is not None
        row.max_removal_share = 0.1
        session.commit()
    # the next day's slot: the snapshot's removal passes the guard, so it is held
    held = fire(scheduler, connection_id, clock_at, at(0, 0, day=8))
    assert (held.snapshot, held.status) == (True, "needs_confirmation")
    assert "remove" in (held.held_reason or "")
    assert DELETED in listed(hub_app)
    after = fire(scheduler, connection_id, clock_at, at(0, 15, day=8))
    assert after.snapshot is False  # held, not failed: not read whole again
    # a failed snapshot does not stand for its slot, nor one still running (whose
    # process died: the next scheduled sync reads whole again)
    with hub_app.app_context():
        session = db.session()
        connection = session.get(Connection, connection_id)
        assert connection is not None
        now = at(0, 30, day=9)
        assert snapshot_due(session, connection, now)
        for status in ("failed", "abandoned", "running"):
            session.add(SyncRun(connection_id=connection_id, trigger="schedule",
                                status=status, snapshot=True, started_at=at(0, 0, day=9)))
            session.flush()
            assert snapshot_due(session, connection, now), status
        session.add(SyncRun(connection_id=connection_id, trigger="manual",
                            status="succeeded", snapshot=True, started_at=at(0, 5, day=9)))
        session.flush()
        assert not snapshot_due(session, connection, now)  # a manual snapshot counts
        session.rollback()


def test_the_snapshot_schedule_is_checked_and_can_be_cleared(
        hub_app: Any, registry_url: str) -> None:
    with pytest.raises(InvalidInput, match="snapshot schedule 'weekly'") as info:
        add_sql_connection(hub_app, registry_url, snapshot_schedule="weekly")
    assert "snapshot_schedule" in info.value.fields
    connection_id = add_sql_connection(hub_app, registry_url,
                                       snapshot_schedule="cron:0 3 * * 0")
    settings = conns.SyncSettings.from_config(hub_app.config)
    with hub_app.app_context():
        session = db.session()
        row = session.get(Connection, connection_id)
        assert row is not None and row.snapshot_schedule == "cron:0 3 * * 0"
        conns.edit_connection(session, settings, row, snapshot_schedule="none")
        assert row.snapshot_schedule is None
        assert not snapshot_due(session, row, at(12))
        session.commit()
    runner = hub_app.test_cli_runner()
    result = runner.invoke(args=["connections", "edit", "fr-sql", "--snapshot-schedule",
                                 "cron:0 2 * * sun"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(args=["connections", "edit", "fr-sql", "--snapshot-schedule",
                              "cron:0 2 * *"])
    assert bad.exit_code != 0 and "snapshot schedule" in bad.output
    with hub_app.app_context():
        row = db.session().get(Connection, connection_id)
        assert row is not None and row.snapshot_schedule == "cron:0 2 * * sun"


def test_the_latest_slot_of_weekly_and_monthly_schedules() -> None:
    # a weekly or monthly slot lies further back than a day or two
    now = at(12, 0, day=9)  # a Wednesday
    assert latest_fire(trigger_for("cron:0 3 * * 0"), now) == at(3, 0, day=6)
    assert latest_fire(trigger_for("cron:0 3 1 * *"), now) == at(3, 0, day=1)
    assert latest_fire(trigger_for("cron:0 3 1 1 *"), now) == dt.datetime(
        2026, 1, 1, 3, tzinfo=UTC)
    assert latest_fire(trigger_for("interval:1d"), now) == at(0, 0, day=9)
