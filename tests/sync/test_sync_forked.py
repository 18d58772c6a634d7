"""A snapshot sorted in a forked child, with its creations built while the child sorts:
the same registry as sorting in one process, and every fault of the child is the run's.

`hub.sync.forked` is tested with real processes: items, exceptions, a killed child, a
parent that stops early and a parent that dies.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import ConnectorError
from hub import db
from hub.arrangements.service import load_reference_data
from hub.registry.models import Operator, OperatorEvent, OperatorIdentifier
from hub.registry.service import RECORD_COLUMNS
from hub.sync import apply, engine, forked
from hub.sync import connections as conns
from hub.sync.models import QuarantinedRecord, StagedBatch
from hub.sync.spool import Spool
from tests.conftest import wipe
from tests.sync.feeds import eu_row, write_feed

ROOT = Path(__file__).resolve().parents[2]

# --- hub.sync.forked ------------------------------------------------------------------


def _items(n: int) -> Iterator[tuple[int, int]]:
    for i in range(n):
        yield i, os.getpid()


def test_items_come_in_order_from_another_process() -> None:
    got = list(forked.in_child(_items(50)))
    assert [i for i, _ in got] == list(range(50))
    assert {pid for _, pid in got} != {os.getpid()} and len({pid for _, pid in got}) == 1


def test_a_large_item_crosses_the_pipe() -> None:
    def big() -> Iterator[bytes]:
        yield b"x" * 5_000_000
        yield b"y"

    assert [len(item) for item in forked.in_child(big())] == [5_000_000, 1]


def _failing() -> Iterator[int]:
    yield 1
    raise ConnectorError("the node answered 503 at page 2")


def test_the_childs_exception_is_raised_in_the_parent() -> None:
    received = []
    with pytest.raises(ConnectorError, match="503 at page 2"):
        for item in forked.in_child(_failing()):
            received.append(item)
    assert received == [1]


def test_an_exception_that_cannot_be_sent_is_named() -> None:
    class LocalError(Exception):  # a local class cannot be pickled
        pass

    def failing() -> Iterator[int]:
        raise LocalError("parse failed at line 7")
        yield 0

    with pytest.raises(forked.ChildFailed, match="LocalError: parse failed at line 7"):
        list(forked.in_child(failing()))


def test_a_killed_child_fails_the_iteration_with_its_signal() -> None:
    def killed() -> Iterator[int]:
        yield 1
        os.kill(os.getpid(), signal.SIGKILL)
        yield 2

    received = []
    with pytest.raises(forked.ChildFailed, match=r"ended without finishing.*exit code -9"):
        for item in forked.in_child(killed(), name="probe"):
            received.append(item)
    assert received == [1]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie no longer runs


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_parent_that_stops_early_stops_the_child() -> None:
    def endless() -> Iterator[int]:
        while True:
            yield os.getpid()

    iterator = forked.in_child(endless())
    child = next(iterator)
    assert not _gone(child)
    iterator.close()  # the parent leaves the loop
    assert _wait_gone(child)


def test_a_dead_parent_leaves_no_child_behind(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import os, sys, time
        from hub.sync import forked

        def endless():
            while True:
                yield os.getpid(), b"x" * 100_000  # fills the pipe: the child waits

        items = forked.in_child(endless())  # kept: closing it would stop the child
        child, _ = next(items)
        print(child, flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not _gone(child)
        parent.kill()  # SIGKILL: no clean-up of any kind in the parent
        parent.wait(10)
        assert _wait_gone(child), "the child outlived its parent"
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout:
            parent.stdout.close()


# --- the spool -------------------------------------------------------------------------


def test_the_spool_gives_each_value_back_once() -> None:
    spool = Spool()
    plain = (["DE1", "DE2"], [(0, "text", None, 1.5, True)], "2026-01-01")
    with_objects = {"EU-AEO": (dt.date(2026, 1, 1), [(0, dt.date(2019, 3, 1))])}
    spool.put(1, plain)
    spool.put(2, with_objects)  # dates: marshal refuses them, pickle takes them
    assert spool.take(2) == with_objects
    assert spool.take(1) == plain
    assert spool.take(1) is None and spool.take(3) is None
    spool.close()
    assert spool.take(2) is None


# --- the sync engine -------------------------------------------------------------------


def _feed_rows() -> list[dict[str, str]]:
    rows = [eu_row(i) for i in range(1, 13)]
    rows[2] = eu_row(3, status="suspended", status_effective="2024-05-01",
                     categories="AEOC:valid:2019-03-01|AEOS:suspended:2024-05-01")
    rows[3] = eu_row(4, identifiers="MID:DEMUSHAM1234HAM:linked|LEI:5299000J2N45DDNE4Y28")
    rows[6] = eu_row(7, status="sleeping", country="Germany")  # quarantined
    rows.append(eu_row(2, legal_name="Impostor GmbH"))  # a duplicate key, a later batch
    return rows


def _churned_rows() -> list[dict[str, str]]:
    rows = [eu_row(i) for i in range(1, 12)] + [eu_row(13)]  # 12 removed, 13 new
    rows[0] = eu_row(1, categories="AEOC:valid:2019-03-01|AEOS:suspended:2024-05-01")
    rows[4] = eu_row(5, status="exploded")  # an existing operator's row broken
    return rows


def _registry(app: Any) -> dict[str, Any]:
    """The registry and quarantine without ids or write times (they differ by run), and
    each event's source without its connection id."""
    with app.app_context():
        session = db.session()
        keys = dict(session.execute(select(Operator.id, Operator.stable_key)).all())
        operators = sorted(
            (o.stable_key, *(getattr(o, c) for c in RECORD_COLUMNS), o.removed_at is None,
             o.last_effective) for o in session.scalars(select(Operator)))
        events = sorted(
            (keys[e.operator_id], e.kind, e.effective_date, json.dumps(e.changes),
             json.dumps(e.previous), (e.source or "").split(":")[0])
            for e in session.scalars(select(OperatorEvent)))
        identifiers = sorted((keys[i.operator_id], i.scheme, i.value, i.origin, i.linked)
                             for i in session.scalars(select(OperatorIdentifier)))
        quarantined = sorted(
            (q.stable_key or "", q.position or "", json.dumps(q.reasons, sort_keys=True),
             json.dumps(q.record, sort_keys=True))
            for q in session.scalars(select(QuarantinedRecord)))
        staged = session.scalars(select(StagedBatch)).all()
    return {"operators": operators, "events": events, "identifiers": identifiers,
            "quarantined": quarantined, "staged left": len(staged)}


