"""Identity resolution by name and address: scores, ambiguity, disagreeing references."""

from __future__ import annotations

from typing import Any

import pytest

from hub.identifiers import IdentifierError
from hub.recognition import reasons as rc
from hub.recognition.matching import match, normalise_reference_identifier
from hub.recognition.scoring import compare, prepare
from hub.recognition.service import verify, warm
from hub.recognition.trader import DeclaredTrader
from hub.registry.models import Operator
from tests.recognition.conftest import D, OperatorFactory, at

NOW = at("2025-06-01")


def muller(add_operator: OperatorFactory, key: str = "DE100000000000001", **kw: Any
           ) -> Operator:
    values = {"legal_name": "Müller Metallwerke GmbH & Co. KG",
              "street": "Robert-Bosch-Straße 17", "city": "Mannheim", "postcode": "68443",
              "country": "DE"}
    values.update(kw)
    return add_operator("EU-AEO", key, **values)


def test_name_and_address_variants_match(session, add_operator):
    op = muller(add_operator)
    muller(add_operator, "DE100000000000002", legal_name="Müller Chemie GmbH",
           street="Hafenstraße 3", postcode="68159")
    for name, street, postcode in [
        ("MUELLER METALLWERKE GMBH & CO KG", "Robert-Bosch-Str. 17", None),
        ("Muller Metalwerke GmbH", "17 Robert Bosch Strasse", "68443"),
        ("Metallwerke Müller KG", "Robert-Bosch-Straße 17", "68443"),
    ]:
        result = match(session, DeclaredTrader(name=name, street=street, city="Mannheim",
                                                postcode=postcode, country="DE"))
        assert result.decision == "match", (name, [c.to_dict() for c in result.candidates])
        assert result.best is not None and result.best.operator_id == op.id
        assert result.best.explanation and "name" in result.best.features


def test_hard_negatives_do_not_match(session, add_operator):
    muller(add_operator)
    other_city = match(session, DeclaredTrader(
        name="Müller Metallwerke GmbH", street="Industriestraße 4", city="Dresden",
        postcode="01067", country="DE"))
    assert other_city.decision == "no_match"
    assert other_city.reasons[0].code == rc.NO_MATCH
    sister = match(session, DeclaredTrader(
        name="Müller Logistik GmbH", street="Am Hafen 2", city="Mannheim", country="DE"))
    assert sister.decision == "no_match"


def test_scores_are_deterministic_and_ordered(session, add_operator):
    muller(add_operator)
    muller(add_operator, "DE100000000000003", legal_name="Müller Metallbau GmbH")
    ref = DeclaredTrader(name="Mueller Metallwerke", city="Mannheim", country="DE")
    first = [(c.operator_id, c.score) for c in match(session, ref).candidates]
    assert first == [(c.operator_id, c.score) for c in match(session, ref).candidates]
    assert [s for _i, s in first] == sorted((s for _i, s in first), reverse=True)


def test_two_close_candidates_are_ambiguous(session, add_operator):
    muller(add_operator, "DE100000000000001")
    muller(add_operator, "DE100000000000002", legal_name="Müller Metallwerk GmbH",
           street="Robert-Bosch-Straße 17a")
    ref = DeclaredTrader(name="Muller Metallwerke", street="Robert-Bosch-Strasse 17",
                          city="Mannheim", country="DE")
    result = match(session, ref)
    assert result.decision == "ambiguous"
    assert result.reasons[0].code == rc.AMBIGUOUS_MATCH
    decision = verify(session, ref, "US-CTPAT", D(2024, 6, 1), now=NOW)
    assert decision.decision == "ambiguous" and decision.operator is None
    assert len(decision.candidates) >= 2 and all(c.score for c in decision.candidates)


def test_both_references_must_agree(session, add_operator):
    op = muller(add_operator)
    other = muller(add_operator, "DE100000000000009", legal_name="Schmidt Papier AG",
                   street="Lindenallee 3", city="Köln", postcode="50667")
    agree = verify(session, DeclaredTrader(
        scheme="EORI", value=op.stable_key, name="Müller Metallwerke", street="Robert-Bosch-"
        "Straße 17", city="Mannheim", country="DE"), "US-CTPAT", D(2024, 6, 1), now=NOW)
    assert agree.decision == "recognised"
    disagree = verify(session, DeclaredTrader(
        scheme="EORI", value=other.stable_key, name="Müller Metallwerke",
        street="Robert-Bosch-Straße 17", city="Mannheim", country="DE"),
        "US-CTPAT", D(2024, 6, 1), now=NOW)
    assert disagree.decision == "ambiguous"
    assert disagree.reason_codes[0] == rc.REFERENCES_DISAGREE
    assert {c.operator_id for c in disagree.candidates} >= {op.id, other.id}


def test_name_only_verify(session, add_operator):
    op = muller(add_operator)
    decision = verify(session, DeclaredTrader(
        name="MULLER METALLWERKE GMBH & CO. KG", street="Robert Bosch Str 17",
        city="Mannheim", country="DE"), "US-CTPAT", D(2024, 6, 1), now=NOW)
    assert decision.decision == "recognised"
    assert decision.operator is not None and decision.operator["id"] == op.id
    nobody = verify(session, DeclaredTrader(name="Nobody Trading Ltd", city="Leeds",
                                             country="GB"), "US-CTPAT", now=NOW)
    assert nobody.decision == "unknown_trader"


