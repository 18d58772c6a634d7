"""Real `kill -9` of real sync processes at named points, then a resumed run.

Each kill point is named in the engine (`hub.sync.engine.kill_point`): the process kills
itself there when `AEOHUB_SYNC_TEST_HOOK` names it, so the tests never depend on timing. At
every moment a reader sees exactly the old snapshot or the new one; after the resumed run
(same run id) exactly the new one, with counts for the whole snapshot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from hub import clock as hub_clock
from hub import db
from hub.arrangements.service import load_reference_data
from hub.registry.models import Operator, OperatorEvent
from hub.sync import connections as conns
from hub.sync import engine
from hub.sync.models import Connection, StagedRecord, SyncRun
from hub.sync.scheduler import HubScheduler
from tests.sync.feeds import eu_row, write_feed

BIN = Path(sys.executable).parent
LEASE = 1


@pytest.fixture
def size():
    """Operators in the feed: a smoke size here; `make bench` kills runs of 60,000
    (tests/benchmarks/bench_sync_kills.py)."""
    return 120


def _env(app, **extra):
    return {**os.environ, "AEOHUB_DATABASE_URL": app.config["DATABASE_URL"],
            "AEOHUB_IMPORT_DIR": app.config["IMPORT_DIR"],
            "AEOHUB_SYNC_LEASE_SECONDS": str(LEASE), **extra}


def _sync(app, hook=None):
    extra = {"AEOHUB_SYNC_TEST_HOOK": hook} if hook else {}
    return subprocess.run([BIN / "aeohub", "sync", "run", "feed", "--json"],
                          env=_env(app, **extra), capture_output=True, text=True,
                          timeout=120, check=False)


def _registry(app):
    """What a reader sees: each listed operator's key and name."""
    with db.get_db(app).session_scope() as session:
        return frozenset(session.execute(
            select(Operator.stable_key, Operator.legal_name)
            .where(Operator.removed_at.is_(None))))


def _runs(app):
    with db.get_db(app).session_scope() as session:
        return [(r.id, r.status) for r in session.scalars(select(SyncRun).order_by(SyncRun.id))]


def _staged(app):
    with db.get_db(app).session_scope() as session:
        return len(session.scalars(select(StagedRecord.stable_key)).all())


