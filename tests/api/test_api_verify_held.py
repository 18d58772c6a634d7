"""Verify through the policy: an operator stays visible for the categories it once held
(the base filter reads its current categories and its recorded category history)."""

from __future__ import annotations

from sqlalchemy import select

from hub.auth import policy
from hub.registry.models import Operator
from hub.registry.service import RECORD_COLUMNS, OperatorData, apply_operator
from tests.auth.hubkit import bearer, make_client, make_operator, programmes

RECOGNISING, RECOGNISED = "US-CTPAT", "EU-AEO"


def _scope(session) -> tuple[str, str]:
    """A category of the recognised programme in the arrangement's scope, and one out."""
    progs = programmes(session)
    view = policy.view_for(session, progs[RECOGNISING].id)
    grant = view.grants[progs[RECOGNISED].id]
    codes = progs[RECOGNISED].category_codes()
    inside = next(c for c in codes if c in grant.categories)
    outside = next(c for c in codes if c not in grant.categories)
    return inside, outside


def _recategorise(session, operator_id: int, category: str) -> None:
    """The source now lists the operator under `category` only (a categories_changed)."""
    row = session.get(Operator, operator_id)
    values = {name: getattr(row, name) for name in RECORD_COLUMNS}
    values["categories"] = [{"code": category, "status": "valid", "since": "2024-01-01"}]
    apply_operator(session, row.programme, OperatorData(
        stable_key=row.stable_key, values=values,
        identifiers=[(row.trader_id_scheme, row.trader_id, "declared", True)]))


def test_verify_sees_operators_by_the_categories_they_held(ref_app, committed_db):
    with committed_db.session_scope(write=True) as session:
        inside, outside = _scope(session)
        eu = programmes(session)[RECOGNISED]
        moved = make_operator(session, eu, 1, category=inside)  # held, then lost
        never = make_operator(session, eu, 2, category=outside)  # never in scope
        kept = make_operator(session, eu, 3, category=inside)  # holds it now
        session.flush()
        _recategorise(session, moved, outside)
    with committed_db.session_scope() as session:
        ids = {i: session.scalar(select(Operator.trader_id).where(Operator.id == i))
               for i in (moved, never, kept)}
        scheme = session.scalar(select(Operator.trader_id_scheme).where(Operator.id == kept))

    headers = bearer(committed_db, make_client(committed_db, RECOGNISING, "verify"))
    client = ref_app.test_client()

    def verify(operator_id: int) -> dict:
        response = client.post("/api/v1/verify", headers=headers, json={
            "trader": {"scheme": scheme, "value": ids[operator_id]}})
        assert response.status_code == 200, response.json
        return response.json["decision"]

    assert verify(kept)["operator"]["id"] == kept
    # Out of scope today, but held in the past: still visible (its loss of the category
    # is what the partner must see).
    assert verify(moved)["operator"]["id"] == moved
    # Never in scope: answered exactly as an unknown trader.
    assert verify(never)["decision"] == "unknown_trader"
    assert verify(never)["operator"] is None
