"""`aeohub demo`: the whole hub on one machine, in one command (what `make run` starts).

A fresh or reused SQLite database in `instance/`, migrations, reference data, simulated
administration nodes on loopback (one per administration, served by two worker processes
so that generating the registries uses both cores), their connections with all three
connector types, a first sync of every feed with progress bars, the scheduler and the
webhook worker in-process, simulated churn with node notifications so that things change
while you watch, a demo partner client with a copy-paste `curl` pair, and the web app and
API on http://127.0.0.1:5000. Ctrl-C stops everything; `--reset` starts from scratch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing as mp
import random
import shlex
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import click
import requests
import yaml
from flask import Flask, current_app
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from hub import clock, db, init_http
from hub.arrangements.service import load_reference_data
from hub.auth import service as auth
from hub.auth.models import OAuthClient
from hub.migrate import upgrade
from hub.notify.worker import DeliveryWorker
from hub.recognition.service import warm
from hub.registry.models import Operator, Programme
from hub.sim.server import NodeServer
from hub.sync import connections as conns
from hub.sync.engine import confirm, run_sync
from hub.sync.models import Connection
from hub.sync.scheduler import HubScheduler

SIM_TOKEN = "sim-token"  # noqa: S105 - the simulator's well-known demo token


@dataclass(frozen=True)
class NodeSpec:
    programme: str
    size: int
    connector: str
    schedule: str


def load_topology(path: Path | None = None) -> dict[str, Any]:
    if path is None:
        text = resources.files("config").joinpath("demo.yaml").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    topology: dict[str, Any] = yaml.safe_load(text)
    return topology


# --- simulated nodes, in worker processes --------------------------------------------------


def _serve_nodes(specs: list[tuple[str, int]], seed: int, pipe: Pipe) -> None:
    """Child process: start one node per programme, report their URLs, serve until told.

    Ctrl-C reaches the whole process group; the parent decides when nodes stop, so the
    child ignores it and waits for the parent's word (or for the parent to go away).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    servers = []
    try:
        for programme, size in specs:
            server = NodeServer([programme], size=size, seed=seed, token=SIM_TOKEN).start()
            servers.append(server)
            pipe.send((programme, server.url))
        pipe.send(("ready", None))
        pipe.recv()  # any message (or EOF) means stop
    except (KeyboardInterrupt, EOFError):
        pass
    finally:
        for server in servers:
            server.stop()


class Nodes:
    """The simulated nodes, spread over two processes."""

    def __init__(self, nodes: list[NodeSpec], seed: int) -> None:
        self.nodes = nodes
        self.seed = seed
        self.urls: dict[str, str] = {}
        self.processes: list[tuple[Any, Pipe]] = []

    def start(self) -> dict[str, str]:
        ordered = sorted(self.nodes, key=lambda n: -n.size)
        halves: list[list[tuple[str, int]]] = [[], []]
        loads = [0, 0]
        for node in ordered:  # balance the two processes by size
            target = loads.index(min(loads))
            halves[target].append((node.programme, node.size))
            loads[target] += node.size
        context = mp.get_context("fork")
        for half in halves:
            parent, child = context.Pipe()
            process = context.Process(target=_serve_nodes, args=(half, self.seed, child),
                                      daemon=True)
            process.start()
            self.processes.append((process, parent))
        total = len(self.nodes)
        with click.progressbar(length=total, label="starting simulated nodes",
                               show_pos=True) as bar:
            waiting = list(self.processes)
            while waiting:
                for item in list(waiting):
                    _process, pipe = item
                    if pipe.poll(0.1):
                        name, url = pipe.recv()
                        if name == "ready":
                            waiting.remove(item)
                        else:
                            self.urls[name] = url
                            bar.update(1)
                for process, _pipe in self.processes:
                    if not process.is_alive() and any(p is process for p, _ in waiting):
                        raise click.ClickException("a simulated node process died")
        return self.urls

    def stop(self) -> None:
        for _process, pipe in self.processes:
            with contextlib.suppress(BrokenPipeError, OSError):
                pipe.send("stop")
        for process, _pipe in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)


# --- the hub side --------------------------------------------------------------------------


def _connection_config(spec: NodeSpec, url: str) -> dict[str, Any]:
    if spec.connector == "aeo_node":
        return {"base_url": url, "token": SIM_TOKEN, "programme": spec.programme,
                "page_size": 2000}
    fmt = "csv" if spec.connector == "csv_snapshot" else "xml"
    return {"url": f"{url}/aeo/v1/operators.{fmt}?programme={spec.programme}",
            "token": SIM_TOKEN, "programme": spec.programme, "batch_size": 2000}


