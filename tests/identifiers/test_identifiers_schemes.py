"""Scheme validators: valid and invalid samples from docs/domain.md, rules named in errors."""

from __future__ import annotations

import pytest

from hub.identifiers import (
    SCHEMES,
    EuAeoNumber,
    IdentifierError,
    IdentifierWarning,
    cn_aeo_code,
    cn_partner_code,
    get_scheme,
    is_known_scheme,
    normalise,
    parse_eu_aeo,
    validate,
)
from hub.identifiers.countries import EU_MEMBER_STATES

VALID: list[tuple[str, str, str]] = [
    # (scheme, input, normalised)
    ("EORI", "IE2025292W", "IE2025292W"),
    ("EORI", "FR53740792600014", "FR53740792600014"),
    ("EORI", " fr 5374 0792 6000 14 ", "FR53740792600014"),
    ("EORI", "GB123456789000", "GB123456789000"),
    ("EORI", "GB123456789000123", "GB123456789000123"),
    ("EORI", "XI123456789000", "XI123456789000"),
    ("EORI", "DE1", "DE1"),
    ("EORI", "NL-12.34/5", "NL-12.34/5"),
    ("EORI", "ＤＥ１２３４５", "DE12345"),  # noqa: RUF001 (full-width input from copy-paste)
    ("TCUIN", "US123456789000", "US123456789000"),
    ("TCUIN", "ch 123", "CH123"),
    ("EU_AEO", "DE AEOF 00025/08", "DEAEOF00025/08"),
    ("EU_AEO", "DEAEOF1234/16", "DEAEOF1234/16"),
    ("EU_AEO", "nl aeoc 000123", "NLAEOC000123"),
    ("EU_AEO", "XIAEOS1", "XIAEOS1"),
    ("MID", "USDHLEXP1304ERL", "USDHLEXP1304ERL"),
    ("MID", "auozr92mel", "AUOZR92MEL"),
    ("MID", "XOACM12TOR", "XOACM12TOR"),
    ("CN_USCC", "91110000600037341L", "91110000600037341L"),
    ("CN_USCC", "9111 0000 6000 3734 1L", "91110000600037341L"),
    ("CN_CUSTOMS", "1234567890", "1234567890"),
    ("CN_CUSTOMS", "CN1234567890", "1234567890"),
    ("CN_CUSTOMS", "aeocn 1234567890", "1234567890"),
    ("JP_CN", "5835678256246", "5835678256246"),
    ("KR_BRN", "1168200276", "1168200276"),
    ("KR_BRN", "134-86-72683", "1348672683"),
    ("SG_UEN", "00192200M", "00192200M"),
    ("SG_UEN", "197401143C", "197401143C"),
    ("SG_UEN", "F00056789H", "F00056789H"),
    ("SG_UEN", "T09LL0001B", "T09LL0001B"),
    ("SG_UEN", "S16FC0121D", "S16FC0121D"),
    ("SG_AEO", "AEOSG123456789012", "AEOSG123456789012"),
    ("SG_AEO", "aeosg 1234 5678 90ab", "AEOSG1234567890AB"),
    ("MY_AEO", "MY123456789012", "MY123456789012"),
    ("BN_AEO", "SLMSBN-123456-789", "SLMSBN123456789"),
    ("BN_AEO", "SLMSBN123456789", "SLMSBN123456789"),
    ("LEI", "5493001KJTIIGC8Y1R12", "5493001KJTIIGC8Y1R12"),
    ("US_EIN", "04-2103594", "042103594"),
    ("US_CTPAT", "abc-123 456", "ABC123456"),
    ("CA_BN", "123456782", "123456782"),
    ("IN_IEC", "0123456789", "0123456789"),
    ("IN_IEC", "ACUPA7085R", "ACUPA7085R"),
    ("EU_VAT", "DE 136 695 976", "DE136695976"),
    ("CH_UID", "CHE-100.155.212", "CHE100155212"),
    ("MX_RFC", "MAB-930714-8T4", "MAB9307148T4"),
    ("BR_CNPJ", "16.727.230/0001-97", "16727230000197"),
]

