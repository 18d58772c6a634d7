"""Matching normalisers: legal forms in many languages, scripts, abbreviations, addresses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.identifiers import (
    name_tokens,
    normalise_city,
    normalise_name,
    normalise_postcode,
    normalise_street,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # German, Austrian, Swiss
        ("Müller & Söhne GmbH & Co. KG", "muller and sohne"),
        ("Siemens AG", "siemens"),
        ("Beispiel Ges.m.b.H.", "beispiel"),
        # French, Italian, Spanish, Portuguese, Latin America
        ("Nestlé S.A.", "nestle"),
        ("Dupont SARL", "dupont"),
        ("Exemple S.A.S.", "exemple"),
        ("Fiat S.p.A.", "fiat"),
        ("Rossi S.r.l.", "rossi"),
        ("Grupo Bimbo, S.A.B. de C.V.", "grupo bimbo"),
        ("Cemex S.A. de C.V.", "cemex"),
        ("Comercial S. de R.L. de C.V.", "comercial"),
        ("Construtora Ltda.", "construtora"),
        ("Banco do Brasil S/A", "banco do brasil"),
        # Benelux, Nordic, Central Europe, Greece, Turkey
        ("Philips B.V.", "philips"),
        ("Heineken N.V.", "heineken"),
        ("Volvo AB (publ)", "volvo"),
        ("Nokia Oyj", "nokia"),
        ("Ørsted A/S", "orsted"),
        ("Maersk A / S", "maersk"),
        ("Lego ApS", "lego"),
        ("Firma XYZ Sp. z o.o.", "firma xyz"),
        ("Škoda Auto a.s.", "skoda auto"),
        ("Stavby s.r.o.", "stavby"),
        ("Richter Gedeon Nyrt.", "richter gedeon"),
        ("Ελληνικά Πετρέλαια Α.Ε.", "ellinika petrelaia"),  # noqa: RUF001
        ("Koç Holding A.Ş.", "koc holdings"),
        # English-speaking and Asia
        ("Samsung Electronics Co., Ltd.", "samsung electronics"),
        ("Bar Co.Ltd.", "bar"),
        ("Toyota Motor Corporation", "toyota motor"),
        ("Tata Consultancy Services Private Limited", "tata consultancy services"),
        ("Acme Sdn. Bhd.", "acme"),
        ("Foo Pte. Ltd.", "foo"),
        ("PT Astra International Tbk", "astra international"),
        ("Kabushiki Kaisha Toshiba", "toshiba"),
        ("Toshiba K.K.", "toshiba"),
        ("Shell plc", "shell"),
        ("Smith & Co.", "smith"),
        ("Acme LLC", "acme"),
        ("Acme L.L.C.", "acme"),
        ("Acme Incorporated", "acme"),
        ("The Boeing Company", "boeing"),
        ("Emirates Trading FZE", "emirates trading"),
    ],
)
def test_legal_forms_are_stripped(name: str, expected: str) -> None:
    assert normalise_name(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("深圳市腾讯计算机系统有限公司", "shenzhenshitengxunjisuanjixitong"),  # Chinese
        ("上海汽车集团股份有限公司", "shanghaiqichejituan"),
        ("株式会社東芝", "dongzhi"),  # Japanese, legal form before the name
        ("トヨタ自動車株式会社", "toyotazidongche"),  # Japanese, legal form after the name
        ("삼성전자 주식회사", "samseongjeonja"),  # Korean
        ("(주)한진", "hanjin"),
        ("㈜한진", "hanjin"),
        ("ООО «Ромашка»", "romashka"),  # noqa: RUF001 (Russian)
        ("ТОВ «Світанок»", "svitanok"),  # noqa: RUF001 (Ukrainian)
        ("ПАО Газпром", "gazprom"),
        ("Ελληνικά Πετρέλαια", "ellinika petrelaia"),  # Greek
    ],
)
def test_non_latin_names_are_transliterated_and_stripped(name: str, expected: str) -> None:
    assert normalise_name(name) == expected


def test_native_legal_form_alone_is_kept_rather_than_emptied() -> None:
    assert normalise_name("株式会社") == "zhushihuishe"
    assert normalise_name("Ltd") == "ltd"
    assert normalise_name("") == ""


def test_latin_initials_are_not_mistaken_for_cyrillic_ao() -> None:
    assert normalise_name("A.O. Smith Corporation") == "ao smith"


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Société Générale S.A.", "SOCIETE GENERALE"),
        ("Johnson & Johnson", "Johnson and Johnson Inc."),
        ("ACME Intl Mfg Co", "Acme International Manufacturing Company"),
        ("XYZ Tech Svcs", "XYZ Technology Services Ltd"),
        ("Foo Inds.", "Foo Industries Corp."),
        ("Müller und Söhne", "Mueller & Söhne".replace("ue", "u")),
        ("  Widget    Makers  ", "widget makers"),
    ],
)
def test_spelling_variants_normalise_alike(left: str, right: str) -> None:
    assert normalise_name(left) == normalise_name(right)


def test_abbreviations_are_canonicalised() -> None:
    assert name_tokens("ACME Intl Mfg & Tech Svc Grp") == [
        "acme", "international", "manufacturing", "and", "technology", "services", "group",
    ]


def test_ampersand_initials_stay_one_word() -> None:
    assert normalise_name("AT&T Inc.") == "att"
    assert normalise_name("H&M Hennes & Mauritz AB") == "hm hennes and mauritz"


def test_single_letters_are_joined() -> None:
    assert name_tokens("Shavings B L Inc.") == ["shavings", "bl"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_normalise_name_is_deterministic_idempotent_ascii(name: str) -> None:
    once = normalise_name(name)
    assert once == normalise_name(name)
    assert once.isascii()
    assert once == once.casefold()
    assert "  " not in once and once == once.strip()
    assert normalise_name(once) == once


_NAME_PIECES = st.sampled_from(
    ["acme", " ", "&", ".", "/", "-", "a", "s", "co", " co ", " ltd ", " sa ", " de ", " cv ",
     " the ", " intl ", " et ", " und ", " cie ", "gmbh", " kg ", "株式会社", "(주)",
     "ООО "]  # noqa: RUF001 (Cyrillic on purpose)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_NAME_PIECES, max_size=12).map("".join))
def test_normalise_name_is_idempotent_on_legal_form_soup(name: str) -> None:
    once = normalise_name(name)
    assert normalise_name(once) == once


# --- streets, cities, postcodes ---------------------------------------------------------

@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("Hauptstraße 5", "Hauptstr. 5", "hauptstr 5"),
        ("Berliner Straße 12 - 14", "Berliner Str 12-14", "berliner str 12-14"),
        ("236 Wendell Ford Blvd., Suite 1304", "236 Wendell Ford Boulevard Ste 1304",
         "236 wendell ford blvd ste 1304"),
        ("10 Downing Street", "10 Downing St.", "10 downing st"),
        ("92 Alice Springs Road", "92 Alice Springs Rd", "92 alice springs rd"),
        ("5th Avenue 1", "5th Ave. 1", "5th ave 1"),
        ("No. 5 Huaihai Road", "5 Huaihai Rd", "5 huaihai rd"),
        ("P.O. Box 12", "Post Office Box 12", "po box 12"),
        ("Kalverstraat 1", "Kalverstr. 1", "kalverstr 1"),
        ("Avenida Paulista, 1578", "Av. Paulista 1578", "ave paulista 1578"),
        ("1 North Main Street", "1 N Main St", "1 n main st"),
    ],
)
def test_street_variants_normalise_alike(left: str, right: str, expected: str) -> None:
    assert normalise_street(left) == expected
    assert normalise_street(right) == expected


def test_street_keeps_house_numbers() -> None:
    assert normalise_street("Unit 5/12 George St.") == "unit 5/12 george st"
    assert normalise_street("11455 Main Street Suite 9999") == "11455 main st ste 9999"


@pytest.mark.parametrize(
    ("city", "expected"),
    [("St. Louis", "saint louis"), ("Saint-Louis", "saint louis"),
     ("Sankt Gallen", "saint gallen"), ("São Paulo", "sao paulo"), ("L'Aquila", "laquila"),
     ("  NEW   york ", "new york"), ("Москва", "moskva")],
)
def test_normalise_city(city: str, expected: str) -> None:
    assert normalise_city(city) == expected


@pytest.mark.parametrize(
    ("postcode", "expected"),
    [("sw1a 2aa", "SW1A2AA"), ("41018-1234", "410181234"), ("〒100-0001", "1000001"),
     ("K1A 0B1", "K1A0B1"), ("D-10115", "D10115")],
)
def test_normalise_postcode(postcode: str, expected: str) -> None:
    assert normalise_postcode(postcode) == expected
