"""Real processes: a sync killed with SIGKILL resumes without duplicates, and two
schedulers on one database run each due slot exactly once."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub import db
from hub.arrangements.service import load_reference_data
from hub.registry.models import Operator, OperatorEvent
from hub.sync.models import StagedBatch, SyncRun
from tests.sync.feeds import eu_row, write_feed

BIN = Path(sys.executable).parent


class SlowCsv(BaseHTTPRequestHandler):
    """Serves a CSV a chunk at a time, slowly, like a struggling administration node."""

    body: bytes = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        for start in range(0, len(self.body), 8192):
            try:
                self.wfile.write(self.body[start:start + 8192])
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            time.sleep(0.05)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_node(tmp_path):
    path = write_feed(tmp_path / "big.csv", [eu_row(i) for i in range(1, 3001)])
    handler = type("Handler", (SlowCsv,), {"body": path.read_bytes()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/registry.csv"
    server.shutdown()
    server.server_close()


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


def test_sigkill_mid_snapshot_then_resume(loaded_app, slow_node):
    app = loaded_app
    config = json.dumps({"url": slow_node, "programme": "EU-AEO", "batch_size": 100})
    added = _cli(app, "connections", "add", "--name", "slow", "--type", "csv_snapshot",
                 "--programme", "EU-AEO", "--config", config, "--schedule", "interval:1h")
    assert added.returncode == 0, added.stderr
    proc = subprocess.Popen([BIN / "aeohub", "sync", "run", "slow"], env=_env(app),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _count(app, select(func.count()).select_from(StagedBatch)) < 3:
            assert time.monotonic() < deadline, "the sync never staged a batch"
            assert proc.poll() is None, "the sync ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    staged = _count(app, select(func.count()).select_from(StagedBatch))
    assert staged >= 3
    # Readers never see half a snapshot.
    assert _count(app, select(func.count()).select_from(Operator)) == 0
    time.sleep(2.5)  # the dead run's lease expires
    resumed = _cli(app, "sync", "run", "slow", "--json")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded" and result["created"] == 3000
    assert _count(app, select(func.count()).select_from(Operator)) == 3000
    assert _count(app, select(func.count(func.distinct(Operator.stable_key)))) == 3000
    created = select(func.count()).select_from(OperatorEvent).where(
        OperatorEvent.kind == "created")
    assert _count(app, created) == 3000
    assert _count(app, select(func.count()).select_from(StagedBatch)) == 0
    with app.app_context():
        runs = db.session().scalars(select(SyncRun).order_by(SyncRun.id)).all()
        assert [r.status for r in runs] == ["failed", "succeeded"]
        assert "resumed by run" in (runs[0].error or "")


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
    try:
        time.sleep(13)
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
    slots = [r.scheduled_for for r in runs]
    assert len(slots) >= 3
    assert len(set(slots)) == len(slots)  # never twice
    # Slots are the trigger's own fire times, identical in both processes. A loaded
    # machine may coalesce a late fire into the next slot, but never run one twice.
    seconds = [(b - a).total_seconds() for a, b in itertools.pairwise(slots)]
    assert all(s % 2 == 0 and s > 0 for s in seconds), seconds
    assert {r.status for r in runs} == {"succeeded"}
    assert runs[0].counts["created"] == 10
    assert all(r.counts["unchanged"] == 10 for r in runs[1:])