def test_compare_explains_every_feature() -> None:
    a = prepare("ACME Intl. Ltd", "12 High Street", "London", "SW1A 2AA", "GB")
    b = prepare("Acme International Limited", "12 High St", "London", None, "GB")
    score, features, explanation = compare(a, b)
    assert score > 0.95
    assert features.postcode is None
    assert any("postcode missing" in line for line in explanation)


def test_address_must_agree_when_names_do(session, add_operator):
    op = muller(add_operator)
    # Same name, same city, another street: another site or another company, not a match.
    other_street = match(session, DeclaredTrader(
        name="Müller Metallwerke GmbH & Co. KG", street="Hafenstraße 88", city="Mannheim",
        country="DE"))
    assert other_street.decision == "no_match"
    assert other_street.candidates[0].features["address"] == "conflicts"
    # Same street name, another house number: conflicts too.
    other_number = match(session, DeclaredTrader(
        name="Müller Metallwerke", street="Robert-Bosch-Straße 171", city="Mannheim",
        country="DE"))
    assert other_number.decision == "no_match"
    # The street agrees: a different spelling of the city does not overrule it.
    spelled = match(session, DeclaredTrader(
        name="Mueller Metallwerke", street="Robert-Bosch-Str. 17", city="Mannheim-Neckarau",
        country="DE"))
    assert spelled.decision == "match" and spelled.best is not None
    assert spelled.best.operator_id == op.id


def test_a_differing_distinctive_word_is_a_sister_company(session, add_operator):
    muller(add_operator)
    for i, name in enumerate(["Acme Chemicals", "Zenith Trading", "Orbit Logistics"]):
        add_operator("EU-AEO", f"DE20000000000000{i}", legal_name=f"{name} GmbH",
                     street=f"Lindenallee {i + 1}", city="Köln", country="DE")
    sister = match(session, DeclaredTrader(
        name="Müller Logistik GmbH", street="Robert-Bosch-Straße 17", city="Mannheim",
        country="DE"))
    assert sister.decision == "no_match"
    assert "differing words" in sister.candidates[0].explanation[0]


def test_written_out_legal_forms_and_house_number_forms() -> None:
    a = prepare("Isar Metallwerke Gesellschaft mit beschränkter Haftung", "Gewerbering 58A",
                "Köln", None, "DE")
    b = prepare("Isar Metallwerke GmbH", "Gewerbering 58a", "Köln", "50326", "DE")
    score, features, _ = compare(a, b)
    assert features.name == 1.0 and features.address == "agrees" and score > 0.95
    c = prepare("Daiichi Koki", "1-11-20 Shibaura", "Kobe", None, "JP")
    d = prepare("Daiichi Koki", "1-11-3 Shibaura", "Kobe", None, "JP")
    assert compare(c, d)[1].address == "conflicts"
    e = prepare("Daiichi Koki", "1-11 Shibaura", "Kobe", None, "JP")
    assert compare(c, e)[1].address != "conflicts"


def test_warm_builds_the_index(session, add_operator):
    muller(add_operator)
    timings = warm(session)
    assert timings["operators"] >= 1 and timings["match_index"] >= 0


def test_verify_and_match_resolve_a_reference_alike(session, add_operator):
    """verify and match share one resolution: the same candidates, scores and paths."""
    op = muller(add_operator)
    other = muller(add_operator, "DE100000000000009", legal_name="Schmidt Papier AG",
                   street="Lindenallee 3", city="Köln", postcode="50667")
    muller(add_operator, "DE100000000000002", legal_name="Müller Metallwerk GmbH",
           street="Robert-Bosch-Straße 17a")
    name = {"name": "Müller Metallwerke", "street": "Robert-Bosch-Straße 17",
            "city": "Mannheim", "country": "DE"}
    references = [
        DeclaredTrader(scheme="EORI", value=op.stable_key, **name),
        DeclaredTrader(scheme="EORI", value=other.stable_key, **name),
        DeclaredTrader(**name),
        DeclaredTrader(name="Schmidt Papier", city="Köln", country="DE"),
        DeclaredTrader(scheme="EORI", value="DE999999999999999", **name),
    ]
    for reference in references:
        matched = match(session, reference, limit=50)
        verified = verify(session, reference, "US-CTPAT", D(2024, 6, 1), now=NOW)
        best = matched.best.operator_id if matched.best else None
        assert (verified.operator or {}).get("id") == best, reference
        if matched.decision == "ambiguous":  # verify shows the candidates only then
            assert verified.decision == "ambiguous", reference
            want = [(c.operator_id, c.via, round(c.score, 6)) for c in matched.candidates]
            got = [(c.operator_id, c.via, round(c.score, 6)) for c in verified.candidates]
            assert got == want, reference
    assert [match(session, r).decision for r in references] == [
        "match", "ambiguous", "ambiguous", "match", "ambiguous"]


def test_a_declared_number_is_read_whatever_its_spaces() -> None:
    """As the company page reads it (`normalise_reference`): a MID copied with spaces
    is the MID; malformed stays malformed."""
    assert normalise_reference_identifier(DeclaredTrader("mid", "atbeclog 37wie")) == (
        "MID", "ATBECLOG37WIE")
    with pytest.raises(IdentifierError):
        normalise_reference_identifier(DeclaredTrader("MID", "ZZ ABC 123"))
