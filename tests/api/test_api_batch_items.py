"""A batch answers every trader it can: a malformed item gets its own error naming the
field, the others are answered, and only a wrong envelope is a 400."""

from __future__ import annotations

from sqlalchemy import select

from hub.registry.models import Operator
from tests.auth.hubkit import bearer, make_client, make_operator, programmes


def test_a_malformed_item_is_answered_alone_and_the_others_are_verified(ref_app, backend):
    database = ref_app.extensions["aeohub.db"]
    with database.session_scope(write=True) as session:
        op_id = make_operator(session, programmes(session)["EU-AEO"], 1, category="AEOF")
    with database.session_scope() as session:
        eori = session.scalars(select(Operator.trader_id).where(Operator.id == op_id)).one()
    headers = bearer(database, make_client(database, "US-CTPAT", "verify"))
    traders = [
        {"scheme": "EORI", "value": eori},
        {"scheme": "EORI"},                                   # no value
        {"scheme": "EORI", "value": eori, "colour": "red"},   # unknown member
        7,                                                    # not an object
        {"name": "Acme", "address": {"country": "D"}},        # bad country
        {"scheme": "EORI", "value": "DE999999999999999"},
    ]
    response = ref_app.test_client().post("/api/v1/verify/batch", headers=headers,
                                          json={"traders": traders})
    assert response.status_code == 200, response.get_json()
    decisions = response.json["decisions"]
    assert len(decisions) == len(traders)
    assert decisions[0]["decision"] == "recognised"
    assert decisions[0]["operator"]["id"] == op_id
    assert decisions[5]["decision"] == "unknown_trader"
    fields = {position: {e["field"] for e in decisions[position]["errors"]}
              for position in (1, 2, 3, 4)}
    assert fields == {1: {"traders.1.scheme"}, 2: {"traders.2.colour"}, 3: {"traders.3"},
                      4: {"traders.4.address.country"}}
    for position in (1, 2, 3, 4):
        assert decisions[position]["decision"] == "invalid_reference"
        assert decisions[position]["position"] == position


def test_only_a_wrong_envelope_is_a_400(ref_app, backend):
    database = ref_app.extensions["aeohub.db"]
    headers = bearer(database, make_client(database, "US-CTPAT", "verify"))
    client = ref_app.test_client()
    for body, field in [({"traders": []}, "traders"), ({"traders": "x"}, "traders"),
                        ({"traders": [{"scheme": "EORI", "value": "DE1"}], "flow": "by air"},
                         "flow"),
                        ({"traders": [{"scheme": "EORI", "value": "DE1"}], "extra": 1},
                         "extra")]:
        response = client.post("/api/v1/verify/batch", headers=headers, json=body)
        assert response.status_code == 400, body
        assert field in {e["field"] for e in response.json["errors"]}
        assert response.json["request_id"]


def test_a_batch_of_only_malformed_items_is_answered(ref_app, backend):
    database = ref_app.extensions["aeohub.db"]
    headers = bearer(database, make_client(database, "US-CTPAT", "verify"))
    response = ref_app.test_client().post("/api/v1/verify/batch", headers=headers,
                                          json={"traders": [{"value": "x"}, {}]})
    assert response.status_code == 200, response.get_json()
    assert [d["decision"] for d in response.json["decisions"]] == ["invalid_reference"] * 2
