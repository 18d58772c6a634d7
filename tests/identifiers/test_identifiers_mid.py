"""The MID builder: every worked example of 19 CFR 102 appendix as quoted in docs/domain.md."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.identifiers import IdentifierError, build_mid, explain_mid, normalise_name, validate_mid
from hub.identifiers.countries import CANADIAN_PROVINCES
from hub.identifiers.mid import name_words, province_code, street_numbers


def test_dhl_express_full_example() -> None:
    mid = build_mid("DHL Express", "236 Wendell Ford Blvd Ste 1304", "Erlanger", "US")
    assert mid == "USDHLEXP1304ERL"


def test_ozrock_full_example() -> None:
    assert build_mid("Ozrock", "92 Alice Springs Road", "Melbourne", "AU") == "AUOZR92MEL"


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("A.B.C. Company", "ABCCOM"),
        ("Dr. S.A. Smith", "DRSA"),
        ("Rawles-Aden Corp.", "RAWCOR"),
        ("20th Century Fox", "20TCEN"),
        ("The Garment and Textiles Company", "GARTEX"),
        ("Shavings B L Inc.", "SHABL"),
        ("O.A.S.I.S. Corp.", "OASCOR"),
        ("L.S. Ayres Company", "LSAYR"),
        ("Concept 2000", "CON200"),
        ("Ozrock", "OZR"),
        ("DHL Express, Inc.", "DHLEXP"),
        ("A Plus Supply", "PLUSUP"),  # bare "A" is the article
        ("A. Plus Supply", "APLU"),  # "A." is an initial
        ("Bank of the West", "BANWES"),
        ("AT&T Corp", "ATTCOR"),
        ("Johnson & Johnson", "JOHJOH"),
    ],
)
def test_name_part_examples(name: str, part: str) -> None:
    assert build_mid(name, "", "Chicago", "US") == f"US{part}CHI"


def test_legal_forms_are_kept_unlike_the_matching_normaliser() -> None:
    assert name_words("Rawles-Aden Corp.") == ["RAWLESADEN", "CORP"]
    assert normalise_name("Rawles-Aden Corp.") == "rawles aden"


@pytest.mark.parametrize(
    ("street", "part"),
    [
        ("11455 Main Street Suite 9999", "1145"),
        ("12,34,56 Akasaka Road", "1234"),
        ("49 250th St", "49"),
        ("236 Wendell Ford Blvd Ste 1304", "1304"),
        ("92 Alice Springs Road", "92"),
        ("Main Street", ""),
        ("", ""),
        ("1st Avenue", ""),
        ("PO Box 5678, 1st Ave", "5678"),
        ("2nd Street 3rd Floor 4th Block 21st Rd 22nd Ave 23rd St 7", "7"),
        ("236 Wendell Ford Blvd, Erlanger KY 41018-1234", "236"),
        ("236 Main St KY 41018", "236"),
        ("Hauptstr. 5, D-10115 Berlin", "5"),
        ("10 Downing St, London SW1A 2AA", "10"),
        ("5 King St W, Toronto ON M5H 1A1", "5"),
        ("Av. Paulista 1578, CEP 01310-200", "1578"),
        ("〒100-0001 千代田区 1-1", "11"),
        ("Unit 0012 Harbour Rd", "12"),
        ("Block A91 2nd floor 7", "91"),
        ("１２３ Ginza", "123"),  # noqa: RUF001
    ],
)
def test_street_part_examples(street: str, part: str) -> None:
    assert build_mid("Ozrock", street, "Melbourne", "AU") == f"AUOZR{part}MEL"


def test_street_numbers_reports_ignored_ordinals_and_postcodes() -> None:
    counted, ignored = street_numbers("49 250th St, Erlanger KY 41018")
    assert counted == ["49"]
    assert ignored == ["41018", "250TH"]


@pytest.mark.parametrize(
    ("city", "part"),
    [("St Louis", "STL"), ("St. Louis", "STL"), ("Erlanger", "ERL"), ("Ii", "II"),
     ("São Paulo", "SAO"), ("Zürich", "ZUR"), ("Москва", "MOS"), ("東京", "DON")],
)
def test_city_part_is_first_three_letters(city: str, part: str) -> None:
    assert build_mid("Ozrock", "92 Alice Springs Road", city, "AU") == f"AUOZR92{part}"


def test_non_latin_names_are_transliterated() -> None:
    assert build_mid("Ромашка Трейдинг", "ул. Ленина 15", "Москва", "RU") == "RUROMTRE15MOS"
    greek_street = "Χειμάρρας 8Α"  # noqa: RUF001 (Greek capital alpha after the number)
    assert build_mid("Ελληνικά Πετρέλαια", greek_street, "Μαρούσι", "GR") == "GRELLPET8MAR"
    assert build_mid("Société Générale", "29 Bd Haussmann", "Paris", "fr") == "FRSOCGEN29PAR"


# --- Canada ------------------------------------------------------------------------------

def test_canada_without_province_is_refused() -> None:
    with pytest.raises(IdentifierError) as caught:
        build_mid("Acme", "12 Bay St", "Toronto", "CA")
    assert (caught.value.scheme, caught.value.rule) == ("MID", "province_required")
    assert "province" in str(caught.value)
    with pytest.raises(IdentifierError, match="province_required"):
        build_mid("Acme", "12 Bay St", "Toronto", "CA", province="  ")


@pytest.mark.parametrize(
    ("province", "code"),
    [("AB", "XA"), ("NB", "XB"), ("BC", "XC"), ("MB", "XM"), ("NS", "XN"), ("ON", "XO"),
     ("PE", "XP"), ("QC", "XQ"), ("SK", "XS"), ("NT", "XT"), ("NU", "XV"), ("NL", "XW"),
     ("YT", "XY")],
)
def test_every_canadian_province_code(province: str, code: str) -> None:
    assert build_mid("Acme", "12 Bay St", "Toronto", "CA", province) == f"{code}ACM12TOR"
    assert build_mid("Acme", "12 Bay St", "Toronto", "ca", province.lower()).startswith(code)


def test_province_table_is_complete() -> None:
    assert len(CANADIAN_PROVINCES) == 13


@pytest.mark.parametrize(
    ("province", "code"),
    [("Ontario", "XO"), ("Québec", "XQ"), ("Colombie-Britannique", "XC"),
     ("Newfoundland", "XW"), ("XO", "XO"), ("prince edward island", "XP")],
)
def test_province_names_and_codes_are_accepted(province: str, code: str) -> None:
    assert province_code(province) == code


def test_unknown_province_is_refused() -> None:
    with pytest.raises(IdentifierError) as caught:
        build_mid("Acme", "12 Bay St", "Toronto", "CA", "ZZ")
    assert caught.value.rule == "province"


def test_country_given_as_province_code_and_province_ignored_elsewhere() -> None:
    assert build_mid("Acme", "12 Bay St", "Toronto", "XO") == "XOACM12TOR"
    assert build_mid("Acme", "12 Bay St", "Boston", "US", province="ON") == "USACM12BOS"


# --- other refusals ------------------------------------------------------------------------

@pytest.mark.parametrize("country", ["ZZ", "USA", "", "XI"])
def test_unknown_country_is_refused(country: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        build_mid("Acme", "1 Main St", "Boston", country)
    assert caught.value.rule == "country"


@pytest.mark.parametrize("name", ["", "The", "A and the", "& - ."])
def test_name_without_words_is_refused(name: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        build_mid(name, "1 Main St", "Boston", "US")
    assert caught.value.rule == "name"


@pytest.mark.parametrize("city", ["", "123", " - "])
def test_city_without_letters_is_refused(city: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        build_mid("Acme", "1 Main St", city, "US")
    assert caught.value.rule == "city"


# --- explanation -------------------------------------------------------------------------

def test_explain_mid_gives_each_part_and_why() -> None:
    parts = explain_mid("DHL Express", "236 Wendell Ford Blvd Ste 1304", "Erlanger", "US")
    data = parts.as_dict()
    assert data["mid"] == "USDHLEXP1304ERL"
    assert [data["parts"][key]["value"] for key in ("country", "name", "street", "city")] == [
        "US", "DHLEXP", "1304", "ERL",
    ]
    assert "largest number 1304" in data["parts"]["street"]["explanation"]
    assert "DHL EXPRESS" in data["parts"]["name"]["explanation"]
    canadian = explain_mid("Acme", "1 Bay St", "Toronto", "CA", "ON")
    assert "Ontario" in canadian.country.explanation


# --- validate_mid --------------------------------------------------------------------------

def test_validate_mid_upper_cases_and_strips() -> None:
    assert validate_mid("  usdhlexp1304erl ") == "USDHLEXP1304ERL"


@pytest.mark.parametrize(
    ("value", "rule"),
    [("US DHL", "pattern"), ("US-DHL", "pattern"), ("US", "length"),
     ("USDHLEXP1304ERLX", "length"), ("CAACM12TOR", "country"), ("QQACM", "country"),
     ("", "empty")],
)
def test_validate_mid_rejections(value: str, rule: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        validate_mid(value)
    assert (caught.value.scheme, caught.value.rule) == ("MID", rule)


# --- properties ----------------------------------------------------------------------------

_countries = st.sampled_from(["US", "AU", "DE", "CN", "JP", "CA", "XO", "gb"])
_provinces = st.one_of(st.none(), st.sampled_from(sorted(CANADIAN_PROVINCES)))
_text = st.text(max_size=60)
_latinish = st.text(
    alphabet=st.sampled_from("ABCabc xyz.-&'019,/#Éé株ü Σ"), min_size=0, max_size=40
)


@settings(max_examples=300, deadline=None)
@given(
    name=st.one_of(_text, _latinish),
    street=st.one_of(_text, _latinish),
    city=st.one_of(_text, _latinish),
    country=_countries,
    province=_provinces,
)
def test_mid_is_short_upper_alnum_and_deterministic(
    name: str, street: str, city: str, country: str, province: str | None
) -> None:
    try:
        mid = build_mid(name, street, city, country, province)
    except IdentifierError as exc:
        assert exc.rule in {"name", "city", "province_required"}
        return
    assert len(mid) <= 15
    assert re.fullmatch(r"[A-Z0-9]+", mid)
    assert " " not in mid
    assert mid == build_mid(name, street, city, country, province)
    assert validate_mid(mid) == mid


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.from_regex(r"[A-Za-z]{4,12}", fullmatch=True), min_size=2, max_size=5),
    number=st.integers(min_value=1, max_value=10**9),
    city=st.from_regex(r"[A-Za-z]{3,12}", fullmatch=True),
)
def test_mid_parts_follow_the_rules(words: list[str], number: int, city: str) -> None:
    skip = {"a", "an", "and", "of", "the"}
    kept = [word for word in words if word.lower() not in skip]
    if not kept:
        return
    mid = build_mid(" ".join(words), f"{number} Main Street", city, "DE")
    expected = "DE" + "".join(word[:3].upper() for word in kept[:2])
    expected += str(number)[:4] + city[:3].upper()
    assert mid == expected