INVALID: list[tuple[str, str, str]] = [
    # (scheme, input, rule)
    ("EORI", "1E2025292W", "pattern"),
    ("EORI", "IE", "length"),
    ("EORI", "IE1234567890123456", "length"),
    ("EORI", "IE12é4", "pattern"),
    ("EORI", "ZZ12345", "country"),
    ("EORI", "   ", "empty"),
    ("TCUIN", "U1234", "pattern"),
    ("EU_AEO", "DE AEOX 00025/08", "category"),
    ("EU_AEO", "US AEOF 12345", "country"),
    ("EU_AEO", "GB AEOF 12345", "country"),
    ("EU_AEO", "DEAEOF", "length"),
    ("EU_AEO", "DE 00025/08", "pattern"),
    ("EU_AEO", "DEAEOF///", "pattern"),
    ("MID", "US DHLEXP1304ERL", "pattern"),
    ("MID", "USDHLEXP1304ERLX", "length"),
    ("MID", "CAACM12TOR", "country"),
    ("MID", "ZZACM12TOR", "country"),
    ("MID", "US-DHL", "pattern"),
    ("CN_USCC", "91110000600037341M", "check_digit"),
    ("CN_USCC", "9111000060003734", "length"),
    ("CN_CUSTOMS", "123456789", "length"),
    ("CN_CUSTOMS", "CN123456789X", "pattern"),
    ("CN_CUSTOMS", "US1234567890", "pattern"),
    ("JP_CN", "2835678256246", "check_digit"),
    ("JP_CN", "583567825624", "length"),
    ("KR_BRN", "0168200276", "component"),
    ("SG_UEN", "00192200A", "check_digit"),
    ("SG_UEN", "123456", "length"),
    ("SG_AEO", "AEOSG12345", "length"),
    ("SG_AEO", "SG123456789012", "pattern"),
    ("MY_AEO", "MY12345678901", "length"),
    ("MY_AEO", "MY12345678901A", "pattern"),
    ("BN_AEO", "SLMSBN-12345-789", "length"),
    ("BN_AEO", "BN-123456-789", "pattern"),
    ("LEI", "5493001KJTIIGC8Y1R13", "check_digit"),
    ("US_EIN", "07-1234567", "component"),
    ("US_CTPAT", "ABC_123", "pattern"),
    ("US_CTPAT", "A" * 21, "length"),
    ("CA_BN", "123456783", "check_digit"),
    ("IN_IEC", "01234", "length"),
    ("IN_IEC", "AB12CD34EF", "pattern"),
    ("EU_VAT", "DE136695977", "check_digit"),
]


@pytest.mark.parametrize(("scheme", "value", "expected"), VALID)
def test_valid_samples_normalise(scheme: str, value: str, expected: str) -> None:
    assert normalise(scheme, value) == expected
    assert validate(scheme, value).value == expected
    assert SCHEMES[scheme].is_valid(value)


