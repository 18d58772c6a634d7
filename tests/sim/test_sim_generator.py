"""The registry generator: determinism, valid identifiers, realistic mixes, shared companies."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter

import pytest

from hub.identifiers import validate
from hub.sim.generator import ProgrammeGenerator, programme_codes
from hub.sim.registry import generate_registry, iter_ground_truth, iter_records

MAIN_PROGRAMMES = ["EU-AEO", "US-CTPAT", "CN-AEO", "JP-AEO", "KR-AEO", "SG-STP", "MY-AEO",
                   "CA-PIP", "UK-AEO", "CH-AEO", "MX-OEA", "BR-OEA", "IN-AEO"]


def _dump(programme: str, size: int, seed: int) -> str:
    return json.dumps(list(iter_records(programme, size, seed)), sort_keys=True)


def test_same_seed_same_output_different_seed_different() -> None:
    assert _dump("EU-AEO", 200, 5) == _dump("EU-AEO", 200, 5)
    assert _dump("EU-AEO", 200, 5) != _dump("EU-AEO", 200, 6)


def test_output_does_not_depend_on_the_hash_seed() -> None:
    code = ("import json,hashlib;from hub.sim.registry import iter_records;"
            "print(hashlib.sha256(json.dumps(list(iter_records('CN-AEO',60,9,day=5)),"
            "sort_keys=True).encode()).hexdigest())")
    digests = set()
    for hash_seed in ("1", "2"):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                env={"PYTHONHASHSEED": hash_seed, "PATH": ""}, check=True,
                                cwd=".")
        digests.add(result.stdout.strip())
    assert len(digests) == 1


def test_every_reference_programme_generates() -> None:
    for code in programme_codes():
        records = list(iter_records(code, 30, 1))
        assert len(records) == 30
        assert {r["programme"] for r in records} == {code}
        assert len({r["trader_id"] for r in records}) == 30, code


@pytest.mark.parametrize("programme", MAIN_PROGRAMMES)
def test_identifiers_are_valid(programme: str) -> None:
    for record in iter_records(programme, 150, 11):
        validate(record["trader_id_scheme"], record["trader_id"])
        for entry in record["identifiers"]:
            validate(entry["scheme"], entry["value"])
        if programme == "EU-AEO":
            number = validate("EU_AEO", record["authorisation_number"]).value
            category = "AEOF" if len(record["categories"]) == 2 else record["categories"][0]["code"]
            assert number[2:6] == category
            assert number[:2] == record["address"]["country"] == record["trader_id"][:2]
        if programme == "CN-AEO":
            assert record["authorisation_number"] == "AEOCN" + record["trader_id"]
            assert len(record["trader_id"]) == 10
        if programme == "SG-STP":
            validate("SG_AEO", record["authorisation_number"])


def test_eu_mix_is_realistic() -> None:
    records = list(iter_records("EU-AEO", 3000, 2))
    status = Counter(r["status"] for r in records)
    assert 0.85 < status["valid"] / 3000 < 0.97
    assert status["suspended"] > 20 and status["revoked"] > 10 and status["withdrawn"] > 10
    partial = [r for r in records if r["status"] == "valid"
               and {c["status"] for c in r["categories"]} == {"valid", "suspended"}]
    assert partial, "an AEOF holder with one component suspended keeps the other"
    consent = sum(r["consent_share"] for r in records) / 3000
    assert 0.82 < consent < 0.92
    publish = sum(r["consent_publish"] for r in records) / 3000
    assert publish < consent
    assert all(r["consent_share"] for r in records if r["consent_publish"])
    with_mid = [r for r in records if any(i["scheme"] == "MID" for i in r["identifiers"])]
    assert 0.1 < len(with_mid) / 3000 < 0.6
    assert all(i["linked"] for r in with_mid for i in r["identifiers"] if i["scheme"] == "MID")
    countries = Counter(r["address"]["country"] for r in records)
    assert countries.most_common(1)[0][0] == "DE" and len(countries) >= 10
    categories = Counter(len(r["categories"]) for r in records)
    assert categories[2] > categories[1]  # AEOF is the most common authorisation


def test_china_recertifies_every_three_years() -> None:
    for record in iter_records("CN-AEO", 300, 4):
        assert record["valid_until"] is not None
        start = dt.date.fromisoformat(record["valid_from"])
        end = dt.date.fromisoformat(record["valid_until"]) + dt.timedelta(days=1)
        assert (end.year - start.year, end.month, end.day) in {(3, start.month, start.day),
                                                               (3, 2, 28)}
        if record["status"] == "valid":
            assert record["valid_until"] >= "2025-03-03"
        if record["status"] == "expired":
            assert record["valid_until"] < "2025-03-03"
        assert any(i["scheme"] == "CN_USCC" for i in record["identifiers"])


def test_names_and_addresses_look_local() -> None:
    records = {r["address"]["country"]: r for r in iter_records("EU-AEO", 800, 3)}
    assert any(form in records["DE"]["legal_name"] for form in ("GmbH", "AG", "KG", "SE", "e.K."))
    assert any(form in records["PL"]["legal_name"] for form in ("Sp.", "S.A."))
    jp = next(iter_records("JP-AEO", 1, 3))
    assert jp["address"]["postcode"][3] == "-"
    cn = next(iter_records("CN-AEO", 1, 3))
    assert cn["address"]["street"].startswith("No. ")
    for record in iter_records("EU-AEO", 100, 3):
        assert any(ch.isdigit() for ch in record["address"]["street"])
        assert record["issuing_authority"].startswith(record["address"]["country"] + " ")


def test_shared_companies_appear_in_several_programmes() -> None:
    eu = dict(iter_ground_truth("EU-AEO", 3000, 21))
    us = dict(iter_ground_truth("US-CTPAT", 3000, 21))
    eu_companies = {c: t for t, c in eu.items()}
    us_companies = {c: t for t, c in us.items()}
    common = set(eu_companies) & set(us_companies)
    assert len(common) >= 10
    assert all(c.startswith("G") for c in common)
    eu_registry = generate_registry("EU-AEO", 3000, 21)
    us_registry = generate_registry("US-CTPAT", 3000, 21)
    differing = 0
    for company in common:
        eu_record = eu_registry.lookup(eu_companies[company])
        us_record = us_registry.lookup(us_companies[company])
        assert eu_record is not None and us_record is not None
        assert eu_registry.company_of(eu_record["trader_id"]) == company
        assert "company_id" not in eu_record and "company_id" not in us_record
        differing += eu_record["legal_name"] != us_record["legal_name"]
    assert differing >= len(common) * 0.8  # variants, not copies


def test_ground_truth_is_unique_outside_the_universe() -> None:
    truth = list(iter_ground_truth("KR-AEO", 400, 8))
    assert len(truth) == 400
    own = [c for _, c in truth if not c.startswith("G")]
    assert len(own) == len(set(own))


def test_record_is_regenerated_identically() -> None:
    generator = ProgrammeGenerator("EU-AEO", 3)
    assert generator.record(17) == ProgrammeGenerator("EU-AEO", 3).record(17)
    assert generator.record(17) is not generator.record(17)


def test_unknown_programme() -> None:
    with pytest.raises(KeyError, match="unknown programme"):
        next(iter_records("XX-NOPE", 1, 1))
