"""The shipped reference data (config/reference) loads, holds the sourced facts, and the
validator names file, entry and field for every class of error."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.arrangements.reference import (
    ReferenceData,
    ReferenceDataError,
    default_reference_dir,
    load_reference,
)

D = dt.date


@pytest.fixture(scope="module")
def ref() -> ReferenceData:
    return load_reference()


# ----------------------------------------------------------------------------- shipped data


def test_shipped_files_load_from_default_dir(ref: ReferenceData) -> None:
    assert (default_reference_dir() / "programmes.yaml").is_file()
    assert ref.source_dir == default_reference_dir()
    assert len(ref.programmes) >= 25
    assert len(ref.administrations) >= 30


REQUIRED_PROGRAMMES = {
    "EU-AEO": "EU", "US-CTPAT": "US", "CN-AEO": "CN", "SG-STP": "SG", "JP-AEO": "JP",
    "CA-PIP": "CA", "KR-AEO": "KR", "CH-AEO": "CH", "NO-AEO": "NO", "UK-AEO": "UK",
    "AD-AEO": "AD", "NZ-SES": "NZ", "JO-GCL": "JO", "TW-AEO": "TW", "IL-AEO": "IL",
    "MX-OEA": "MX", "DO-OEA": "DO", "PE-OEA": "PE", "IN-AEO": "IN", "UY-OEC": "UY",
    "BR-OEA": "BR", "MY-AEO": "MY", "TH-AEO": "TH", "ID-AEO": "ID", "PH-AEO": "PH",
    "BN-AEO": "BN", "CL-OEA": "CL", "CO-OEA": "CO", "HK-AEO": "HK", "AU-ATT": "AU",
    "BY-AEO": "BY",
}


def test_required_programmes_and_their_administrations(ref: ReferenceData) -> None:
    for code, admin in REQUIRED_PROGRAMMES.items():
        assert ref.programme(code).administration == admin, code


def test_programme_names(ref: ReferenceData) -> None:
    assert ref.programme("US-CTPAT").name == "Customs Trade Partnership Against Terrorism"
    assert ref.programme("SG-STP").name == "Secure Trade Partnership"
    assert ref.programme("CA-PIP").name == "Partners in Protection"
    assert ref.programme("NZ-SES").name == "Secure Exports Scheme"
    assert ref.programme("AU-ATT").name == "Australian Trusted Trader"
    assert "Advanced Certified Enterprise" in ref.programme("CN-AEO").name


def test_eu_administration_has_27_members_and_xi_as_prefix_only(ref: ReferenceData) -> None:
    eu = ref.administrations["EU"]
    assert len(eu.countries) == 27
    assert len(set(eu.countries)) == 27
    assert {"DE", "FR", "IE", "HR", "GR"} <= set(eu.countries)
    assert "GB" not in eu.countries and "XI" not in eu.countries
    assert "XI" in eu.identifier_prefixes
    assert ref.administrations["NO"].code == "NO"  # quoted in YAML, not the boolean false
    assert all(a.allowed_hosts == () for a in ref.administrations.values())


def test_programme_categories_use_the_real_vocabulary(ref: ReferenceData) -> None:
    eu = ref.programme("EU-AEO")
    assert eu.category_codes == ("AEOC", "AEOS", "AEOF")
    assert eu.category("AEOF").components == ("AEOC", "AEOS")
    assert set(ref.programme("KR-AEO").category_codes) == {"A", "AA", "AAA"}
    assert set(ref.programme("SG-STP").category_codes) == {"STP", "STP_PLUS"}
    assert set(ref.programme("PH-AEO").category_codes) == {"LEVEL_1", "LEVEL_2"}
    assert {"importer", "exporter", "foreign_manufacturer", "customs_broker", "consolidator",
            "highway_carrier"} <= set(ref.programme("US-CTPAT").category_codes)
    assert set(ref.programme("US-CTPAT").tier_codes) == {"tier1", "tier2", "tier3"}
    assert {"exporter", "importer", "warehouse_operator", "customs_broker",
            "logistics_operator"} <= set(ref.programme("JP-AEO").category_codes)
    assert "ACE" in ref.programme("CN-AEO").category_codes
    assert "TYPE_3" in ref.programme("BY-AEO").category_codes


def test_identifiers_stable_keys_and_consent(ref: ReferenceData) -> None:
    eu = ref.programme("EU-AEO")
    assert eu.primary_identifier == "EORI"
    assert eu.stable_key == "EORI"
    assert eu.authorisation_number_scheme == "EU_AEO"
    assert eu.consent_required is True
    assert eu.publication_consent_required is True
    assert ref.programme("US-CTPAT").stable_key == "US_CTPAT"
    assert ref.programme("CN-AEO").validity_years == 3
    for programme in ref.programmes.values():
        assert programme.source, programme.code
        for scheme in (programme.primary_identifier, programme.stable_key):
            assert scheme in ref.schemes


REQUIRED_ARRANGEMENTS = [
    "EU-US", "EU-JP", "EU-CN", "EU-CA", "EU-CH", "EU-NO", "EU-AD", "EU-UK",
    "US-NZ", "US-CA", "US-JO", "US-JP", "US-KR", "US-TW", "US-IL", "US-MX", "US-SG",
    "US-DO", "US-PE", "US-UK", "US-IN", "US-UY", "US-BR",
    "CN-SG", "CN-KR", "CN-HK", "CN-NZ", "CN-CH", "CN-AU", "CN-IL", "CN-JP", "CN-BY",
    "ASEAN", "PACIFIC-ALLIANCE",
]


def test_required_arrangements_exist(ref: ReferenceData) -> None:
    missing = [code for code in REQUIRED_ARRANGEMENTS if code not in ref.arrangements]
    assert missing == []
    for code in REQUIRED_ARRANGEMENTS:
        arrangement = ref.arrangement(code)
        assert arrangement.source
        assert arrangement.data_fields  # defaults applied
        assert {"legal_name", "address", "status", "identifier"} <= set(arrangement.data_fields)


def test_eu_us_directions_and_dates(ref: ReferenceData) -> None:
    eu_us = ref.arrangement("EU-US")
    assert eu_us.kind == "bilateral"
    assert set(eu_us.parties) == {"EU-AEO", "US-CTPAT"}
    assert eu_us.signed == D(2012, 5, 4)
    assert len(eu_us.directions) == 2

    cbp = eu_us.direction("US-CTPAT", "EU-AEO")
    assert cbp is not None
    assert set(cbp.categories) == {"AEOS", "AEOF"}
    assert "AEOC" not in cbp.categories
    assert cbp.active_from == D(2012, 7, 1)
    assert cbp.flows == ("import",)

    eu = eu_us.direction("EU-AEO", "US-CTPAT")
    assert eu is not None
    assert eu.active_from == D(2013, 1, 31)
    assert eu.categories == ("importer",)
    assert set(eu.tiers) == {"tier2", "tier3"}

    # the two directions started on different dates
    assert cbp.is_active_on(D(2012, 12, 31)) and not eu.is_active_on(D(2012, 12, 31))
    assert not cbp.is_active_on(D(2012, 6, 30))
    assert eu.is_active_on(D(2013, 1, 31))


@pytest.mark.parametrize("code", ["EU-JP", "EU-CA", "EU-CH", "EU-NO", "EU-UK", "EU-AD"])
def test_partners_recognise_only_eu_security_categories(ref: ReferenceData, code: str) -> None:
    arrangement = ref.arrangement(code)
    partner = next(p for p in arrangement.parties if p != "EU-AEO")
    direction = arrangement.direction(partner, "EU-AEO")
    assert direction is not None
    assert set(direction.categories) == {"AEOS", "AEOF"}


def test_eu_canada_in_force_1_august_2025(ref: ReferenceData) -> None:
    eu_ca = ref.arrangement("EU-CA")
    assert eu_ca.in_force == D(2025, 8, 1)
    assert eu_ca.status_on(D(2025, 7, 31)) is None
    assert eu_ca.status_on(D(2025, 8, 1)) == "in_force"
    for direction in eu_ca.directions:
        assert direction.active_from == D(2025, 8, 1)


def test_eu_china_scope_is_explicit(ref: ReferenceData) -> None:
    eu_cn = ref.arrangement("EU-CN")
    china = eu_cn.direction("CN-AEO", "EU-AEO")
    eu = eu_cn.direction("EU-AEO", "CN-AEO")
    assert china is not None and eu is not None
    assert set(china.categories) == {"AEOS", "AEOF"}
    assert china.unconfirmed_categories == ("AEOC",)
    assert eu.categories == ("ACE",)
    assert china.active_from == eu.active_from == D(2015, 11, 1)


def test_china_belarus_only_top_category(ref: ReferenceData) -> None:
    direction = ref.arrangement("CN-BY").direction("CN-AEO", "BY-AEO")
    assert direction is not None
    assert direction.categories == ("TYPE_3",)
    assert direction.active_from == D(2019, 7, 24)


def test_one_direction_arrangement(ref: ReferenceData) -> None:
    us_jp = ref.arrangement("US-JP")
    assert len(us_jp.directions) == 1
    assert us_jp.direction("JP-AEO", "US-CTPAT") is None


def test_asean_activation_per_member(ref: ReferenceData) -> None:
    asean = ref.arrangement("ASEAN")
    assert asean.kind == "plurilateral"
    assert asean.signed == D(2023, 9, 19)
    assert len(asean.parties) == 10
    members = {m.programme: m.active_from for m in asean.members}
    assert members == {
        "BN-AEO": D(2024, 8, 1), "MY-AEO": D(2024, 8, 1), "SG-STP": D(2024, 8, 1),
        "TH-AEO": D(2024, 8, 19), "ID-AEO": D(2024, 10, 1), "PH-AEO": D(2025, 2, 28),
        "KH-AEO": None, "LA-AEO": None, "MM-AEO": None, "VN-AEO": None,
    }
    # one direction per ordered pair, active from the later member's date
    assert len(asean.directions) == 10 * 9

    def active_from(a: str, b: str) -> dt.date | None:
        direction = asean.direction(a, b)
        assert direction is not None
        return direction.active_from

    assert active_from("SG-STP", "MY-AEO") == D(2024, 8, 1)
    assert active_from("BN-AEO", "TH-AEO") == D(2024, 8, 19)
    assert active_from("TH-AEO", "BN-AEO") == D(2024, 8, 19)
    assert active_from("ID-AEO", "SG-STP") == D(2024, 10, 1)
    assert active_from("MY-AEO", "PH-AEO") == D(2025, 2, 28)
    assert active_from("SG-STP", "VN-AEO") is None
    assert active_from("KH-AEO", "SG-STP") is None
    direction = asean.direction("SG-STP", "ID-AEO")
    assert direction is not None
    assert not direction.is_active_on(D(2024, 9, 30))
    assert direction.is_active_on(D(2024, 10, 1))


def test_asean_philippines_only_level_2(ref: ReferenceData) -> None:
    asean = ref.arrangement("ASEAN")
    towards_ph = [d for d in asean.directions if d.recognised == "PH-AEO"]
    assert len(towards_ph) == 9
    assert all(d.categories == ("LEVEL_2",) for d in towards_ph)
    towards_sg = asean.direction("PH-AEO", "SG-STP")
    assert towards_sg is not None and "LEVEL_1" not in towards_sg.categories


def test_pacific_alliance_is_plurilateral_with_four_parties(ref: ReferenceData) -> None:
    pa = ref.arrangement("PACIFIC-ALLIANCE")
    assert pa.kind == "plurilateral"
    assert set(pa.parties) == {"CL-OEA", "CO-OEA", "MX-OEA", "PE-OEA"}
    assert pa.signed == D(2018, 7, 21)
    assert len(pa.directions) == 12
    # no sourced activation date: the arrangement grants nothing yet
    assert all(d.active_from is None for d in pa.directions)


def test_every_direction_is_consistent(ref: ReferenceData) -> None:
    for arrangement in ref.arrangements.values():
        for d in arrangement.directions:
            assert {d.recognising, d.recognised} <= set(arrangement.parties)
            recognised = ref.programme(d.recognised)
            assert set(d.categories) <= set(recognised.category_codes)
            assert set(d.flows) <= {"import", "export"} and d.flows


def test_declaration_codes_crosswalk(ref: ReferenceData) -> None:
    eu_in_us = ref.programme("EU-AEO").declaration_code("US")
    assert eu_in_us is not None
    assert eu_in_us.scheme == "MID" and eu_in_us.linked_only
    assert eu_in_us.missing_warning

    ctpat_in_eu = ref.programme("US-CTPAT").declaration_code("EU")
    assert ctpat_in_eu is not None and ctpat_in_eu.scheme == "TCUIN"

    sg_in_cn = ref.programme("SG-STP").declaration_code("CN")
    assert sg_in_cn is not None
    assert sg_in_cn.render("AEOSG12345678901A") == {"code": "SG12345678901A"}

    sg_at_home = ref.programme("SG-STP").declaration_code("SG")
    assert sg_at_home is not None
    assert sg_at_home.render("AEOSG12345678901A") == {
        "cpc": "AEO", "pc1": "SG", "pc2": "12345678901A"
    }

    cn_abroad = ref.programme("CN-AEO").declaration_code("EU")
    assert cn_abroad is not None and cn_abroad.declared_in == "*"
    assert cn_abroad.render("0123456789") == {"code": "CN0123456789"}
    cn_in_sg = ref.programme("CN-AEO").declaration_code("SG")
    assert cn_in_sg is not None
    assert cn_in_sg.render("0123456789") == {"cpc": "AEO", "pc1": "CN", "pc2": "0123456789"}

    bn = ref.programme("BN-AEO").declaration_code("MY")
    assert bn is not None and bn.render("SLMSBN-123456-789") == {"code": "SLMSBN123456789"}
    my = ref.programme("MY-AEO").declaration_code("SG")
    assert my is not None and my.render("MY123456789012") == {"code": "MY123456789012"}


def test_reference_data_is_immutable(ref: ReferenceData) -> None:
    with pytest.raises(TypeError):
        ref.programmes["X"] = ref.programme("EU-AEO")  # type: ignore[index]
    with pytest.raises(AttributeError):
        ref.programme("EU-AEO").consent_required = False  # type: ignore[misc]


# ----------------------------------------------------------------------------- error cases


@pytest.fixture
def broken_dir(tmp_path: Path) -> Path:
    src = default_reference_dir()
    for name in ("programmes.yaml", "arrangements.yaml"):
        shutil.copy(src / name, tmp_path / name)
    return tmp_path


def _edit(directory: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = directory / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _find(items: list[dict[str, Any]], code: str) -> dict[str, Any]:
    return next(item for item in items if item.get("code") == code)


def _arr(code: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda data: _find(data["arrangements"], code)


def _prog(code: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda data: _find(data["programmes"], code)


def _set(getter: Callable[[dict[str, Any]], Any], key: Any, value: Any) -> Callable[..., None]:
    def change(data: dict[str, Any]) -> None:
        getter(data)[key] = value
    return change


def _append_duplicate(section: str, code: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data[section].append(dict(_find(data[section], code)))
    return change


ERROR_CASES = [
    pytest.param(
        "arrangements.yaml",
        _set(lambda d: _arr("EU-US")(d)["directions"][0], "categories", ["AEOS", "AEOX"]),
        "arrangements.yaml: EU-US: directions[0].categories: 'AEOX' is not a category of EU-AEO",
        id="unknown-category",
    ),
    pytest.param(
        "arrangements.yaml",
        _set(lambda d: _arr("EU-US")(d)["directions"][1], "tiers", ["tier9"]),
        "arrangements.yaml: EU-US: directions[1].tiers[0]: 'tier9' is not a tier of US-CTPAT",
        id="unknown-tier",
    ),
    pytest.param(
        "arrangements.yaml",
        _set(lambda d: _arr("EU-JP")(d)["directions"][0], "flows", ["import", "sideways"]),
        "arrangements.yaml: EU-JP: directions[0].flows[1]: Must be one of",
        id="bad-flow",
    ),
    pytest.param(
        "arrangements.yaml",
        _set(_arr("EU-CN"), "parties", ["EU-AEO", "CN-XYZ"]),
        "arrangements.yaml: EU-CN: parties[1]: unknown programme 'CN-XYZ'",
        id="party-not-a-programme",
    ),
    pytest.param(
        "arrangements.yaml",
        _set(lambda d: _arr("EU-UK")(d)["directions"][0], "recognising", "US-CTPAT"),
        "arrangements.yaml: EU-UK: directions[0].recognising: 'US-CTPAT' is not a party of EU-UK",
        id="direction-not-a-party",
    ),
    pytest.param(
        "arrangements.yaml",
        _set(lambda d: _arr("EU-US")(d)["directions"][0], "active_from", "2012-13-01"),
        "arrangements.yaml: EU-US: directions[0].active_from: Not a valid date",
        id="bad-date",
    ),
    pytest.param(
        "arrangements.yaml",
        _set(_arr("CN-JP"), "status_history", [
            {"status": "in_force", "date": dt.date(2019, 6, 1)},
            {"status": "signed", "date": dt.date(2018, 10, 26)},
        ]),
        "arrangements.yaml: CN-JP: status_history[1].date: 2018-10-26 is before the previous entry",
        id="unordered-history",
    ),
    pytest.param(
        "arrangements.yaml",
        _set(lambda d: _arr("CN-JP")(d)["status_history"][0], "status", "ratified"),
        "arrangements.yaml: CN-JP: status_history[0].status: Must be one of",
        id="bad-status",
    ),
    pytest.param(
        "arrangements.yaml",
        _append_duplicate("arrangements", "EU-US"),
        "arrangements.yaml: EU-US: code: duplicate code 'EU-US'",
        id="duplicate-arrangement",
    ),
    pytest.param(
        "arrangements.yaml",
        _set(lambda d: _arr("ASEAN")(d)["members"][5], "categories", ["LEVEL_3"]),
        "arrangements.yaml: ASEAN: members[5].categories: 'LEVEL_3' is not a category of PH-AEO",
        id="member-category",
    ),
    pytest.param(
        "arrangements.yaml",
        lambda d: _arr("US-MX")(d).pop("title"),
        "arrangements.yaml: US-MX: title: Missing data for required field.",
        id="missing-field",
    ),
    pytest.param(
        "arrangements.yaml",
        _set(_arr("US-MX"), "colour", "blue"),
        "arrangements.yaml: US-MX: colour: Unknown field.",
        id="unknown-field",
    ),
    pytest.param(
        "programmes.yaml",
        _set(_prog("JP-AEO"), "administration", "XX"),
        "programmes.yaml: JP-AEO: administration: unknown administration 'XX'",
        id="unknown-administration",
    ),
    pytest.param(
        "programmes.yaml",
        _append_duplicate("programmes", "KR-AEO"),
        "programmes.yaml: KR-AEO: code: duplicate code 'KR-AEO'",
        id="duplicate-programme",
    ),
    pytest.param(
        "programmes.yaml",
        _set(_prog("EU-AEO"), "stable_key", "SSN"),
        "programmes.yaml: EU-AEO: stable_key: unknown identifier scheme 'SSN'",
        id="unknown-scheme",
    ),
    pytest.param(
        "programmes.yaml",
        _set(lambda d: _prog("EU-AEO")(d)["declaration_codes"][0], "declared_in", "ZZ"),
        "programmes.yaml: EU-AEO: declaration_codes[0].declared_in: unknown administration 'ZZ'",
        id="declaration-unknown-administration",
    ),
    pytest.param(
        "programmes.yaml",
        _set(lambda d: _prog("US-CTPAT")(d)["declaration_codes"][0], "scheme", "NOPE"),
        "programmes.yaml: US-CTPAT: declaration_codes[0].scheme: unknown identifier scheme 'NOPE'",
        id="declaration-unknown-scheme",
    ),
    pytest.param(
        "programmes.yaml",
        _set(lambda d: _prog("CN-AEO")(d)["declaration_codes"][0], "template", "CN{digits}"),
        "programmes.yaml: CN-AEO: declaration_codes[0].template: unknown placeholder {digits}",
        id="declaration-bad-placeholder",
    ),
    pytest.param(
        "programmes.yaml",
        _set(lambda d: _prog("EU-AEO")(d)["categories"][2], "components", ["AEOC", "AEOX"]),
        "programmes.yaml: EU-AEO: categories[2].components[1]: 'AEOX' is not another category",
        id="bad-component",
    ),
    pytest.param(
        "programmes.yaml",
        _set(lambda d: _find(d["administrations"], "UK"), "countries", ["GB", "FR"]),
        "programmes.yaml: UK: countries[1]: 'FR' already belongs to administration EU",
        id="country-in-two-administrations",
    ),
    pytest.param(
        "programmes.yaml",
        _set(_prog("EU-AEO"), "consent_required", "yes"),
        "programmes.yaml: EU-AEO: consent_required: Not a valid boolean.",
        id="consent-not-boolean",
    ),
]


@pytest.mark.parametrize(("name", "change", "expected"), ERROR_CASES)
def test_error_names_file_entry_and_field(
    broken_dir: Path, name: str, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    _edit(broken_dir, name, change)
    with pytest.raises(ReferenceDataError) as info:
        load_reference(broken_dir)
    assert any(error.startswith(expected) for error in info.value.errors), info.value.errors
    assert expected in str(info.value)


def test_unquoted_norway_is_caught(broken_dir: Path) -> None:
    path = broken_dir / "programmes.yaml"
    text = path.read_text(encoding="utf-8").replace('administration: "NO"', "administration: NO")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ReferenceDataError) as info:
        load_reference(broken_dir)
    assert "programmes.yaml: NO-AEO: administration: Not a valid string." in info.value.errors


def test_invalid_yaml_is_reported_with_file(broken_dir: Path) -> None:
    (broken_dir / "arrangements.yaml").write_text("arrangements: [\n  - code: X\n", "utf-8")
    with pytest.raises(ReferenceDataError) as info:
        load_reference(broken_dir)
    assert info.value.errors[0].startswith("arrangements.yaml: (file): invalid YAML")


def test_missing_file_is_reported(broken_dir: Path) -> None:
    (broken_dir / "programmes.yaml").unlink()
    with pytest.raises(ReferenceDataError) as info:
        load_reference(broken_dir)
    assert info.value.errors[0].startswith("programmes.yaml: file not found")


def test_all_errors_are_collected(broken_dir: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        _find(data["arrangements"], "EU-US")["directions"][0]["categories"] = ["AEOX"]
        _find(data["arrangements"], "EU-JP")["parties"] = ["EU-AEO", "JP-NOPE"]
    _edit(broken_dir, "arrangements.yaml", change)
    with pytest.raises(ReferenceDataError) as info:
        load_reference(broken_dir)
    assert len(info.value.errors) >= 2
    assert str(info.value).startswith(f"{len(info.value.errors)} problems in the reference data")
