"""C-TPAT tiers end to end: a tier travels from the node's record through the connector,
validation and history to the rules. The EU recognises validated C-TPAT importers (tier 2
and tier 3) only, so a tier-1 importer is not recognised, with a reason naming its tier."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from connectors.base import CanonicalRecord, CategoryEntry
from hub import db
from hub.arrangements.service import load_reference_data
from hub.recognition import reasons as rc
from hub.recognition.service import verify
from hub.recognition.trader import DeclaredTrader
from hub.registry.models import Operator, OperatorEvent, Programme
from hub.sync import connections as conns
from hub.sync import engine
from hub.sync.validate import ProgrammeRules, Rejection, validate
from tests.sync.feeds import eu_row, write_feed

DAY = dt.date(2026, 1, 15)


def ctpat_row(n: int, tier: str, **overrides: str) -> dict[str, str]:
    number = f"{n:08d}"
    return eu_row(n, **{
        "programme": "US-CTPAT", "authorisation_number": number,
        "trader_id_scheme": "US_CTPAT", "trader_id": number, "country": "US",
        "legal_name": f"Importer {n} Inc.", "city": "Chicago", "postcode": "60601",
        "categories": f"importer:valid:2015-03-01:{tier}", "consent_share": "true",
        "issuing_authority": "CBP", **overrides})


@pytest.fixture
def synced(app, tmp_path):
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    feed = write_feed(tmp_path / "ctpat.csv", [ctpat_row(1, "tier2"), ctpat_row(2, "tier1"),
                                               ctpat_row(3, "tier3")])
    settings = conns.SyncSettings.from_config(app.config)
    with app.app_context():
        row = conns.add_connection(db.session(), settings, name="ctpat",
                                   connector_type="csv_snapshot", programmes=["US-CTPAT"],
                                   schedule="interval:1d",
                                   config={"path": str(feed), "programme": "US-CTPAT"})
        db.session().commit()
        connection_id = row.id
    run = engine.run_sync(db.get_db(app), settings, connection_id)
    assert run is not None and run.status == "succeeded", run and (run.error or run.counts)
    assert run.counts["created"] == 3, run.counts
    return app, feed, settings, connection_id


def answer(app, number: str, day: dt.date | None = DAY):
    with app.app_context():
        return verify(db.session(), DeclaredTrader(scheme="US_CTPAT", value=number),
                      "EU-AEO", day=day, flow="import")


def test_eu_recognises_a_validated_importer_and_names_the_tier_it_lacks(synced):
    app, *_ = synced
    tier2, tier1, tier3 = (answer(app, f"{n:08d}") for n in (1, 2, 3))
    assert (tier2.decision, tier3.decision) == ("recognised", "recognised"), (
        tier2.reasons, tier3.reasons)
    assert tier1.decision == "not_recognised"
    assert rc.TIER_NOT_RECOGNISED in tier1.reason_codes, tier1.reasons
    message = next(r.message for r in tier1.reasons if r.code == rc.TIER_NOT_RECOGNISED)
    assert "tier1" in message and "tier2" in message


def test_a_tier_change_is_an_event_and_changes_the_answer(synced):
    app, feed, settings, connection_id = synced
    write_feed(feed, [ctpat_row(1, "tier1"), ctpat_row(2, "tier1"), ctpat_row(3, "tier3")])
    run = engine.run_sync(db.get_db(app), settings, connection_id)
    assert run is not None
    assert run.status == "succeeded" and run.counts["updated"] == 1, run.counts
    with app.app_context():
        op = db.session().scalars(select(Operator).where(
            Operator.trader_id == "00000001")).one()
        assert op.categories[0]["tier"] == "tier1"
        kinds = db.session().scalars(select(OperatorEvent.kind).where(
            OperatorEvent.operator_id == op.id)).all()
    assert "categories_changed" in kinds
    # from the day the hub saw the change (the source kept the component's date); the
    # declaration day asked about before it still has the tier it had then
    assert answer(app, "00000001", day=None).decision == "not_recognised"
    assert answer(app, "00000001").decision == "recognised"


def test_a_tier_the_programme_does_not_have_is_refused(app):
    with app.app_context():
        load_reference_data(db.session())
        programme = db.session().scalars(select(Programme).where(
            Programme.code == "US-CTPAT")).one()
        rules = ProgrammeRules.of(programme)
    assert rules.tiers == {"tier1", "tier2", "tier3"}
    record = CanonicalRecord(programme="US-CTPAT", authorisation_number="00000009",
                             trader_id_scheme="US_CTPAT", trader_id="00000009",
                             legal_name="X Inc.", country="US", status="valid",
                             categories=(CategoryEntry("importer", "valid", None, "gold"),))
    result = validate(record, rules)
    assert isinstance(result, Rejection) and result.code == "unknown_tier"