def _scenario(app: Any, tmp_path: Path, *, in_child: bool,
              monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], dict[str, Any], int]:
    """Full sync, churned sync, unchanged re-sync: runs, registry, prepared creations used."""
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    feed = write_feed(tmp_path / "eu.csv", _feed_rows())
    settings = dataclasses.replace(conns.SyncSettings.from_config(app.config),
                                   sort_in_child=in_child)
    with app.app_context():
        connection = conns.add_connection(
            db.session(), settings, name="eu-csv", connector_type="csv_snapshot",
            programmes=["EU-AEO"], schedule="interval:1h",
            config={"path": str(feed), "programme": "EU-AEO", "batch_size": 3})
        connection.max_removal_share = connection.max_change_share = 1.0
        db.session().commit()
        connection_id = connection.id
    used: list[int] = []
    prepared_for = engine.SyncJob._prepared_for

    def counting(job: engine.SyncJob, *args: Any) -> Any:
        ready = prepared_for(job, *args)
        used.append(len(ready.keys) if ready is not None else 0)
        return ready

    monkeypatch.setattr(engine.SyncJob, "_prepared_for", counting)
    database = db.get_db(app)
    runs = [engine.run_sync(database, settings, connection_id)]
    write_feed(feed, _churned_rows())
    runs.append(engine.run_sync(database, settings, connection_id))
    runs.append(engine.run_sync(database, settings, connection_id))
    outcome = [(run.status, run.error, {k: run.counts.get(k) for k in engine.COUNT_NAMES})
               for run in runs]
    return outcome, _registry(app), sum(used)


