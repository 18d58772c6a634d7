"""Cross-programme entities: identifier and score links, judgements that override and break."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.errors import InvalidInput
from hub.recognition.entities import Entity, add_judgement, entity_of, list_judgements
from hub.registry.models import Operator
from tests.recognition.conftest import OperatorFactory

LEI = "5493001KJTIIGC8Y1R12"


def ops(add_operator: OperatorFactory) -> tuple[Operator, Operator, Operator]:
    eu = add_operator("EU-AEO", "DE100000000000001", legal_name="Meridian Logistics GmbH",
                      street="Hafenstraße 12", city="Hamburg", postcode="20457",
                      identifiers=[("LEI", LEI, "declared", False)])
    us = add_operator("US-CTPAT", "12345678", legal_name="Meridian Logistics Inc.",
                      street="100 Harbor Blvd", city="Newark", country="US",
                      categories=[], identifiers=[("LEI", LEI, "declared", False)])
    jp = add_operator("JP-AEO", "5835678256246", legal_name="Meridian Logistics GmbH",
                      street="Hafenstrasse 12", city="Hamburg", postcode="20457", categories=[])
    return eu, us, jp


def members(entity: Entity) -> set[int]:
    return {m["operator_id"] for m in entity.members}


def test_links_by_identifier_and_score(session, add_operator):
    eu, us, jp = ops(add_operator)
    entity = entity_of(session, us.id)
    assert members(entity) == {eu.id, us.id, jp.id}
    kinds = {(lk.left, lk.right): lk.kind for lk in entity.links}
    assert kinds[(eu.id, us.id)] == "identifier"
    assert kinds[(eu.id, jp.id)] == "score"
    assert entity.id == min(members(entity))


def test_different_breaks_a_chain_and_same_overrides_scores(session, add_operator):
    eu, us, jp = ops(add_operator)
    add_judgement(session, f"US-CTPAT:{us.stable_key}", jp.id, "different", actor="alice",
                  reason="different group")
    entity = entity_of(session, jp.id)
    assert us.id not in members(entity)
    assert entity.broken and entity.judgements[0]["actor"] == "alice"
    assert jp.id not in members(entity_of(session, us.id))
    # Judgements override the identifier link too.
    add_judgement(session, eu.id, us.id, "different", actor="bob", reason="LEI typo")
    assert members(entity_of(session, us.id)) == {us.id}
    # A "same" judgement links operators no score would.
    other = add_operator("KR-AEO", "1168200276", legal_name="Totally Other Name",
                         city="Seoul", country="KR", categories=[])
    add_judgement(session, other.id, us.id, "same", actor="carol", reason="site visit")
    assert members(entity_of(session, us.id)) == {us.id, other.id}
    # The latest judgement on a pair wins.
    add_judgement(session, other.id, us.id, "different", actor="carol", reason="mistake")
    assert members(entity_of(session, us.id)) == {us.id}
    assert len(list_judgements(session, us.id)) == 4


def test_judgements_survive_recreated_operators(session, add_operator):
    eu, _us, jp = ops(add_operator)
    add_judgement(session, eu.id, jp.id, "different", actor="alice", reason="not the same")
    session.delete(session.get(Operator, jp.id))
    session.flush()
    again = add_operator("JP-AEO", "5835678256246", legal_name="Meridian Logistics GmbH",
                         street="Hafenstrasse 12", city="Hamburg", postcode="20457",
                         categories=[])
    assert again is not jp  # a new row (SQLite may reuse the id)
    assert again.id not in members(entity_of(session, eu.id))
    assert session.scalar(select(Operator.id).where(Operator.stable_key == jp.stable_key)
                          ) == again.id


def test_judgement_validation(session, add_operator):
    eu, _us, _jp = ops(add_operator)
    session.commit()  # a refused judgement rolls back its own transaction, not these
    with pytest.raises(InvalidInput):
        add_judgement(session, eu.id, eu.id, "same", actor="a", reason="b")
    with pytest.raises(InvalidInput):
        add_judgement(session, eu.id, "nonsense", "same", actor="a", reason="b")
    with pytest.raises(InvalidInput):
        add_judgement(session, eu.id, "US-CTPAT:12345678", "maybe", actor="", reason="")
