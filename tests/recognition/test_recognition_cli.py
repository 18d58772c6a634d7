"""The recognition commands, against a committed database."""

from __future__ import annotations

import json

from sqlalchemy import select

from hub.arrangements.service import load_reference_data
from hub.db import Database
from hub.registry.models import Programme
from hub.registry.service import OperatorData, apply_operator
from tests.recognition.conftest import D, at, cats


def _seed(database: Database) -> dict[str, int]:
    with database.session_scope() as session:
        load_reference_data(session)
        session.flush()
        programmes = {p.code: p for p in session.scalars(select(Programme))}
        ids = {}
        for code, key, name, identifiers in [
            ("EU-AEO", "DE123456789012345", "Meridian Logistics GmbH",
             [("MID", "DEMERLOG12HAM", "declared", True)]),
            ("JP-AEO", "5835678256246", "Meridian Logistics GmbH", []),
        ]:
            values = {"authorisation_number": key, "trader_id_scheme": "EORI",
                      "trader_id": key, "legal_name": name, "street": "Hafenstraße 12",
                      "city": "Hamburg", "postcode": "20457", "region": None,
                      "country": "DE", "status": "valid", "status_effective": D(2010, 1, 4),
                      "categories": cats("AEOC", "AEOS"), "authorised_on": D(2010, 1, 4),
                      "valid_from": D(2010, 1, 4), "consent_share": True}
            op = apply_operator(session, programmes[code], OperatorData(
                key, values, [(programmes[code].primary_scheme, key, "declared", True),
                              *identifiers]), now=at("2024-01-10")).operator
            ids[code] = op.id
    return ids


def test_commands(runner, committed_db):
    ids = _seed(committed_db)
    out = runner.invoke(args=["verify", "--programme", "US-CTPAT", "--scheme", "EORI",
                              "--value", "DE123456789012345", "--date", "2024-06-01", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["decision"] == "recognised" and data["arrangements"][0]["code"] == "EU-US"
    text = runner.invoke(args=["verify", "--programme", "US-CTPAT", "--name",
                               "Meridian Logistics", "--street", "Hafenstr. 12", "--city",
                               "Hamburg", "--country", "DE", "--date", "2024-06-01"])
    assert text.exit_code == 0, text.output
    assert text.output.startswith("recognised")
    matched = runner.invoke(args=["match", "--name", "Meridian Logistics", "--city",
                                  "Hamburg", "--country", "DE", "--json"])
    assert json.loads(matched.output)["candidates"]
    cw = runner.invoke(args=["crosswalk", "--operator", str(ids["EU-AEO"]),
                             "--declared-in", "US"])
    assert "declare DEMERLOG12HAM" in cw.output
    ent = runner.invoke(args=["entities", "show", str(ids["JP-AEO"]), "--json"])
    assert {m["operator_id"] for m in json.loads(ent.output)["members"]} == set(ids.values())
    add = runner.invoke(args=["judgements", "add", str(ids["EU-AEO"]),
                              "JP-AEO:5835678256246", "--verdict", "different",
                              "--by", "alice", "--reason", "two groups"])
    assert add.exit_code == 0, add.output
    listed = runner.invoke(args=["judgements", "list", "--json"])
    assert json.loads(listed.output)[0]["actor"] == "alice"
    ent = runner.invoke(args=["entities", "show", str(ids["JP-AEO"]), "--json"])
    assert len(json.loads(ent.output)["members"]) == 1
    bad = runner.invoke(args=["verify", "--programme", "NOPE", "--scheme", "EORI", "--value",
                              "DE1"])
    assert bad.exit_code != 0 and "does not exist" in bad.output