def ensure_connections(app: Flask, nodes: list[NodeSpec], urls: Mapping[str, str]) -> list[int]:
    settings = conns.SyncSettings.from_config(app.config)
    ids = []
    with app.app_context():
        session = db.session()
        for spec in nodes:
            name = f"demo-{spec.programme.lower()}"
            config = _connection_config(spec, urls[spec.programme])
            existing = session.scalar(select(Connection).where(Connection.name == name))
            if existing is None:
                row = conns.add_connection(session, settings, name=name,
                                           connector_type=spec.connector,
                                           programmes=[spec.programme], config=config,
                                           schedule=spec.schedule)
            else:  # ports change from run to run
                row = conns.edit_connection(session, settings, existing, config=config,
                                            schedule=spec.schedule, enabled=True)
                row.state = {}  # a new node process starts its cursors afresh
            session.commit()
            ids.append(row.id)
    return ids


def first_sync(app: Flask, nodes: list[NodeSpec], connection_ids: list[int]) -> None:
    settings = conns.SyncSettings.from_config(app.config)
    database = db.get_db(app)
    total = sum(n.size for n in nodes)
    with click.progressbar(length=total, label="first sync of every feed", show_pos=True,
                           item_show_func=lambda name: name) as bar:
        for spec, connection_id in zip(nodes, connection_ids, strict=True):
            done = {"read": 0}

            def progress(counts: dict[str, int], done: dict[str, int] = done) -> None:
                bar.update(counts["read"] - done["read"])
                done["read"] = counts["read"]

            bar.update(0, spec.programme)
            run = run_sync(database, settings, connection_id, trigger="manual",
                           progress=progress)
            bar.update(max(spec.size - done["read"], 0))
            if run is not None and run.status == "needs_confirmation":
                confirm(database, settings, run.id)
            elif run is not None and run.status == "failed":
                click.echo(f"\n  {spec.programme}: sync failed: {run.error}", err=True)


def demo_partner(app: Flask, partner: Mapping[str, Any]) -> tuple[str, str]:
    """Create the demo partner client, or give it a fresh secret (shown once)."""
    with app.app_context():
        session = db.session()
        existing = session.scalar(select(OAuthClient).where(OAuthClient.name == partner["name"]))
        if existing is None:
            created = auth.create_client(session, name=partner["name"],
                                         programme=partner["programme"],
                                         scopes=partner["scopes"])
            # The demo partner has no keys, so it always gets a secret.
            client_id, secret = created.client.client_id, created.secret or ""
        else:
            client_id = existing.client_id
            secret = auth.rotate_secret(session, client_id)
    return client_id, secret


def demo_operator(app: Flask) -> str | None:
    """An EU AEO that CBP recognises today: AEOS/AEOF valid, consenting."""
    with app.app_context():
        session = db.session()
        rows = session.scalars(
            select(Operator).join(Programme).where(
                Programme.code == "EU-AEO", Operator.status == "valid",
                Operator.consent_share.is_(True), Operator.removed_at.is_(None))
            .order_by(Operator.id).limit(200))
        for row in rows:
            if any(c.get("code") in ("AEOS", "AEOF") and c.get("status") == "valid"
                   for c in row.categories):
                return row.trader_id
    return None


def curl_lines(base: str, client_id: str, secret: str, eori: str | None) -> list[str]:
    token_cmd = (f"TOKEN=$(curl -s -u {shlex.quote(client_id + ':' + secret)} "
                 f"-d grant_type=client_credentials -d scope=verify {base}/oauth/token "
                 "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")
    body = {"trader": {"scheme": "EORI", "value": eori or "DE000000000000001"}}

    verify_cmd = (f"curl -s -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: "
                  f"application/json' -d {shlex.quote(json.dumps(body))} {base}/api/v1/verify")
    return [token_cmd, verify_cmd]


class Churn(threading.Thread):
    """Every few seconds a node changes its registry; incremental nodes then notify."""

    def __init__(self, app: Flask, nodes: list[NodeSpec], urls: Mapping[str, str],
                 connection_ids: list[int], every: float, seed: int) -> None:
        super().__init__(name="demo-churn", daemon=True)
        self.app, self.nodes, self.urls = app, nodes, urls
        self.connection_ids = connection_ids
        self.every = every
        self.rng = random.Random(seed)
        self.stopping = threading.Event()

    def run(self) -> None:
        session_http = requests.Session()
        while not self.stopping.wait(self.every):
            index = self.rng.randrange(len(self.nodes))
            spec = self.nodes[index]
            try:
                session_http.post(f"{self.urls[spec.programme]}/sim/v1/advance",
                                  json={"days": 1},
                                  headers={"Authorization": f"Bearer {SIM_TOKEN}"}, timeout=10)
            except requests.RequestException:
                continue
            if spec.connector != "aeo_node":
                continue
            database = db.get_db(self.app)
            with database.session_scope(write=True) as session:  # the node's push
                session.execute(update(Connection)
                                .where(Connection.id == self.connection_ids[index])
                                .values(notify_requested_at=clock.now()))
        session_http.close()


