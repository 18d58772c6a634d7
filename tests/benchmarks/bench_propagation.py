"""End-to-end propagation of a suspension: node -> hub -> partner's webhook receiver.

A simulated EU node (`hub.sim.server.NodeServer`) suspends an operator and notifies the
hub (`POST /api/v1/nodes/notify` over HTTP to the hub under gunicorn); the scheduler
process (`aeohub scheduler --poll 0.5`) runs the incremental sync, the webhook worker
(`aeohub worker --poll 0.5`) derives and signs `operator.suspended` for a US CBP client,
and a receiver on loopback verifies the signature. Latency runs from the node's change to
the receiver's verified receipt, one suspension at a time. Measured twice in the same
run: idle (the baseline) and with the hub under a background verify load (4 threads of
one-by-one `POST /api/v1/verify`). Figures are printed, never asserted (target: p99 under
5 s).

    AEOHUB_BENCH_SCALE=full pytest tests/benchmarks/bench_propagation.py -s -p no:randomly
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import select

from hub import create_app
from hub.auth import policy
from hub.db import Database
from hub.notify.models import WebhookDelivery
from hub.registry.models import Operator, Programme
from hub.sim.server import DEFAULT_TOKEN, NodeServer
from hub.sync.connections import SyncSettings, add_connection
from hub.sync.engine import run_sync
from hub.sync.models import SyncRun
from tests.auth.hubkit import bearer, gunicorn_server, load_reference, make_client
from tests.notify.receiver import Receiver, running_receiver

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
# (suspensions under load, idle baseline suspensions, node size)
SIZES = {"smoke": (2, 1, 100), "full": (120, 30, 2000)}
VERIFY_THREADS = 4
POLL = "0.5"


@contextmanager
def process(*args: str, env: dict[str, str], ready: str) -> Iterator[subprocess.Popen[str]]:
    """An `aeohub` process, once it has printed `ready` (on stdout or stderr)."""
    proc = subprocess.Popen([str(BIN / "aeohub"), *args], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert ready in line, line + proc.stdout.read()
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep it drained
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


class VerifyLoad:
    """Background partners asking `verify`, one trader per request."""

    def __init__(self, base: str, headers: dict[str, str], traders: list[str]) -> None:
        self.base, self.headers, self.traders = base, headers, traders
        self.stop = threading.Event()
        self.done = 0
        self.errors = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(VERIFY_THREADS)]
        self.started = 0.0
        self.elapsed = 0.0

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        with requests.Session() as http:
            while not self.stop.is_set():
                body = {"trader": {"scheme": "EORI", "value": rng.choice(self.traders)}}
                try:
                    with http.post(self.base + "/api/v1/verify", json=body,
                                   headers=self.headers, timeout=10) as answer:
                        ok = answer.status_code == 200
                except requests.RequestException:
                    ok = False
                with self.lock:
                    self.done += 1
                    self.errors += 0 if ok else 1

    def __enter__(self) -> VerifyLoad:
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)
        self.elapsed = time.monotonic() - self.started


def visible_valid(database: Database, client_programme: str) -> list[tuple[str, int]]:
    """(trader id, operator id) of valid EU operators the partner's client may see."""
    with database.session_scope() as session:
        rows = list(session.scalars(
            select(Operator).join(Programme, Programme.id == Operator.programme_id)
            .where(Programme.code == "EU-AEO", Operator.status == "valid")
            .order_by(Operator.id)))
        client_id = session.scalar(select(Programme.id)
                                   .where(Programme.code == client_programme))
        view = policy.view_for(session, client_id)
        allowed = policy.grants_of_rows(session, view, rows)
        return [(row.trader_id, row.id) for row in rows if row.id in allowed]


def propagate(node: NodeServer, hub: str, admin: dict[str, str], receiver: Receiver,
              targets: list[tuple[str, int]]) -> list[dict[str, float]]:
    """Suspend each target in turn; the seconds each took to reach the receiver."""
    results: list[dict[str, float]] = []
    with requests.Session() as http:
        for trader_id, operator_id in targets:
            started_wall, started = time.time(), time.monotonic()
            node.apply("suspend", trader_id)
            with http.post(hub + "/api/v1/nodes/notify", json={"connection": "eu-node"},
                           headers=admin, timeout=10) as answer:
                assert answer.status_code == 202, answer.text

            def arrived(r: Receiver, wanted: int = operator_id) -> bool:
                return any(e["type"] == "operator.suspended"
                           and e["data"]["operator_id"] == wanted for e in r.accepted())

            assert receiver.wait_for(arrived, timeout=60), f"operator {operator_id} lost"
            with receiver.lock:
                at = min(r.at for r in receiver.requests if r.verified and r.status < 300
                         and r.event["data"].get("operator_id") == operator_id)
            results.append({"total": at - started, "wall": started_wall,
                            "operator": float(operator_id)})
    return results


