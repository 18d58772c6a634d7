"""Node push against a live `aeohub scheduler --poll 0.5` process and a simulated node:
the run starts within 2 s, notifications during a run coalesce into one follow-up run,
and only a connection of the client's own administration can be notified. Node
administrators' webhooks (sync.failed, feed.stale) stay within their administration.

The node sits behind a `Gate`, so that a test holds a run in the middle of its feed for
as long as it needs (a run still running) instead of slowing the node down."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from hub.db import Database
from hub.sim.server import DEFAULT_TOKEN, NodeServer
from hub.sync.connections import SyncSettings, add_connection
from hub.sync.engine import run_sync
from hub.sync.models import Connection, SyncRun
from tests.connectors.nodeserver import Gate, RunningServer
from tests.notify.conftest import partner, subscribe
from tests.notify.receiver import running_receiver
from tests.waiting import wait_until

BIN = Path(sys.executable).parent
FEED = "/aeo/v1/operators"  # the incremental feed a run reads after it has started


@dataclass
class GatedNode:
    """A simulated node (`sim`, for its faults) served behind a `Gate` at `url`."""

    sim: NodeServer
    gate: Gate
    url: str


@pytest.fixture
def node() -> Iterator[GatedNode]:
    sim = NodeServer(["EU-AEO"], size=40, seed=5)
    sim.app.warm()
    gate = Gate(sim.app)
    running = RunningServer(gate)
    try:
        yield GatedNode(sim, gate, running.url)
    finally:
        running.stop()


def add_eu_connection(app, node: GatedNode, name: str = "eu-node") -> int:
    database: Database = app.extensions["aeohub.db"]
    with database.session_scope(write=True) as session:
        connection = add_connection(
            session, SyncSettings.from_config(app.config), name=name,
            connector_type="aeo_node", programmes=["EU-AEO"],
            config={"base_url": node.url, "token": DEFAULT_TOKEN, "programme": "EU-AEO",
                    "max_retries": 0},
            schedule="interval:1h")
        return connection.id


def runs(database: Database, trigger: str = "notify") -> list[SyncRun]:
    with database.session_scope() as session:
        return list(session.scalars(select(SyncRun).where(SyncRun.trigger == trigger)
                                    .order_by(SyncRun.id)))


@pytest.fixture
def scheduler(ref_app) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "AEOHUB_ENV": "testing",
           "AEOHUB_DATABASE_URL": ref_app.config["DATABASE_URL"],
           "AEOHUB_IMPORT_DIR": ref_app.config["IMPORT_DIR"]}
    process = subprocess.Popen([BIN / "aeohub", "scheduler", "--poll", "0.5"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the app is built
        assert "scheduler started" in line, line + (process.stderr.read()
                                                    if process.stderr else "")
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def notify(client: FlaskClient, headers: dict[str, str]) -> dict[str, Any]:
    answer = client.post("/api/v1/nodes/notify", headers=headers,
                         json={"connection": "eu-node"})
    assert answer.status_code == 202, answer.get_json()
    return dict(answer.get_json())


def finished(database: Database, count: int) -> bool:
    """Whether there are `count` notified runs, the last one over."""
    found = runs(database)
    return len(found) == count and found[-1].status != "running"


def test_push_starts_a_run_within_two_seconds_and_coalesces(ref_app, client, committed_db,
                                                            node, scheduler):
    add_eu_connection(ref_app, node)
    admin = partner(committed_db, "EU-AEO", "node:admin")
    # The first push: the node's registry is read, and the scheduler is seen to be up.
    assert notify(client, admin)["connection"] == "eu-node"
    assert wait_until(lambda: finished(committed_db, 1), timeout=30)
    assert runs(committed_db)[0].status == "succeeded"
    assert runs(committed_db)[0].counts["created"] == 40

    # A push to a running scheduler starts a run within 2 s.
    asked = time.monotonic()
    notify(client, admin)
    assert wait_until(lambda: len(runs(committed_db)) == 2, timeout=5)
    started = time.monotonic() - asked
    assert started < 2.0, f"the notified run started after {started:.2f} s"
    assert wait_until(lambda: finished(committed_db, 2), timeout=20)

    # A run held in the middle of its feed: notifications meanwhile coalesce into one
    # follow-up run.
    held = node.gate.hold_next(FEED)
    notify(client, admin)
    assert held.arrived.wait(10), "the third run did not reach the node's feed"
    assert [r.status for r in runs(committed_db)] == ["succeeded", "succeeded", "running"]
    answers = [notify(client, admin) for _ in range(4)]
    assert answers[0]["sync_running"] is True and answers[0]["coalesced"] is False
    assert all(a["sync_running"] and a["coalesced"] for a in answers[1:])
    held.release()
    assert wait_until(lambda: finished(committed_db, 4), timeout=30)
    # The follow-up run took the one pending request: nothing is left to start another.
    with committed_db.session_scope() as session:
        assert session.scalar(select(Connection.notify_requested_at)) is None
    assert [r.status for r in runs(committed_db)] == ["succeeded"] * 4
    assert scheduler.poll() is None


def test_push_is_limited_to_the_clients_administration(ref_app, client, committed_db, node):
    add_eu_connection(ref_app, node)
    japan = partner(committed_db, "JP-AEO", "node:admin")
    refused = client.post("/api/v1/nodes/notify", headers=japan,
                          json={"connection": "eu-node"})
    assert refused.status_code == 404
    assert refused.mimetype == "application/problem+json"
    unknown = client.post("/api/v1/nodes/notify",
                          headers=partner(committed_db, "EU-AEO", "node:admin"),
                          json={"connection": "nowhere"})
    assert unknown.status_code == 404
    no_scope = client.post("/api/v1/nodes/notify",
                           headers=partner(committed_db, "EU-AEO", "webhooks"),
                           json={"connection": "eu-node"})
    assert no_scope.status_code == 403
    with committed_db.session_scope() as session:
        assert session.scalar(select(Connection.notify_requested_at)) is None


#: another script's digits, which Python's int() reads as numbers
OTHER_DIGITS = {"arabic-indic": 0x0660, "fullwidth": 0xFF10}


@pytest.mark.parametrize("form", ["beyond the integer", "zero", *OTHER_DIGITS])
def test_a_connection_reference_that_is_no_id_names_no_connection(
        ref_app, client, committed_db, node, form):
    """Ids are ASCII digits within the database's integer (`hub.ids`): a number beyond it
    answered 500 on PostgreSQL, and the connection's id in another script's digits named
    the connection."""
    connection_id = add_eu_connection(ref_app, node)
    ref = {"beyond the integer": "9" * 30, "zero": "0"}.get(form) or "".join(
        chr(OTHER_DIGITS[form] + int(digit)) for digit in str(connection_id))
    answer = client.post("/api/v1/nodes/notify",
                         headers=partner(committed_db, "EU-AEO", "node:admin"),
                         json={"connection": ref})
    assert answer.status_code == 404, answer.get_json()
    with committed_db.session_scope() as session:
        assert session.scalar(select(Connection.notify_requested_at)) is None


def test_node_admin_webhooks_stay_in_their_administration(ref_app, client, committed_db,
                                                          node, worker):
    connection_id = add_eu_connection(ref_app, node)
    with running_receiver() as eu_hook, running_receiver() as jp_hook:
        subscribe(client, partner(committed_db, "EU-AEO", "webhooks,node:admin"), eu_hook,
                  ["sync.failed", "feed.stale"])
        subscribe(client, partner(committed_db, "JP-AEO", "webhooks,node:admin"), jp_hook,
                  ["sync.failed", "feed.stale"])
        refused = client.post("/api/v1/webhooks",
                              headers=partner(committed_db, "US-CTPAT", "webhooks"),
                              json={"url": eu_hook.url, "events": ["sync.failed"]})
        assert refused.status_code == 400
        assert [e["field"] for e in refused.get_json()["errors"]] == ["events"]
        node.sim.set_faults(error_rate=1.0)
        run = run_sync(committed_db, SyncSettings.from_config(ref_app.config), connection_id)
        assert run is not None and run.status == "failed"
        with committed_db.session_scope(write=True) as session:
            session.execute(update(Connection).values(
                last_success_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3)))
        worker.run_once()
        assert eu_hook.wait_for(lambda r: len(r.accepted()) == 2)
        events = {e["type"]: e["data"] for e in eu_hook.accepted()}
        assert events["sync.failed"]["connection"] == "eu-node"
        assert events["sync.failed"]["run_id"] == run.id
        assert events["feed.stale"]["administration"] == "EU"
        worker.run_once()
        assert len(eu_hook.requests) == 2  # each once
        assert jp_hook.requests == []