def test_sorting_in_a_child_changes_nothing_but_where_the_work_runs(
        app: Any, committed_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pids = tmp_path / "sorting-pids"
    sort_records = engine.SyncJob._sort_records

    def noting_pid(job: engine.SyncJob, batch: Any) -> None:
        with pids.open("a") as handle:
            handle.write(f"{os.getpid()}\n")
        sort_records(job, batch)

    monkeypatch.setattr(engine.SyncJob, "_sort_records", noting_pid)
    child_runs, child_registry, child_prepared = _scenario(
        app, tmp_path, in_child=True, monkeypatch=monkeypatch)
    child_pids = set(pids.read_text().split())
    pids.unlink()
    wipe(committed_db)
    here_runs, here_registry, here_prepared = _scenario(
        app, tmp_path, in_child=False, monkeypatch=monkeypatch)

    assert child_runs == here_runs
    assert [status for status, _, _ in child_runs] == ["succeeded"] * 3, child_runs
    first, churned, again = (counts for _, _, counts in child_runs)
    assert first == {"read": 13, "created": 10, "updated": 0, "unchanged": 0,
                     "removed": 0, "quarantined": 3}
    # 2 and 7 (quarantined before) and 13 created; 1, 3 (status) and 4 (identifiers)
    # updated; 12 removed; 5 quarantined, keeping its last good state
    assert churned == {"read": 12, "created": 3, "updated": 3, "unchanged": 5,
                       "removed": 1, "quarantined": 1}
    assert again == {"read": 12, "created": 0, "updated": 0, "unchanged": 11,
                     "removed": 0, "quarantined": 1}
    assert again["created"] == again["updated"] == again["removed"] == 0
    assert child_registry == here_registry
    assert child_registry["operators"] and child_registry["staged left"] == 0
    # the child sorted (one process per run, none of them this one); this process built
    # the creations while it did, and the switch used them
    assert str(os.getpid()) not in child_pids and len(child_pids) == 3
    assert set(pids.read_text().split()) == {str(os.getpid())}
    # every creation but those of the first batch (1 and 3): built before the later
    # batch showed its 2 to be a duplicate, so the switch built that batch's itself
    assert child_prepared == 8 + 3 and here_prepared == 0


def test_prepared_creations_are_used_only_when_they_are_what_the_switch_would_build(
        app: Any) -> None:
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    settings = conns.SyncSettings.from_config(app.config)
    job = engine.SyncJob(db.get_db(app), settings, 1, trigger="manual", dry_run=False,
                         scheduled_for=None, progress=None)
    job.run_id = 7
    today = dt.date(2026, 3, 1)
    entries: list[Any] = [["EU-AEO", "DE1", [], []], ["EU-AEO", "DE2", [], []]]

    def ready(keys: list[str], day: dt.date = today, run_id: int = 7) -> dict[str, Any]:
        return {"EU-AEO": apply.PreparedCreations(day, run_id, keys, [], [], []).plain()}

    assert job._prepared_for(ready(["DE1", "DE2"]), "EU-AEO", entries, today) is not None
    assert job._prepared_for(ready(["DE1"]), "EU-AEO", entries, today) is None
    assert job._prepared_for(ready(["DE2", "DE1"]), "EU-AEO", entries, today) is None
    assert job._prepared_for(ready(["DE1", "DE2"], day=dt.date(2026, 2, 28)),
                             "EU-AEO", entries, today) is None
    assert job._prepared_for(ready(["DE1", "DE2"], run_id=6), "EU-AEO", entries,
                             today) is None
    assert job._prepared_for(None, "EU-AEO", entries, today) is None


def _eu_connection(app: Any, tmp_path: Path, operators: int
                   ) -> tuple[conns.SyncSettings, int]:
    """Reference data and a CSV connection (batches of 3) to a feed of `operators`."""
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    feed = write_feed(tmp_path / "eu.csv", [eu_row(i) for i in range(1, operators + 1)])
    settings = conns.SyncSettings.from_config(app.config)
    with app.app_context():
        connection_id = conns.add_connection(
            db.session(), settings, name="eu-csv", connector_type="csv_snapshot",
            programmes=["EU-AEO"], schedule="interval:1h",
            config={"path": str(feed), "programme": "EU-AEO", "batch_size": 3}).id
        db.session().commit()
    return settings, connection_id


def test_a_sorting_child_that_dies_fails_the_run_and_changes_nothing(
        app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, connection_id = _eu_connection(app, tmp_path, 9)
    assert settings.sort_in_child
    parent = os.getpid()
    sort_records = engine.SyncJob._sort_records

    def dying(job: engine.SyncJob, batch: Any) -> None:
        if os.getpid() != parent and job.counts["read"] >= 3:  # the child, second batch
            os.kill(os.getpid(), signal.SIGKILL)
        sort_records(job, batch)

    monkeypatch.setattr(engine.SyncJob, "_sort_records", dying)
    database = db.get_db(app)
    run = engine.run_sync(database, settings, connection_id)
    assert run is not None and run.status == "failed"
    assert "sync sorter process ended without finishing" in (run.error or "")
    assert "exit code -9" in (run.error or "")
    with app.app_context():
        assert db.session().scalars(select(Operator)).all() == []

    monkeypatch.setattr(engine.SyncJob, "_sort_records", sort_records)
    again = engine.run_sync(database, settings, connection_id)
    assert again is not None and again.status == "succeeded", again.error
    assert again.counts["created"] == 9


# --- the page cache of bulk writes ------------------------------------------------------


def test_a_bulk_write_gets_a_larger_sqlite_page_cache_then_the_old_one(committed_db: Any
                                                                       ) -> None:
    from hub.db import sqlite_page_cache

    with committed_db.session_scope(write=True) as session:
        connection = session.connection()
        if connection.dialect.name != "sqlite":
            with sqlite_page_cache(session, 16):  # nothing to size on PostgreSQL
                pass
            # a PRAGMA sent to PostgreSQL would have raised and aborted the transaction
            assert session.in_transaction()
            assert connection.exec_driver_sql("SELECT 1").scalar_one() == 1
            return
        before = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
        with sqlite_page_cache(session, 16):
            assert connection.exec_driver_sql("PRAGMA cache_size").scalar_one() == -16384
        assert connection.exec_driver_sql("PRAGMA cache_size").scalar_one() == before
        with pytest.raises(RuntimeError), sqlite_page_cache(session, 8):
            raise RuntimeError("the write failed")
        assert connection.exec_driver_sql("PRAGMA cache_size").scalar_one() == before
        with sqlite_page_cache(session, 0):  # 0: SQLite's own size
            assert connection.exec_driver_sql("PRAGMA cache_size").scalar_one() == before
        driver = connection.connection.driver_connection
        with sqlite_page_cache(session, 16):
            session.rollback()  # a held switch rolls back inside: its connection is gone
        assert driver.execute("PRAGMA cache_size").fetchone()[0] == before


def test_without_room_for_the_spool_the_switch_builds_the_creations(
        app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    settings, connection_id = _eu_connection(app, tmp_path, 7)

    def full(spool: Spool, key: Any, value: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Spool, "put", full)
    run = engine.run_sync(db.get_db(app), settings, connection_id)
    assert run is not None and run.status == "succeeded", run.error
    assert run.counts["created"] == 7
    assert "built at the switch instead" in caplog.text
    with app.app_context():
        assert len(db.session().scalars(select(Operator)).all()) == 7


def test_a_failure_here_ends_the_sorting_child_before_the_run_fails(
        app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # more batches than the pipe's buffer holds: the child is still at work
    settings, connection_id = _eu_connection(app, tmp_path, 3000)
    pids = tmp_path / "sorting-pids"
    sort_records = engine.SyncJob._sort_records
    stage_batch = engine.SyncJob._stage_batch

    def noting_pid(job: engine.SyncJob, batch: Any) -> None:
        if not pids.exists():
            pids.write_text(f"{os.getpid()}\n")
        sort_records(job, batch)

    def failing(job: engine.SyncJob, sorted_batch: Any) -> None:
        if job.staged_seq >= 1:
            raise ConnectionResetError("the database went away while staging")
        stage_batch(job, sorted_batch)

    fail = engine.SyncJob._fail
    child_at_failure: list[bool] = []

    def failing_run(job: engine.SyncJob, exc: Exception) -> None:
        # the failure is recorded (and the lease released) with the child already gone
        (child,) = {int(pid) for pid in pids.read_text().split()}
        child_at_failure.append(child != os.getpid() and _gone(child))
        fail(job, exc)

    monkeypatch.setattr(engine.SyncJob, "_sort_records", noting_pid)
    monkeypatch.setattr(engine.SyncJob, "_stage_batch", failing)
    monkeypatch.setattr(engine.SyncJob, "_fail", failing_run)
    run = engine.run_sync(db.get_db(app), settings, connection_id)
    assert run is not None and run.status == "failed"
    assert "went away while staging" in (run.error or "")
    assert child_at_failure == [True]


def test_the_works_own_broken_connection_is_not_taken_for_the_parents() -> None:
    def reset() -> Iterator[int]:
        yield 1
        raise ConnectionResetError("the node reset the connection")

    with pytest.raises(ConnectionResetError, match="the node reset the connection"):
        list(forked.in_child(reset()))


def test_a_child_ends_promptly_though_its_parent_handles_sigterm() -> None:
    """The scheduler handles SIGTERM (stop after the running jobs); a sorting child
    forked from it must still end at once when its parent stops early."""
    script = textwrap.dedent("""
        import os, signal, time
        from hub.sync import forked

        signal.signal(signal.SIGTERM, lambda *_: None)  # as the scheduler does

        def slow():
            yield os.getpid()
            time.sleep(30)  # a long read from a node: the child is not at the pipe
            yield os.getpid()

        items = forked.in_child(slow())
        next(items)
        started = time.monotonic()
        items.close()
        print(f"{time.monotonic() - started:.2f}", flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert float(done.stdout) < 5.0, done.stdout  # not the 10 s wait before SIGKILL
