"""Real processes: two schedulers on one database run each due slot exactly once (kills
of sync processes: `test_sync_kills.py`)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from hub import db
from hub.arrangements.service import load_reference_data
from hub.sync.models import SyncRun
from tests.sync.feeds import eu_row, write_feed
from tests.waiting import wait_until

BIN = Path(sys.executable).parent


def _env(app, **extra):
    return {**os.environ, "AEOHUB_DATABASE_URL": app.config["DATABASE_URL"],
            "AEOHUB_IMPORT_DIR": app.config["IMPORT_DIR"], "AEOHUB_SYNC_LEASE_SECONDS": "2",
            **extra}


def _cli(app, *args, timeout=120):
    return subprocess.run([BIN / "aeohub", *args], env=_env(app), capture_output=True,
                          text=True, timeout=timeout, check=False)


def _count(app, query):
    with app.app_context():
        session = db.session()
        value = session.scalar(query)
        session.close()
        return value


@pytest.fixture
def loaded_app(app):
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    return app


def test_two_schedulers_run_each_slot_once(loaded_app, tmp_path, backend):
    if backend != "postgresql":
        pytest.skip("several scheduler processes coordinate through PostgreSQL")
    app = loaded_app
    feed = write_feed(Path(app.config["IMPORT_DIR"]) / "small.csv",
                      [eu_row(i) for i in range(1, 11)])
    added = _cli(app, "connections", "add", "--name", "tick", "--type", "csv_snapshot",
                 "--programme", "EU-AEO", "--config",
                 json.dumps({"path": str(feed), "programme": "EU-AEO"}),
                 "--schedule", "interval:2s")
    assert added.returncode == 0, added.stderr
    procs = [subprocess.Popen([BIN / "aeohub", "scheduler", "--poll", "0.5"], env=_env(app),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    def finished_slots() -> int:
        with app.app_context():
            return len(db.session().scalars(select(SyncRun).where(
                SyncRun.trigger == "schedule", SyncRun.status != "running")).all())

    try:
        # Both schedulers race for every 2-second slot until four runs have finished.
        assert wait_until(lambda: finished_slots() >= 4, timeout=60, interval=0.5)
        for proc in procs:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stderr:
                proc.stderr.close()
    with app.app_context():
        runs = db.session().scalars(select(SyncRun).where(SyncRun.trigger == "schedule")
                                    .order_by(SyncRun.scheduled_for)).all()
    slots = [r.scheduled_for for r in runs if r.scheduled_for is not None]
    assert len(slots) == len(runs) >= 3  # every scheduled run names its slot
    assert len(set(slots)) == len(slots)  # never twice
    # Slots are the trigger's own fire times, identical in both processes. A loaded
    # machine may coalesce a late fire into the next slot, but never run one twice.
    seconds = [(b - a).total_seconds() for a, b in itertools.pairwise(slots)]
    assert all(s % 2 == 0 and s > 0 for s in seconds), seconds
    assert {r.status for r in runs} == {"succeeded"}
    assert runs[0].counts["created"] == 10
    assert all(r.counts["unchanged"] == 10 for r in runs[1:])
