"""A small, real hub for the web tests: reference data, two administrations' CSV feeds
synced by the real engine (a clean run, a run with a quarantined row, a held run),
published and unpublished operators, and dashboard users of both kinds."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from connectors.formats import CANONICAL_COLUMNS
from hub import db
from hub.arrangements.service import load_reference_data
from hub.sync import connections as conns
from hub.sync import engine
from hub.sync.models import QuarantinedRecord
from hub.web import users

PASSWORD = "correct horse battery"
#: The published EU AEO with a linked MID (recognised by CBP, code to declare in the US).
PUBLISHED_EORI = "DE000000000000001"
PUBLISHED_AUTH = "DEAEOF00001/19"
LINKED_MID = "USMUSLOG1HAM"
#: A published EU AEO without a linked MID (the US warning) and with AEOC only.
NO_MID_EORI = "DE000000000000003"
#: An operator that did not consent to publication.
UNPUBLISHED_EORI = "DE000000000000002"
UNPUBLISHED_AUTH = "DEAEOF00002/19"
UNKNOWN_EORI = "DE999999999999999"
#: A MID an operator declared without linking it: never enough to find the operator.
UNLINKED_MID = "USMUSLOG4HAM"


def eu_row(n: int, **overrides: Any) -> dict[str, str]:
    row = {
        "programme": "EU-AEO", "authorisation_number": f"DEAEOF{n:05d}/19",
        "trader_id_scheme": "EORI", "trader_id": f"DE{n:015d}",
        "legal_name": f"Muster Logistik {n} GmbH", "street": f"Hafenstrasse {n}",
        "city": "Hamburg", "postcode": "20457", "region": "", "country": "DE",
        "status": "valid", "status_effective": "2019-03-01",
        "categories": "AEOC:valid:2019-03-01|AEOS:valid:2019-03-01",
        "authorised_on": "2019-03-01", "valid_from": "2019-03-01", "valid_until": "",
        "issuing_authority": "DE Hauptzollamt Hamburg", "identifiers": "",
        "consent_share": "true", "consent_publish": "true",
        "changed_at": "2024-01-01T00:00:00Z",
    }
    row.update({k: str(v) for k, v in overrides.items()})
    return row


def uk_row(n: int, **overrides: Any) -> dict[str, str]:
    row = eu_row(n, programme="UK-AEO", authorisation_number=f"GBAEOS{n:06d}",
                 trader_id=f"GB{n:012d}", legal_name=f"Thames Freight {n} Ltd",
                 street=f"{n} Dock Road", city="London", postcode="E16 1AA", country="GB",
                 issuing_authority="HMRC")
    row.update({k: str(v) for k, v in overrides.items()})
    return row


def write_feed(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CANONICAL_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path


def eu_rows(count: int) -> list[dict[str, str]]:
    rows = [eu_row(n) for n in range(1, count + 1)]
    rows[0] = eu_row(1, identifiers=f"MID:{LINKED_MID}:linked")
    rows[1] = eu_row(2, consent_publish="false")
    rows[2] = eu_row(3, categories="AEOC:valid:2019-03-01")
    rows[3] = eu_row(4, identifiers=f"MID:{UNLINKED_MID}:declared")
    return rows


@dataclass
class Seeded:
    eu_connection: int
    uk_connection: int
    held_run: int
    quarantined: int
    eu_feed: Path


def seed(app: Flask, directory: Path) -> Seeded:
    """Build the hub's state through its own services (commits)."""
    settings = conns.SyncSettings.from_config(app.config)
    eu_feed = write_feed(directory / "eu.csv", eu_rows(20))
    uk_feed = write_feed(directory / "uk.csv", [uk_row(n) for n in range(1, 6)])
    with app.app_context():
        session = db.session()
        load_reference_data(session)
        eu = conns.add_connection(
            session, settings, name="eu-csv", connector_type="csv_snapshot",
            programmes=["EU-AEO"], config={"path": str(eu_feed), "programme": "EU-AEO"},
            schedule="interval:1h")
        uk = conns.add_connection(
            session, settings, name="uk-csv", connector_type="csv_snapshot",
            programmes=["UK-AEO"], config={"path": str(uk_feed), "programme": "UK-AEO"},
            schedule="interval:1h")
        users.create_user(session, "eu-staff", PASSWORD, administration="EU")
        users.create_user(session, "uk-staff", PASSWORD, administration="UK")
        users.create_user(session, "hub-admin", PASSWORD, hub_admin=True)
        session.commit()
        eu_id, uk_id = eu.id, uk.id
    database = db.get_db(app)
    for connection_id in (eu_id, uk_id):
        run = engine.run_sync(database, settings, connection_id)
        assert run is not None and run.status == "succeeded", run and run.error
    # A broken row: quarantined, its operator keeps its last good state.
    rows = eu_rows(20)
    rows[4] = eu_row(5, status="exploded")
    write_feed(eu_feed, rows)
    run = engine.run_sync(database, settings, eu_id)
    assert run is not None and run.status == "succeeded", run and run.error
    # Half the registry gone: the guard holds the run for confirmation.
    write_feed(eu_feed, eu_rows(10))
    held = engine.run_sync(database, settings, eu_id)
    assert held is not None and held.status == "needs_confirmation", held and held.status
    with app.app_context():
        record = db.session().scalars(select(QuarantinedRecord)).one()
        quarantined = record.id
    return Seeded(eu_id, uk_id, held.id, quarantined, eu_feed)
