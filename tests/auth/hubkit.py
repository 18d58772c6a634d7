"""Test helpers for auth and API tests: reference data, operators, clients, live servers."""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from hub.arrangements.service import load_reference_data
from hub.auth import service as auth_service
from hub.db import Database
from hub.identifiers.schemes import normalise
from hub.registry.models import Operator, Programme
from hub.registry.service import RECORD_COLUMNS, OperatorData, apply_operator
from hub.sim.numbers import scheme_value
from tests.serving import serving

ROOT = Path(__file__).resolve().parents[2]


def load_reference(database: Database) -> None:
    with database.session_scope(write=True) as session:
        load_reference_data(session)


def programmes(session: Session) -> dict[str, Programme]:
    return {p.code: p for p in session.scalars(select(Programme))}


COUNTRY = {"EU-AEO": "DE", "UK-AEO": "GB", "US-CTPAT": "US", "CN-AEO": "CN", "JP-AEO": "JP",
           "CA-PIP": "CA"}


def identifier_for(programme: Programme, unique: int) -> str:
    """A valid, normalised identifier of the programme's primary scheme."""
    country = COUNTRY.get(programme.code, programme.code[:2])
    rng = random.Random(f"hubkit/{programme.code}/{unique}")
    try:
        return normalise(programme.primary_scheme,
                         scheme_value(programme.primary_scheme, country, rng, unique))
    except Exception:  # a scheme the simulator cannot produce: any stable value
        return f"{country}{unique:010d}"


def make_operator(session: Session, programme: Programme, unique: int, *, category: str,
                  consent: bool = True, status: str = "valid", name: str | None = None,
                  now: dt.datetime | None = None) -> int:
    """An operator holding `category` (`importer@tier2`: with that tier)."""
    value = identifier_for(programme, unique)
    code, _, tier = category.partition("@")
    held: dict[str, Any] = {"code": code, "status": "valid", "since": "2020-01-01"}
    if tier:
        held["tier"] = tier
    values: dict[str, Any] = {
        "authorisation_number": f"{programme.code}-{unique}",
        "trader_id_scheme": programme.primary_scheme,
        "trader_id": value,
        "legal_name": name or f"Trader {programme.code} {unique} GmbH",
        "street": f"{unique} Harbour Street",
        "city": "Porto",
        "postcode": "4000",
        "region": None,
        "country": COUNTRY.get(programme.code, programme.code[:2]),
        "status": status,
        "status_effective": dt.date(2020, 1, 1),
        "categories": [held],
        "issuing_authority": "Customs",
        "authorised_on": dt.date(2020, 1, 1),
        "valid_from": dt.date(2020, 1, 1),
        "valid_until": None,
        "consent_share": consent,
        "consent_publish": consent,
        "source_changed_at": None,
        "fingerprint": None,
        "warnings": [],
    }
    result = apply_operator(
        session, programme,
        OperatorData(stable_key=value, values=values,
                     identifiers=[(programme.primary_scheme, value, "declared", True)]),
        now=now)
    return result.operator.id


def set_consent(database: Database, operator_id: int, consent: bool) -> None:
    with database.session_scope(write=True) as session:
        row = session.get(Operator, operator_id)
        assert row is not None
        values = {name: getattr(row, name) for name in RECORD_COLUMNS}
        values["consent_share"] = consent
        apply_operator(session, row.programme,
                       OperatorData(stable_key=row.stable_key, values=values,
                                    identifiers=[(i.scheme, i.value, i.origin, i.linked)
                                                 for i in row.identifiers]))


@dataclass
class Credentials:
    client_id: str
    secret: str | None
    pk: int


def make_client(database: Database, programme: str | None, scopes: str, **kwargs: Any
                ) -> Credentials:
    with database.session_scope(write=True) as session:
        created = auth_service.create_client(session, name=f"test {programme}",
                                             programme=programme, scopes=scopes, **kwargs)
        return Credentials(created.client.client_id, created.secret, created.client.id)


def bearer(database: Database, credentials: Credentials, lifetime: int = 600) -> dict[str, str]:
    with database.session_scope(write=True) as session:
        client = auth_service.get_client(session, credentials.client_id)
        value, _row = auth_service.issue_token(session, client, " ".join(client.scopes),
                                               lifetime)
    return {"Authorization": f"Bearer {value}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """The app served by werkzeug on an ephemeral loopback port, in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    # As `aeohub serve` does: without a configured issuer, the server's own address.
    app.config["ISSUER"] = app.config.get("ISSUER") or base
    with serving(server):
        yield base


@contextmanager
def gunicorn_server(database_url: str, workers: int = 2, extra_env: dict[str, str] | None = None
                    ) -> Iterator[str]:
    """The hub under gunicorn with `workers` processes on loopback, as deployed
    (`config/gunicorn.conf.py`)."""
    port = free_port()
    env = {**os.environ, "AEOHUB_ENV": "testing", "AEOHUB_DATABASE_URL": database_url,
           **(extra_env or {})}
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    process = subprocess.Popen(
        [gunicorn, "-c", str(ROOT / "config" / "gunicorn.conf.py"), "-w", str(workers),
         "-b", f"127.0.0.1:{port}", "--log-level", "warning", "hub:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with requests.get(base + "/healthz", timeout=5) as response:
                    if response.status_code == 200:
                        break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start: "
                                   + (process.stderr.read().decode() if process.stderr else ""))
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
