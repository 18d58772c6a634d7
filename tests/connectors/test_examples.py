"""The documented examples sync with their documented configurations (SQLite and
PostgreSQL): what validates is applied, an unmapped word is quarantined with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub import db
from hub.arrangements.service import load_reference_data
from hub.registry.models import Operator
from hub.sync import connections as conns
from hub.sync import engine
from hub.sync.models import QuarantinedRecord
from tests.connectors.examples import install


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
