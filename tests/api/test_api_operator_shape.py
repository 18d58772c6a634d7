"""One operator representation: a list item, a single read, an export line and a webhook
payload carry the same members, identifiers included, and only what the arrangement
shares."""

from __future__ import annotations

import json

from hub.auth import policy
from hub.auth.shared import programme_codes, shared_record
from hub.notify.events import operator_events
from hub.registry.models import Operator
from hub.registry.service import RECORD_COLUMNS, OperatorData, apply_operator
from tests.auth.hubkit import bearer, make_client, make_operator, programmes


def test_list_detail_export_and_webhook_carry_one_representation(ref_app, backend):
    database = ref_app.extensions["aeohub.db"]
    with database.session_scope(write=True) as session:
        op_id = make_operator(session, programmes(session)["EU-AEO"], 1, category="AEOF")
        row = session.get(Operator, op_id)
        values = {name: getattr(row, name) for name in RECORD_COLUMNS}
        apply_operator(session, row.programme, OperatorData(
            stable_key=row.stable_key, values=values, identifiers=[
                *[(i.scheme, i.value, i.origin, i.linked) for i in row.identifiers],
                ("MID", "DEMUSGMB123POR", "declared", True),
                ("MID", "DEMUSGMB999POR", "derived", False)]))
    headers = bearer(database, make_client(database, "US-CTPAT", "registry:read export"))
    client = ref_app.test_client()
    listed = client.get("/api/v1/operators", headers=headers).json["items"]
    detail = client.get(f"/api/v1/operators/{op_id}", headers=headers).json["operator"]
    exported = [json.loads(line) for line in client.get(
        "/api/v1/export/EU-AEO.ndjson", headers=headers).get_data(as_text=True).splitlines()]
    with database.session_scope() as session:
        view = policy.view_for(session, programmes(session)["US-CTPAT"].id, admin=False)
        (event,) = operator_events(session, view, [{"operator_id": op_id, "kind": "created",
                                                    "programme": "EU-AEO"}],
                                   ["operator.created"], programme_codes(session, []))
    assert listed == [detail] == exported == [event.data["operator"]]
    assert {(i["scheme"], i["value"]) for i in detail["identifiers"]} == {
        ("EORI", detail["trader_id"]), ("MID", "DEMUSGMB123POR")}  # never a derived one


def test_identifiers_stay_out_when_the_arrangement_does_not_share_them(ref_app, backend):
    database = ref_app.extensions["aeohub.db"]
    with database.session_scope(write=True) as session:
        op_id = make_operator(session, programmes(session)["EU-AEO"], 1, category="AEOF")
    with database.session_scope() as session:
        row = session.get(Operator, op_id)
        grant = policy.Grant(row.programme_id, "EU-AEO", ("EU-US",), frozenset({"AEOF"}),
                             True, policy.shared_fields(["legal_name", "status"]))
        record = shared_record(row, grant, {row.programme_id: ("EU-AEO", None)},
                               row.identifiers)
    assert set(record) == {"id", "legal_name", "status", "listed", "removed_at",
                           "updated_at"}