@pytest.mark.parametrize(("scheme", "value", "rule"), INVALID)
def test_invalid_samples_raise_naming_scheme_and_rule(scheme: str, value: str, rule: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        normalise(scheme, value)
    error = caught.value
    assert (error.scheme, error.rule, error.value) == (scheme, rule, value)
    assert scheme in str(error)
    assert f"'{rule}'" in str(error)
    assert not SCHEMES[scheme].is_valid(value)


def test_identifier_error_is_a_value_error_with_detail() -> None:
    with pytest.raises(ValueError, match=r"JP_CN.*check_digit.*check digit does not match"):
        validate("JP_CN", "2835678256246")


def test_stdnum_errors_are_chained() -> None:
    with pytest.raises(IdentifierError) as caught:
        validate("CN_USCC", "91110000600037341M")
    assert type(caught.value.__cause__).__module__ == "stdnum.exceptions"


def test_non_string_is_rejected_with_rule_type() -> None:
    with pytest.raises(IdentifierError) as caught:
        validate("EORI", 12345)
    assert caught.value.rule == "type"


def test_every_scheme_has_description_and_valid_example() -> None:
    assert len(SCHEMES) >= 17
    for code, scheme in SCHEMES.items():
        assert scheme.code == code
        assert scheme.description and "\n" not in scheme.description
        assert scheme.normalise(scheme.example) == scheme.example, code


def test_required_scheme_codes_are_registered() -> None:
    required = {
        "EORI", "EU_AEO", "MID", "CN_USCC", "CN_CUSTOMS", "JP_CN", "KR_BRN", "SG_UEN",
        "SG_AEO", "MY_AEO", "BN_AEO", "LEI", "US_EIN", "US_CTPAT", "TCUIN",
    }
    assert required <= set(SCHEMES)
    assert list(SCHEMES)[:3] == ["EORI", "TCUIN", "EU_AEO"]  # stable order


def test_scheme_lookup_is_case_insensitive_and_unknown_schemes_fail() -> None:
    assert is_known_scheme("eori")
    assert is_known_scheme(" EU_AEO ")
    assert not is_known_scheme("NOPE")
    assert get_scheme("lei").code == "LEI"
    with pytest.raises(IdentifierError) as caught:
        normalise("NOPE", "X")
    assert caught.value.rule == "unknown_scheme"
    assert "EORI" in str(caught.value)


# --- warnings ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["GB12345", "GB1234567890123", "XIABC123456789"])
def test_gb_and_xi_eori_outside_hmrc_format_is_a_warning(value: str) -> None:
    result = validate("EORI", value)
    assert result.value == value
    assert [w.rule for w in result.warnings] == ["country_format"]
    assert result.warnings[0].scheme == "EORI"
    assert "12 or 15 digits" in result.warnings[0].message


@pytest.mark.parametrize("value", ["GB123456789000", "IE2025292W", "DE12345"])
def test_eori_within_known_rules_has_no_warning(value: str) -> None:
    assert validate("EORI", value).warnings == ()


def test_sg_uen_other_entity_check_letter_mismatch_is_a_warning() -> None:
    result = validate("SG_UEN", "T09LL0001B")
    assert [w.rule for w in result.warnings] == ["check_digit"]
    assert validate("SG_UEN", "S16FC0121D").warnings == ()


def test_sg_uen_other_entity_unknown_type_is_rejected() -> None:
    with pytest.raises(IdentifierError) as caught:
        validate("SG_UEN", "T09ZZ0001B")
    assert caught.value.rule == "component"


@pytest.mark.parametrize("value", ["1168200276", "1348672683"])
def test_kr_brn_with_matching_check_digit_has_no_warning(value: str) -> None:
    assert validate("KR_BRN", value).warnings == ()


def test_kr_brn_check_digit_mismatch_is_a_warning() -> None:
    result = validate("KR_BRN", "1168200275")
    assert result.value == "1168200275"
    assert [w.rule for w in result.warnings] == ["check_digit"]


def test_in_iec_pan_shaped_but_not_a_pan_is_a_warning() -> None:
    result = validate("IN_IEC", "ACUXA7085R")  # 4th letter X is no PAN holder type
    assert result.value == "ACUXA7085R"
    assert [w.rule for w in result.warnings] == ["component"]


def test_long_eu_aeo_number_is_accepted_with_warning() -> None:
    value = "DEAEOF" + "1" * 30
    result = validate("EU_AEO", value)
    assert result.value == value
    assert [w.rule for w in result.warnings] == ["length"]
    assert validate("EU_AEO", "DEAEOF00025/08").warnings == ()


def test_warning_renders_scheme_and_rule() -> None:
    warning = IdentifierWarning("EORI", "country_format", "GB numbers are 12 or 15 digits")
    assert str(warning) == "EORI [country_format]: GB numbers are 12 or 15 digits"


# --- EU AEO parsing ----------------------------------------------------------------------

def test_parse_eu_aeo_splits_country_category_reference() -> None:
    number = parse_eu_aeo("DE AEOF 00025/08")
    assert number == EuAeoNumber(country="DE", category="AEOF", reference="00025/08")
    assert number.number == "DEAEOF00025/08"
    assert number.presentation == "DE AEOF 00025/08"
    assert str(number) == "DEAEOF00025/08"
    assert number.covers_security


@pytest.mark.parametrize(("value", "security"), [("FRAEOC1", False), ("FRAEOS1", True)])
def test_eu_aeo_category_security(value: str, security: bool) -> None:
    assert parse_eu_aeo(value).covers_security is security


def test_parse_eu_aeo_spaces_are_presentation_only() -> None:
    assert parse_eu_aeo("DEAEOF1234/16") == parse_eu_aeo("DE AEOF 1234/16")


def test_parse_eu_aeo_rejects_non_member_state() -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_eu_aeo("CHAEOF123")
    assert (caught.value.scheme, caught.value.rule) == ("EU_AEO", "country")


def test_parse_eu_aeo_accepts_every_member_state_and_xi() -> None:
    assert len(EU_MEMBER_STATES) == 27
    for country in [*EU_MEMBER_STATES, "XI"]:
        assert parse_eu_aeo(f"{country}AEOS42").country == country


# --- China customs codes -----------------------------------------------------------------

@pytest.mark.parametrize("value", ["1234567890", "CN1234567890", "AEOCN1234567890"])
def test_cn_declared_forms(value: str) -> None:
    assert cn_partner_code(value) == "CN1234567890"
    assert cn_aeo_code(value) == "AEOCN1234567890"


def test_cn_partner_code_rejects_bad_code() -> None:
    with pytest.raises(IdentifierError) as caught:
        cn_partner_code("CN12345")
    assert (caught.value.scheme, caught.value.rule) == ("CN_CUSTOMS", "length")
