"""Declaration codes in the API: the crosswalk for a visible operator, through the policy,
as its own route and as the `declare` member of verify answers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.api import service
from hub.auth import policy
from hub.registry.models import Operator
from hub.registry.service import RECORD_COLUMNS, OperatorData, apply_operator
from tests.auth.hubkit import bearer, make_client, make_operator, programmes

MID = "DEMUSGMB123POR"


def _link_mid(database: Any, operator_id: int) -> None:
    """Give the operator a MID linked to its EORI by its own administration."""
    with database.session_scope(write=True) as session:
        row = session.get(Operator, operator_id)
        values = {name: getattr(row, name) for name in RECORD_COLUMNS}
        identifiers = [(i.scheme, i.value, i.origin, i.linked) for i in row.identifiers]
        apply_operator(session, row.programme, OperatorData(
            stable_key=row.stable_key, values=values,
            identifiers=[*identifiers, ("MID", MID, "declared", True)]))


def _setup(ref_app: Any) -> tuple[Any, int, int, str]:
    database = ref_app.extensions["aeohub.db"]
    with database.session_scope(write=True) as session:
        eu = programmes(session)["EU-AEO"]
        seen = make_operator(session, eu, 1, category="AEOF")
        hidden = make_operator(session, eu, 2, category="AEOC")  # outside CBP's scope
    with database.session_scope() as session:
        eori = session.scalars(select(Operator.trader_id).where(Operator.id == seen)).one()
    return database, seen, hidden, eori


def test_the_missing_mid_is_a_warning_and_a_linked_mid_is_the_code(ref_app, backend):
    database, seen, _hidden, eori = _setup(ref_app)
    headers = bearer(database, make_client(database, "US-CTPAT", "verify registry:read"))
    client = ref_app.test_client()

    codes = client.get(f"/api/v1/operators/{seen}/declaration-codes", headers=headers)
    assert codes.status_code == 200, codes.get_json()
    assert codes.json["declared_in"] == "US"
    assert codes.json["codes"] == []
    assert any("No MID is linked" in w for w in codes.json["warnings"])
    verify = client.post("/api/v1/verify", headers=headers,
                         json={"trader": {"scheme": "EORI", "value": eori}})
    assert verify.json["decision"]["declare"]["codes"] == []
    assert any("No MID is linked" in w for w in verify.json["decision"]["declare"]["warnings"])

    _link_mid(database, seen)
    codes = client.get(f"/api/v1/operators/{seen}/declaration-codes", headers=headers)
    (code,) = codes.json["codes"]
    assert code["scheme"] == "MID" and code["value"] == MID and code["code"] == MID
    assert code["field"] == "CBP entry: manufacturer/shipper MID"
    assert code["roles"] == ["manufacturer", "shipper"]
    assert code["verified"] is True and code["source"]
    assert codes.json["warnings"] == []
    assert codes.json["arrangements"] == ["EU-US"]
    verify = client.post("/api/v1/verify", headers=headers,
                         json={"trader": {"scheme": "EORI", "value": eori}})
    assert verify.json["decision"]["declare"]["codes"] == [code]
    batch = client.post("/api/v1/verify/batch", headers=headers, json={
        "traders": [{"scheme": "EORI", "value": eori}], "declare": True})
    assert batch.json["decisions"][0]["declare"]["codes"] == [code]
    plain = client.post("/api/v1/verify/batch", headers=headers, json={
        "traders": [{"scheme": "EORI", "value": eori}]})
    assert "declare" not in plain.json["decisions"][0]


def test_another_administration_and_bad_choices(ref_app, backend):
    database, seen, _hidden, _eori = _setup(ref_app)
    headers = bearer(database, make_client(database, "US-CTPAT", "registry:read"))
    client = ref_app.test_client()
    china = client.get(f"/api/v1/operators/{seen}/declaration-codes?declaring=cn",
                       headers=headers)
    assert china.status_code == 200, china.get_json()
    assert china.json["declared_in"] == "CN"
    (code,) = china.json["codes"]
    assert code["scheme"] == "EU_AEO" and code["verified"] is False
    assert code["roles"] == ["consignor", "consignee"]
    for query, field in (("declaring=ZZ", "declaring"), ("declaring=1", "declaring"),
                         ("declaring=US&x=1", "x"), ("date=2026-02-30", "date")):
        bad = client.get(f"/api/v1/operators/{seen}/declaration-codes?{query}",
                         headers=headers)
        assert bad.status_code == 400, query
        assert field in {e["field"] for e in bad.json["errors"]}
    admin = bearer(database, make_client(database, None, "admin"))
    unnamed = client.get(f"/api/v1/operators/{seen}/declaration-codes", headers=admin)
    assert unnamed.status_code == 400
    assert {e["field"] for e in unnamed.json["errors"]} == {"declaring"}


def test_a_hidden_operator_is_answered_as_one_that_does_not_exist(ref_app, backend):
    database, _seen, hidden, _eori = _setup(ref_app)
    headers = bearer(database, make_client(database, "US-CTPAT", "registry:read"))
    client = ref_app.test_client()
    answers = []
    for operator_id in (hidden, hidden + 1000):
        for query in ("", "?declaring=CN", "?declaring=ZZ"):
            response = client.get(f"/api/v1/operators/{operator_id}/declaration-codes"
                                  + query, headers=headers)
            body = response.get_json()
            answers.append((response.status_code, body["detail"].replace(
                str(operator_id), "N"), body["errors"]))
    assert {a[0] for a in answers} == {404}
    assert answers[:3] == answers[3:]


def test_codes_need_the_arrangement_to_share_identifiers(ref_app, backend):
    database, seen, _hidden, _eori = _setup(ref_app)
    _link_mid(database, seen)
    with database.session_scope() as session:
        pid = session.get(Operator, seen).programme_id
        view = policy.view_for(session, programmes(session)["US-CTPAT"].id, admin=False)
        grant = view.grants[pid]
        shared = service.declaration_codes(session, grant, seen, "US", None)
        assert shared["codes"][0]["value"] == MID
        no_identifier = policy.Grant(grant.programme_id, grant.programme_code,
                                     grant.arrangements, grant.categories,
                                     grant.consent_required,
                                     grant.fields - {"identifiers"})
        cut = service.declaration_codes(session, no_identifier, seen, "US", None)
    assert cut["codes"] == []
    assert cut["warnings"] == [service.IDENTIFIERS_NOT_SHARED]
