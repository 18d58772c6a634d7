"""The documented examples sync with their documented configurations (SQLite and
PostgreSQL): what validates is applied, an unmapped word is quarantined with its reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub import db
from hub.arrangements.service import load_reference_data
from hub.auth.service import Principal
from hub.errors import Forbidden, InvalidInput
from hub.registry.models import Operator, OperatorIdentifier, Programme
from hub.sync import admin, engine
from hub.sync import connections as conns
from hub.sync.models import QuarantinedRecord
from tests.connectors.examples import example, install
from tests.connectors.sqlsource import registry_database


@pytest.fixture
def hub_app(app: Any) -> Any:
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    return app


def sync_example(app: Any, name: str, config: dict[str, Any] | None = None) -> Any:
    import_dir = Path(app.config["IMPORT_DIR"])
    example = install(name, import_dir)
    settings = conns.SyncSettings.from_config(app.config)
    with app.app_context():
        session = db.session()
        row = conns.add_connection(
            session, settings, name=name, connector_type=example["connector"],
            programmes=example["programmes"], config=config or example["config"],
            schedule="interval:1d")
        session.commit()
        connection_id = row.id
    return engine.run_sync(db.get_db(app), settings, connection_id)


def operators(app: Any) -> dict[str, Operator]:
    with app.app_context():
        session = db.session()
        found = {op.trader_id: op for op in session.scalars(select(Operator))}
        for op in found.values():
            session.expunge(op)
        return found


def quarantine(app: Any) -> list[tuple[str, str]]:
    with app.app_context():
        return [(q.reason_code, str(q.reasons)) for q in db.session().scalars(
            select(QuarantinedRecord))]


def test_a_public_list_without_identifiers_syncs_with_derived_keys(hub_app: Any) -> None:
    run = sync_example(hub_app, "eu_public_list")
    assert run.status == "succeeded", run.held_reason or run.error
    assert (run.counts["created"], run.counts["quarantined"]) == (3, 0)
    found = operators(hub_app)
    assert {op.trader_id_scheme for op in found.values()} == {"DERIVED"}
    nordic = next(op for op in found.values() if op.legal_name == "Nordic Freight Oy")
    assert (nordic.country, nordic.authorisation_number, nordic.status) == ("FI", "", "valid")
    assert [c["code"] for c in nordic.categories] == ["AEOF"]
    assert nordic.consent_publish and not nordic.consent_share
    with hub_app.app_context():  # no identifier to be found by: name and address only
        assert db.session().scalars(select(OperatorIdentifier).where(
            OperatorIdentifier.operator_id == nordic.id)).all() == []
    again = sync_example_again(hub_app, "eu_public_list")
    assert (again.counts["unchanged"], again.counts["created"]) == (3, 0)


def sync_example_again(app: Any, name: str) -> Any:
    with app.app_context():
        connection_id = conns.get_connection(db.session(), name).id
    return engine.run_sync(db.get_db(app), conns.SyncSettings.from_config(app.config),
                           connection_id)


def test_german_export_syncs_and_quarantines_its_unknown_word(hub_app: Any) -> None:
    run = sync_example(hub_app, "de_zoll_latin1")
    assert run.status == "succeeded", run.error or run.held_reason
    assert run.counts["created"] == 3
    assert run.counts["quarantined"] == 1
    found = operators(hub_app)
    assert set(found) == {"DE4711000000001", "DE4711000000002", "DE4711000000003"}
    assert found["DE4711000000003"].status == "suspended"
    (entry,) = quarantine(hub_app)
    assert entry[0] == "format"
    assert "status 'vorläufig' is not in values.status" in entry[1]
    assert run.staged_state.get("unread") == ["Sachbearbeiter"]


def test_xml_registry_with_attributes_syncs(hub_app: Any) -> None:
    run = sync_example(hub_app, "nl_registry")
    assert run.status == "succeeded", run.error or run.held_reason
    assert run.counts["created"] == 3
    assert run.counts.get("quarantined", 0) == 0
    found = operators(hub_app)
    assert found["NL823456789"].status == "suspended"
    assert found["NL812345678"].city == "Rotterdam"


def test_excel_workbook_syncs(hub_app: Any) -> None:
    run = sync_example(hub_app, "workbook")
    assert run.status == "succeeded", run.error or run.held_reason
    assert run.counts["created"] == 3
    found = operators(hub_app)
    assert set(found) == {"04595257", "04595263", "04595278"}
    assert found["04595278"].status == "suspended"


@pytest.fixture
def registry_url(hub_app: Any, backend: str) -> Iterator[str]:
    hub_app.config["NODE_HOSTS_ALLOWED"] = ["127.0.0.1"]
    with registry_database(backend, Path(hub_app.config["IMPORT_DIR"])) as url:
        yield url


def test_sql_view_syncs_and_keeps_its_password_encrypted(hub_app: Any,
                                                         registry_url: str) -> None:
    config = {**example("sql_view")["config"], "url": registry_url}
    run = sync_example(hub_app, "sql_view", config)
    assert run.status == "succeeded", run.error or run.held_reason
    assert run.counts["created"] == 3
    found = operators(hub_app)
    assert found["FR77812345600011"].status == "suspended"
    with hub_app.app_context():
        connection = conns.get_connection(db.session(), "sql_view")
        assert "password" not in connection.config
        assert "change-me" not in str(connection.secrets_encrypted)
        assert conns.shown_config(connection)["password"] == "********"
        assert connection.state == {"since": "2026-11-30T09:10:00"}


def test_the_hubs_own_database_cannot_be_a_source(hub_app: Any) -> None:
    hub_url = hub_app.config["DATABASE_URL"]
    hub_app.config["NODE_HOSTS_ALLOWED"] = ["127.0.0.1"]
    config = {**example("sql_view")["config"], "url": hub_url}
    with pytest.raises(InvalidInput, match="the hub's own database") as info:
        sync_example(hub_app, "sql_view", config)
    assert "config.url" in info.value.fields


def principal(*, is_admin: bool, administration_id: int | None) -> Principal:
    return Principal(client_pk=1, client_id="c", programme_id=None,
                     administration_id=administration_id, scopes=frozenset({"node:admin"}),
                     is_admin=is_admin, rate_limit=None,
                     expires_at=dt.datetime(2100, 1, 1, tzinfo=dt.UTC))


def test_only_hub_administrators_create_sql_connections(hub_app: Any,
                                                         registry_url: str) -> None:
    payload: dict[str, Any] = {"name": "fr-sql", "type": "sql_query", "programmes": ["EU-AEO"],
               "config": {**example("sql_view")["config"], "url": registry_url},
               "schedule": "interval:1d"}
    settings = conns.SyncSettings.from_config(hub_app.config)
    with hub_app.app_context():
        session = db.session()
        eu = session.scalar(select(Programme).where(Programme.code == "EU-AEO"))
        assert eu is not None
        node_admin = principal(is_admin=False, administration_id=eu.administration_id)
        with pytest.raises(Forbidden, match="only the hub's administrators"):
            admin.create_connection(session, settings, node_admin, payload)
        created = admin.create_connection(session, settings,
                                          principal(is_admin=True, administration_id=None),
                                          payload)
        session.commit()
        # nor may an administration's own client reconfigure one
        with pytest.raises(Forbidden):
            admin.edit_connection(session, settings, node_admin, created.id,
                                  {"config": {"query": "SELECT * FROM aeo_holder"}})
        # a file connection stays theirs to create
        csv_payload = {**payload, "name": "de-csv", "type": "csv_snapshot",
                       "config": {"path": "x.csv", "programme": "EU-AEO"}}
        session.rollback()
        admin._check_connector(node_admin, csv_payload["type"])


def test_tier_words_sync_to_the_canonical_tier_or_quarantine(hub_app: Any) -> None:
    import_dir = Path(hub_app.config["IMPORT_DIR"])
    (import_dir / "ctpat.csv").write_text(
        "number,name,country,status,categories,consent\n"
        "00000001,Importer One Inc.,US,valid,importer:valid:2015-03-01:Tier II,true\n"
        "00000002,Importer Two Inc.,US,valid,importer:valid:2015-03-01:Tier IV,true\n",
        encoding="utf-8")
    settings = conns.SyncSettings.from_config(hub_app.config)
    with hub_app.app_context():
        session = db.session()
        row = conns.add_connection(
            session, settings, name="ctpat", connector_type="csv_snapshot",
            programmes=["US-CTPAT"], schedule="interval:1d", config={
                "path": "ctpat.csv", "programme": "US-CTPAT", "trader_id_scheme": "US_CTPAT",
                "columns": {"trader_id": "number", "legal_name": "name",
                            "consent_share": "consent", "authorisation_number": "number"},
                "values": {"tier": {"Tier I": "tier1", "Tier II": "tier2",
                                    "Tier III": "tier3"}}})
        session.commit()
        connection_id = row.id
    run = engine.run_sync(db.get_db(hub_app), settings, connection_id)
    assert run is not None and run.status == "succeeded", run and (run.error or run.counts)
    assert (run.counts["created"], run.counts["quarantined"]) == (1, 1)
    assert operators(hub_app)["00000001"].categories[0]["tier"] == "tier2"
    # one entry, the unmapped word first, then what the validator makes of it
    ((code, reasons),) = quarantine(hub_app)
    assert code == "format"
    assert "line 3: tier 'Tier IV' is not in values.tier" in reasons
    assert "unknown_tier" in reasons