def run_demo(app: Flask, *, host: str, port: int, churn: bool = True,
             topology_path: Path | None = None) -> None:
    init_http(app)
    # Without a configured issuer, the hub's published URLs are the demo's own address.
    app.config["ISSUER"] = app.config.get("ISSUER") or f"http://{host}:{port}"

    started = time.monotonic()
    topology = load_topology(topology_path)
    nodes = [NodeSpec(**n) for n in topology["nodes"]]
    seed = int(topology.get("seed", 1))
    upgrade(db.get_db(app))
    with app.app_context():
        report = load_reference_data(db.session())
    click.echo(f"database {app.config['DATABASE_URL']} at the newest schema; reference data "
               f"{'loaded' if report.changed else 'unchanged'}")
    server = make_server(host, port, app, threaded=True)  # bind early: fail fast if taken
    node_procs = Nodes(nodes, seed)
    threads: list[Any] = []
    try:
        urls = node_procs.start()
        connection_ids = ensure_connections(app, nodes, urls)
        first_sync(app, nodes, connection_ids)
        client_id, secret = demo_partner(app, topology["partner"])
        eori = demo_operator(app)
        with app.app_context():  # the first look-up should not pay for the name index

            warm(db.session())

        scheduler = HubScheduler(app, poll_seconds=1.0)
        worker = DeliveryWorker(app, poll_seconds=1.0, threads=2)
        sched_thread = threading.Thread(target=scheduler.run_forever, name="scheduler",
                                        daemon=True)
        work_thread = threading.Thread(target=worker.run_forever, name="webhooks", daemon=True)
        sched_thread.start()
        work_thread.start()
        threads = [(scheduler, sched_thread), (worker, work_thread)]
        if churn:
            churner = Churn(app, nodes, urls, connection_ids,
                            float(topology.get("churn_every_seconds", 20)), seed)
            churner.start()
            threads.append((churner, churner))

        base = f"http://{host}:{port}"
        with app.app_context():
            total = db.session().scalar(select(func.count()).select_from(Operator))
        click.echo("")
        click.echo(f"AEO Hub demo ready in {time.monotonic() - started:.0f} s: {total:,} "
                   f"operators from {len(nodes)} administrations")
        click.echo(f"  web:       {base}/            (company status look-up)")
        click.echo(f"  dashboard: {base}/dashboard   (create a user: aeohub users create "
                   "--hub-admin NAME)")
        click.echo(f"  API docs:  {base}/docs")
        click.echo(f"  readiness: {base}/readyz")
        click.echo("")
        click.echo(f"Demo partner client (CBP, programme {topology['partner']['programme']}): "
                   f"{client_id}")
        click.echo("Get a token, then verify an EU AEO as CBP would:")
        for line in curl_lines(base, client_id, secret, eori):
            click.echo(f"  {line}")
        click.echo("")
        click.echo("Nodes change every few seconds; Ctrl-C stops everything.")
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("\nstopping...")
    finally:
        server.server_close()
        for component, _thread in threads:
            stop = getattr(component, "stopping", None)
            if stop is not None:
                stop.set()
        for _component, thread in threads:
            thread.join(timeout=15)
        node_procs.stop()
        db.get_db(app).dispose()
        click.echo(f"stopped at {dt.datetime.now().strftime('%H:%M:%S')}")


def register(cli: click.Group) -> None:
    cli.add_command(demo_command)


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--reset", is_flag=True, help="Delete the demo database and start afresh.")
@click.option("--no-churn", is_flag=True, help="Keep the simulated registries still.")
@click.option("--topology", type=click.Path(dir_okay=False, path_type=Path),
              help="Another topology file (default: config/demo.yaml).")
def demo_command(host: str, port: int, reset: bool, no_churn: bool,
                 topology: Path | None) -> None:
    """The whole hub on loopback: simulated nodes, syncs, scheduler, web app and API."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    url = app.config["DATABASE_URL"]
    if reset:
        if not url.startswith("sqlite:///"):
            raise click.ClickException("--reset only deletes the embedded SQLite database")
        db.get_db(app).dispose()
        path = Path(url[len("sqlite:///"):])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        click.echo(f"removed {path}")
    run_demo(app, host=host, port=port, churn=not no_churn, topology_path=topology)