def stages(database: Database, results: list[dict[str, float]]) -> dict[str, list[float]]:
    """Where the time went: notify -> run start -> run end -> event queued."""
    out: dict[str, list[float]] = {"to run start": [], "sync run": [], "to queued": []}
    with database.session_scope() as session:
        runs = list(session.scalars(select(SyncRun).where(SyncRun.trigger == "notify")
                                    .order_by(SyncRun.started_at)))
        queued = {int(p["data"]["operator_id"]): c for p, c in session.execute(
            select(WebhookDelivery.payload, WebhookDelivery.created_at)
            .where(WebhookDelivery.event_type == "operator.suspended"))}
    for result in results:
        start = dt.datetime.fromtimestamp(result["wall"], dt.UTC)
        run = next((r for r in runs if r.started_at >= start), None)
        if run is None or run.finished_at is None:
            continue
        out["to run start"].append((run.started_at - start).total_seconds())
        out["sync run"].append((run.finished_at - run.started_at).total_seconds())
        made = queued.get(int(result["operator"]))
        if made is not None:
            out["to queued"].append((made - run.finished_at).total_seconds())
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def test_bench_propagation(committed_db: Database, backend: str, bench_scale: str,
                           tmp_path: Path) -> None:
    loaded_n, idle_n, size = SIZES[bench_scale]
    app = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                      "IMPORT_DIR": str(tmp_path)})
    try:
        load_reference(committed_db)
        policy.clear_cache()
        with NodeServer(["EU-AEO"], size=size, seed=11) as node, \
                running_receiver() as receiver:
            with committed_db.session_scope(write=True) as session:
                connection = add_connection(
                    session, SyncSettings.from_config(app.config), name="eu-node",
                    connector_type="aeo_node", programmes=["EU-AEO"],
                    config={"base_url": node.url, "token": DEFAULT_TOKEN,
                            "programme": "EU-AEO"},
                    schedule="interval:1d")
                connection_id = connection.id
            first = run_sync(committed_db, SyncSettings.from_config(app.config),
                             connection_id)
            assert first is not None and first.status == "succeeded", first
            targets = visible_valid(committed_db, "US-CTPAT")
            assert len(targets) > loaded_n + idle_n, len(targets)
            rng = random.Random(3)
            rng.shuffle(targets)
            traders = [t for t, _ in targets]
            us_client = make_client(committed_db, "US-CTPAT", "webhooks,verify")
            us = bearer(committed_db, us_client, 3600)
            admin = bearer(committed_db, make_client(committed_db, "EU-AEO", "node:admin"),
                           3600)
            env = {**os.environ, "AEOHUB_ENV": "testing",
                   "AEOHUB_DATABASE_URL": committed_db.url, "AEOHUB_IMPORT_DIR": str(tmp_path),
                   "AEOHUB_RATE_LIMIT_REQUESTS": "10000000"}
            with gunicorn_server(committed_db.url, workers=2,
                                 extra_env={"AEOHUB_IMPORT_DIR": str(tmp_path),
                                            "AEOHUB_RATE_LIMIT_REQUESTS": "10000000"}) as hub:
                with requests.post(hub + "/api/v1/webhooks", headers=us, timeout=10,
                                   json={"url": receiver.url,
                                         "events": ["operator.suspended"]}) as created:
                    assert created.status_code == 201, created.text
                    receiver.secret = created.json()["secret"]
                with process("scheduler", "--poll", POLL, env=env, ready="scheduler started"), \
                        process("worker", "--poll", POLL, env=env, ready="worker started"):
                    # One unmeasured suspension warms both processes' caches and pools.
                    propagate(node, hub, admin, receiver, targets[-1:])
                    idle = propagate(node, hub, admin, receiver, targets[:idle_n])
                    with VerifyLoad(hub, us, traders) as load:
                        loaded = propagate(node, hub, admin, receiver,
                                           targets[idle_n:idle_n + loaded_n])
            breakdown = stages(committed_db, loaded)
        bad = [r for r in receiver.requests if not r.verified]
        assert bad == []
    finally:
        app.extensions["aeohub.db"].dispose()

    rate = load.done / load.elapsed if load.elapsed else 0.0
    print(f"\n[bench_propagation] {backend}, {bench_scale} scale: node suspends, notifies; "
          f"scheduler and worker poll every {POLL} s; {size} operators on the node")
    print(f"{'run':<34}{'n':>5}{'p50 s':>9}{'p90 s':>9}{'p99 s':>9}{'max s':>9}")
    for label, rows in (("idle (baseline)", idle), ("under verify load", loaded)):
        totals = [r["total"] for r in rows]
        print(f"{label:<34}{len(totals):>5}{pct(totals, .5):>9.2f}{pct(totals, .9):>9.2f}"
              f"{pct(totals, .99):>9.2f}{max(totals):>9.2f}")
    for label, values in breakdown.items():
        if values:
            print(f"{'  of which ' + label:<34}{len(values):>5}{pct(values, .5):>9.2f}"
                  f"{pct(values, .9):>9.2f}{pct(values, .99):>9.2f}{max(values):>9.2f}")
    print(f"background verify load: {rate:.0f} requests/s over {VERIFY_THREADS} threads, "
          f"{load.errors} errors; mean {statistics.fmean([r['total'] for r in loaded]):.2f} s"
          f"; target p99 < 5 s")