@pytest.fixture
def feeds(app, size):
    """A synced old snapshot and, in the same file, a new one: every name changed, ten
    operators gone, ten new."""
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    path = Path(app.config["IMPORT_DIR"]) / "registry.csv"
    write_feed(path, [eu_row(i) for i in range(1, size + 1)])
    settings = conns.SyncSettings.from_config(app.config)
    with app.app_context():
        connection = conns.add_connection(
            db.session(), settings, name="feed", connector_type="csv_snapshot",
            programmes=["EU-AEO"], schedule="interval:1d",
            config={"path": str(path), "programme": "EU-AEO",
                    "batch_size": max(20, size // 6)})
        db.session().commit()
        connection_id = connection.id
    first = engine.run_sync(db.get_db(app), settings, connection_id)
    assert first is not None and first.status == "succeeded", first and first.error
    old = _registry(app)
    new_rows = [eu_row(i, legal_name=f"Neue Logistik {i} GmbH")
                for i in range(11, size + 11)]
    write_feed(path, new_rows)
    new = frozenset((f"DE{i:015d}", f"Neue Logistik {i} GmbH") for i in range(11, size + 11))
    return path, old, new


def _third_feed(path, size):
    """Another feed written over the one a killed run was reading (every name changed
    again); the registry a reader should see once it is synced."""
    write_feed(path, [eu_row(i, legal_name=f"Dritte {i} AG") for i in range(1, size + 1)])
    return frozenset((f"DE{i:015d}", f"Dritte {i} AG") for i in range(1, size + 1))


def _tick(app):
    """One poll of a scheduler starting in this process, its runs to their end."""
    scheduler = HubScheduler(app, poll_seconds=0.1)
    scheduler.reload()
    try:
        scheduler.tick()
    finally:
        scheduler.pool.shutdown(wait=True)


class Reader(threading.Thread):
    """Reads the registry over and over while a run goes on, keeping what it saw."""

    def __init__(self, app):
        super().__init__(daemon=True)
        self.app, self.seen, self.stop = app, set(), threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.seen.add(_registry(self.app))


@pytest.mark.slow
@pytest.mark.parametrize("point", ["batch-3", "staged", "before-switch", "in-switch"])
def test_a_killed_snapshot_resumes_and_readers_never_see_a_mix(app, feeds, size, point):
    _path, old, new = feeds
    killed = _sync(app, hook=point)
    assert killed.returncode == -9, killed.stderr
    assert _registry(app) == old
    (_, _), (killed_id, status) = _runs(app)
    assert status == "running"
    time.sleep(LEASE + 0.2)  # the dead process's lease expires

    reader = Reader(app)
    reader.start()
    resumed = _sync(app)
    reader.stop.set()
    reader.join(10)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert result["id"] == killed_id  # the same run, resumed
    assert (result["status"], result["read"], result["created"], result["updated"],
            result["removed"], result["quarantined"]) == (
        "succeeded", size, 10, size - 10, 10, 0)
    assert _registry(app) == new
    assert reader.seen <= {old, new}
    assert _staged(app) == 0
    with db.get_db(app).session_scope() as session:
        created = session.scalars(select(OperatorEvent.operator_id).where(
            OperatorEvent.kind == "created")).all()
    assert len(created) == len(set(created)) == size + 10  # nothing applied twice


@pytest.mark.slow
def test_a_feed_changed_after_a_kill_starts_again(app, feeds, size):
    path, old, _new = feeds
    assert _sync(app, hook="staged").returncode == -9
    third = _third_feed(path, size)
    time.sleep(LEASE + 0.2)
    again = _sync(app)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout.strip().splitlines()[-1])
    assert (result["read"], result["updated"], result["created"], result["removed"]) == (
        size, size, 0, 0)
    assert [status for _, status in _runs(app)] == ["succeeded", "abandoned", "succeeded"]
    assert _registry(app) == third and old != third


@pytest.mark.slow
@pytest.mark.parametrize("feed_changed", [False, True])
def test_a_scheduled_run_killed_mid_run_is_run_again_in_its_slot(app, feeds, size,
                                                                 feed_changed):
    """`aeohub scheduler --once` killed after its first staged batch: its slot is not
    lost until the next one. A scheduler starting (the same feed: the dead run resumes)
    or ticking (another feed: the dead run is abandoned and gives its slot up) runs it
    again at once, and once."""
    path, old, new = feeds
    killed = subprocess.run([BIN / "aeohub", "scheduler", "--once"],
                            env=_env(app, AEOHUB_SYNC_TEST_HOOK="batch-1"),
                            capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr
    (first_id, _), (killed_id, status) = _runs(app)
    assert status == "running" and _registry(app) == old
    with db.get_db(app).session_scope() as session:
        dead = session.get(SyncRun, killed_id)
        assert dead is not None and dead.scheduled_for is not None
        slot, connection_id = dead.scheduled_for, dead.connection_id
    if feed_changed:
        new = _third_feed(path, size)
    time.sleep(LEASE + 0.2)  # the dead process's lease expires

    scheduler = HubScheduler(app, poll_seconds=0.1)
    scheduler.reload()
    assert scheduler.unserved_slots() == {connection_id: (slot, "died")}
    try:
        if feed_changed:
            scheduler.tick()  # a running scheduler notices the dead run
        else:
            scheduler.catch_up()  # as a scheduler starting does
    finally:
        scheduler.pool.shutdown(wait=True)
    with db.get_db(app).session_scope() as session:
        runs = [(r.id, r.status, r.scheduled_for)
                for r in session.scalars(select(SyncRun).order_by(SyncRun.id))]
    if feed_changed:
        assert runs[1:] == [(killed_id, "abandoned", slot), (runs[2][0], "succeeded", slot)]
    else:
        assert runs[1:] == [(killed_id, "succeeded", slot)]  # resumed: the same run
    assert runs[0][0] == first_id and _registry(app) == new and _staged(app) == 0
    assert scheduler.unserved_slots() == {}  # served: nothing more to run


@pytest.mark.slow
@pytest.mark.parametrize("feed_changed", [False, True])
def test_a_notified_run_killed_mid_run_is_followed_up(app, feeds, size, feed_changed):
    """A scheduler killed in a node's notified run, after its first staged batch: the
    notification is not lost until the node's next push or the next slot. The next tick
    of a scheduler gives it back, and the follow-up run resumes the dead run (the same
    feed) or abandons it and reads the feed again (another feed)."""
    path, old, new = feeds
    with db.get_db(app).session_scope(write=True) as session:
        connection_id = session.scalars(select(Connection.id)).one()
        session.execute(update(Connection).values(notify_requested_at=hub_clock.now()))
    killed = subprocess.run([BIN / "aeohub", "scheduler", "--poll", "0.1"],
                            env=_env(app, AEOHUB_SYNC_TEST_HOOK="batch-1"),
                            capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr
    (first_id, _), (killed_id, status) = _runs(app)
    assert status == "running" and _registry(app) == old and _staged(app) > 0
    if feed_changed:
        new = _third_feed(path, size)
    time.sleep(LEASE + 0.2)  # the dead process's lease expires

    _tick(app)
    with db.get_db(app).session_scope() as session:
        runs = [(r.id, r.trigger, r.status)
                for r in session.scalars(select(SyncRun).order_by(SyncRun.id))]
        assert session.scalar(select(Connection.notify_requested_at).where(
            Connection.id == connection_id)) is None
    if feed_changed:
        assert runs[1:] == [(killed_id, "notify", "abandoned"),
                            (runs[2][0], "notify", "succeeded")]
    else:
        assert runs[1:] == [(killed_id, "notify", "succeeded")]  # resumed: the same run
    assert runs[0][0] == first_id and _registry(app) == new and _staged(app) == 0
