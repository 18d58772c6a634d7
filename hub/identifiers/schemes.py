"""Identifier schemes: validation and normalisation of the numbers partners exchange.

Each scheme has a stable code (``EORI``, ``EU_AEO``, ``MID``, ``CN_USCC``, ...), a one-line
description and a check that returns the normalised value with any warnings, or raises
:class:`~hub.identifiers.errors.IdentifierError` naming the scheme and the rule broken.

Where python-stdnum covers a scheme its validator is used, so check digits are never
written by hand here. Normalisation removes presentation characters only (spaces, and for
some schemes hyphens or dots), applies Unicode NFKC (full-width digits become ASCII) and
upper-cases; it never changes the significant characters.

Choices worth knowing:

* ``EORI`` and ``TCUIN`` share the generic pattern ``[A-Z]{2}[\\x21-\\x7E]{1,15}`` with an
  ISO 3166 country (or ``XI``). HMRC's rule that GB (and XI) numbers are 12 or 15 digits
  after the prefix is checked as a warning only.
* ``CN_CUSTOMS`` accepts the bare 10-digit customs enterprise code, the ``CN`` + 10 digits
  form a partner declares and the ``AEOCN`` + 10 digits form China hands to partners, and
  normalises all three to the 10 digits: one stored form means one match key.
  :func:`cn_partner_code` and :func:`cn_aeo_code` give the two declared forms back.
* ``SG_UEN``: business (ROB) and local-company (ROC) numbers must pass stdnum's check
  letter. For the "other entities" form (``R``/``S``/``T`` + year + type + serial) the
  check-letter algorithm is not published by ACRA and ACRA's own example ``T09LL0001B``
  fails stdnum's reconstruction, so a mismatch is a warning. ``F`` + 8 digits + letter
  (foreign companies, e.g. ``F00056789H``) has no known check letter and is checked for
  shape only.
* ``US_CTPAT``: CBP does not publish a format for C-TPAT account numbers; we accept 1 to 20
  letters and digits, dropping spaces and hyphens as presentation.
* ``KR_BRN``: python-stdnum 2.2 checks length and components only. The National Tax
  Service check digit (weights 1,3,7,1,3,7,1,3,5 plus half the ninth digit times five) is
  computed here, but a mismatch is a warning: the algorithm is widely published, not by NTS.
* ``IN_IEC``: the DGFT Importer-Exporter Code is 10 characters: a legacy 10-digit code or,
  since 2020, the holder's PAN. A PAN-shaped code failing stdnum's PAN check is a warning.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType

from stdnum import ean as stdnum_ean
from stdnum import lei as stdnum_lei
from stdnum.au import abn as stdnum_au_abn
from stdnum.br import cnpj as stdnum_br_cnpj
from stdnum.by import unp as stdnum_by_unp
from stdnum.ca import bn as stdnum_ca_bn
from stdnum.ch import uid as stdnum_ch_uid
from stdnum.cl import rut as stdnum_cl_rut
from stdnum.cn import uscc as stdnum_cn_uscc
from stdnum.co import nit as stdnum_co_nit
from stdnum.do import rnc as stdnum_do_rnc
from stdnum.eu import vat as stdnum_eu_vat
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)
from stdnum.id import npwp as stdnum_id_npwp
from stdnum.il import hp as stdnum_il_hp
from stdnum.in_ import pan as stdnum_in_pan
from stdnum.jp import cn as stdnum_jp_cn
from stdnum.kr import brn as stdnum_kr_brn
from stdnum.mx import rfc as stdnum_mx_rfc
from stdnum.no import orgnr as stdnum_no_orgnr
from stdnum.pe import ruc as stdnum_pe_ruc
from stdnum.sg import uen as stdnum_sg_uen
from stdnum.th import tin as stdnum_th_tin
from stdnum.tw import ubn as stdnum_tw_ubn
from stdnum.us import ein as stdnum_us_ein
from stdnum.uy import rut as stdnum_uy_rut
from stdnum.vn import mst as stdnum_vn_mst

from hub.identifiers.countries import EORI_COUNTRIES, EU_AEO_COUNTRIES
from hub.identifiers.errors import IdentifierError, IdentifierWarning
from hub.identifiers.eu_aeo import MAX_PRESENTED_LENGTH, eu_aeo_warnings, parse_eu_aeo
from hub.identifiers.mid import validate_mid


@dataclass(frozen=True)
class Validated:
    """A valid identifier: its normalised value and any warnings."""

    value: str
    warnings: tuple[IdentifierWarning, ...] = ()


#: A scheme check: given the scheme code and a non-empty string, return the result or raise.
Check = Callable[[str, str], Validated]


@dataclass(frozen=True)
class Scheme:
    """One identifier scheme: a stable code, a one-line description and its check."""

    code: str
    description: str
    example: str
    check: Check = field(repr=False, compare=False)

    def validate(self, value: object) -> Validated:
        """Validate ``value``: return the normalised value and warnings, or raise."""
        if not isinstance(value, str):
            raise IdentifierError(self.code, "type", value, "expected a string")
        if not value.strip():
            raise IdentifierError(self.code, "empty", value, "the value is empty")
        return self.check(self.code, value)

    def normalise(self, value: object) -> str:
        """Return the normalised form of ``value``, raising if it is invalid."""
        return self.validate(value).value

    def is_valid(self, value: object) -> bool:
        """True when ``value`` validates (warnings allowed)."""
        try:
            self.validate(value)
        except IdentifierError:
            return False
        return True


# --- helpers -----------------------------------------------------------------------------

def _compact(value: str, drop: str = "") -> str:
    """NFKC, remove whitespace and the ``drop`` characters, upper-case."""
    # NFKC leaves ASCII text as it is
    text = "".join((value if value.isascii() else unicodedata.normalize("NFKC", value)).split())
    if drop:
        text = text.translate({ord(ch): None for ch in drop})
    return text.upper()


_STDNUM_RULES: tuple[tuple[type[ValidationError], str, str], ...] = (
    (InvalidLength, "length", "wrong length"),
    (InvalidChecksum, "check_digit", "the check digit does not match"),
    (InvalidFormat, "pattern", "wrong characters or format"),
    (InvalidComponent, "component", "a part of the number is not allowed"),
)


def _stdnum_error(code: str, value: str, exc: ValidationError) -> IdentifierError:
    for kind, rule, detail in _STDNUM_RULES:
        if isinstance(exc, kind):
            return IdentifierError(code, rule, value, detail)
    return IdentifierError(code, "pattern", value, str(exc))


def _stdnum_check(module: ModuleType, drop: str = "") -> Check:
    """A check delegating to a python-stdnum module's ``validate``."""

    def check(code: str, value: str) -> Validated:
        compact = _compact(value, drop)
        try:
            normalised = module.validate(compact)
        except ValidationError as exc:
            raise _stdnum_error(code, value, exc) from exc
        return Validated(str(normalised))

    return check


def _pattern_check(pattern: str, loose: str, drop: str, expected: str) -> Check:
    """A check for schemes defined by a regular expression only (no check digit).

    ``loose`` is the same shape with any length: a value matching it but not ``pattern``
    breaks the ``length`` rule, any other mismatch the ``pattern`` rule.
    """
    strict_regex, loose_regex = re.compile(pattern), re.compile(loose)

    def check(code: str, value: str) -> Validated:
        compact = _compact(value, drop)
        if strict_regex.fullmatch(compact) is None:
            rule = "length" if loose_regex.fullmatch(compact) else "pattern"
            raise IdentifierError(code, rule, value, f"expected {expected}")
        return Validated(compact)

    return check


# --- scheme checks -----------------------------------------------------------------------

_COUNTRY_CODE = re.compile(r"[A-Z]{2}")
_EORI_BODY = re.compile(r"[\x21-\x7E]+")
_GB_EORI_BODY = re.compile(r"\d{12}|\d{15}")


def _check_eori(code: str, value: str) -> Validated:
    """EORI and TCUIN: two-letter country + 1 to 15 printable ASCII characters."""
    compact = _compact(value)
    country, body = compact[:2], compact[2:]
    if not _COUNTRY_CODE.fullmatch(country):
        raise IdentifierError(code, "pattern", value, "must start with a two-letter country code")
    if body and not _EORI_BODY.fullmatch(body):
        raise IdentifierError(
            code, "pattern", value, "after the country only printable ASCII characters are allowed"
        )
    if not 1 <= len(body) <= 15:
        raise IdentifierError(
            code, "length", value, "expected the country code followed by 1 to 15 characters"
        )
    if country not in EORI_COUNTRIES:
        raise IdentifierError(
            code, "country", value, f"{country!r} is not an ISO 3166 country code (or XI)"
        )
    warnings: list[IdentifierWarning] = []
    if country in ("GB", "XI") and not _GB_EORI_BODY.fullmatch(body):
        warnings.append(
            IdentifierWarning(
                code, "country_format",
                f"HMRC issues {country} numbers as {country} + 12 or 15 digits",
            )
        )
    return Validated(compact, tuple(warnings))


# The usual EU AEO number, already compact: a country, the category, and a printable
# reference holding a letter or digit (what `parse_eu_aeo` accepts without a warning when
# the country is a member state and the whole is at most 35 characters).
_USUAL_EU_AEO = re.compile(r"([A-Z]{2})AEO[CSF][\x21-\x7E]*[A-Z0-9][\x21-\x7E]*")


def _check_eu_aeo(code: str, value: str) -> Validated:
    if value.isascii() and len(value) <= MAX_PRESENTED_LENGTH:
        compact = "".join(value.split()).upper()
        usual = _USUAL_EU_AEO.fullmatch(compact)
        if usual is not None and usual.group(1) in EU_AEO_COUNTRIES:
            return Validated(compact)
    number = parse_eu_aeo(value)
    return Validated(number.number, eu_aeo_warnings(number))


def _check_mid(code: str, value: str) -> Validated:
    return Validated(validate_mid(value))


_CN_CUSTOMS = re.compile(r"(?:AEOCN|CN)?(\d{10})")


def _cn_customs_digits(code: str, value: str) -> str:
    compact = _compact(value, "-")
    match = _CN_CUSTOMS.fullmatch(compact)
    if match is None:
        rule = "pattern"
        body = compact.removeprefix("AEOCN") if compact.startswith("AEOCN") else (
            compact.removeprefix("CN")
        )
        if body.isdigit():
            rule = "length"
        raise IdentifierError(
            code, rule, value,
            "expected the 10-digit customs enterprise code, optionally prefixed CN or AEOCN",
        )
    return match.group(1)


def _check_cn_customs(code: str, value: str) -> Validated:
    return Validated(_cn_customs_digits(code, value))


def cn_partner_code(value: str) -> str:
    """The form a partner declares for a Chinese AEO: ``CN`` + the 10-digit code."""
    return "CN" + _cn_customs_digits("CN_CUSTOMS", value)


def cn_aeo_code(value: str) -> str:
    """The form China hands to partners: ``AEOCN`` + the 10-digit code."""
    return "AEOCN" + _cn_customs_digits("CN_CUSTOMS", value)


_SG_UEN_OTHER = re.compile(r"[RST]\d{2}[A-Z]{2}\d{4}[A-Z]")
_SG_UEN_FOREIGN = re.compile(r"F\d{8}[A-Z]")


def _check_sg_uen(code: str, value: str) -> Validated:
    compact = _compact(value, "-")
    if _SG_UEN_FOREIGN.fullmatch(compact):
        return Validated(compact)
    if _SG_UEN_OTHER.fullmatch(compact):
        try:
            stdnum_sg_uen.validate(compact)
        except InvalidChecksum:
            warning = IdentifierWarning(
                code, "check_digit",
                "the check letter does not match python-stdnum's reconstruction of "
                "the unpublished algorithm for other-entity UENs",
            )
            return Validated(compact, (warning,))
        except ValidationError as exc:
            raise _stdnum_error(code, value, exc) from exc
        return Validated(compact)
    return _stdnum_check(stdnum_sg_uen, "-")(code, value)


def kr_brn_check_digit(number: str) -> int:
    """The Korean BRN check digit for the first 9 digits (weights 1,3,7,1,3,7,1,3,5)."""
    digits = [int(ch) for ch in number[:9]]
    total = sum(d * w for d, w in zip(digits, (1, 3, 7, 1, 3, 7, 1, 3, 5), strict=True))
    total += digits[8] * 5 // 10
    return (10 - total % 10) % 10


def _check_kr_brn(code: str, value: str) -> Validated:
    result = _stdnum_check(stdnum_kr_brn, "-")(code, value)
    if kr_brn_check_digit(result.value) != int(result.value[9]):
        warning = IdentifierWarning(
            code, "check_digit",
            "the last digit does not match the National Tax Service check digit",
        )
        return Validated(result.value, (warning,))
    return result


_IN_PAN_SHAPE = re.compile(r"[A-Z]{5}\d{4}[A-Z]")


def _check_in_iec(code: str, value: str) -> Validated:
    compact = _compact(value, "-")
    if re.fullmatch(r"\d{10}", compact):
        return Validated(compact)
    if _IN_PAN_SHAPE.fullmatch(compact):
        try:
            stdnum_in_pan.validate(compact)
        except ValidationError:
            warning = IdentifierWarning(
                code, "component", "PAN-shaped code that python-stdnum does not accept as a PAN"
            )
            return Validated(compact, (warning,))
        return Validated(compact)
    rule = "length" if re.fullmatch(r"\d+|[A-Z]{5}\d{4}[A-Z]?|[A-Z]{1,5}", compact) else "pattern"
    raise IdentifierError(code, rule, value, "expected 10 digits or a PAN (AAAAA9999A)")


# --- the registry ------------------------------------------------------------------------

def _scheme(code: str, description: str, example: str, check: Check) -> Scheme:
    return Scheme(code=code, description=description, example=example, check=check)


_ALL: tuple[Scheme, ...] = (
    _scheme("EORI", "EU Economic Operators Registration and Identification number",
            "IE2025292W", _check_eori),
    _scheme("TCUIN", "Third-country unique identification number (EORI pattern)",
            "US123456789000", _check_eori),
    _scheme("EU_AEO", "EU AEO authorisation number: country + AEOC/AEOS/AEOF + reference",
            "DEAEOF00025/08", _check_eu_aeo),
    _scheme("MID", "US manufacturer identification code (19 CFR 102 appendix)",
            "USDHLEXP1304ERL", _check_mid),
    _scheme("US_CTPAT", "US C-TPAT account number (opaque: 1-20 letters and digits)",
            "ABC123456789",
            _pattern_check(r"[A-Z0-9]{1,20}", r"[A-Z0-9]+", "-", "1 to 20 letters and digits")),
    _scheme("US_EIN", "US Employer Identification Number (9 digits)",
            "042103594", _stdnum_check(stdnum_us_ein)),
    _scheme("CA_BN", "Canada Business Number (9 digits, or 15 with program account)",
            "123456782", _stdnum_check(stdnum_ca_bn)),
    _scheme("CN_USCC", "China Unified Social Credit Code (18 characters, mod-31 check)",
            "91110000600037341L", _stdnum_check(stdnum_cn_uscc)),
    _scheme("CN_CUSTOMS", "China customs enterprise code (10 digits; CN/AEOCN prefixes dropped)",
            "1234567890", _check_cn_customs),
    _scheme("JP_CN", "Japan corporate number (13 digits, leading check digit)",
            "5835678256246", _stdnum_check(stdnum_jp_cn)),
    _scheme("KR_BRN", "Korea business registration number (10 digits, check digit)",
            "1168200276", _check_kr_brn),
    _scheme("SG_UEN", "Singapore Unique Entity Number (9 or 10 characters)",
            "197401143C", _check_sg_uen),
    _scheme("SG_AEO", "Singapore STP/AEO code: AEOSG + 12 characters",
            "AEOSG123456789012",
            _pattern_check(r"AEOSG[A-Z0-9]{12}", r"AEOSG[A-Z0-9]*", "-",
                           "AEOSG followed by 12 letters or digits")),
    _scheme("MY_AEO", "Malaysia AEO code: MY + 12 digits",
            "MY123456789012",
            _pattern_check(r"MY\d{12}", r"MY\d*", "-", "MY followed by 12 digits")),
    _scheme("BN_AEO", "Brunei AEO code: SLMSBN-XXXXXX-XXX, declared without hyphens",
            "SLMSBN123456789",
            _pattern_check(r"SLMSBN[A-Z0-9]{9}", r"SLMSBN[A-Z0-9]*", "-",
                           "SLMSBN-XXXXXX-XXX (letters or digits)")),
    _scheme("IN_IEC", "India Importer-Exporter Code (10 digits or the holder's PAN)",
            "ACUPA7085R", _check_in_iec),
    _scheme("LEI", "Legal Entity Identifier (ISO 17442, 20 characters, mod 97)",
            "5493001KJTIIGC8Y1R12", _stdnum_check(stdnum_lei)),
    _scheme("EU_VAT", "EU VAT identification number (VIES format, country prefix)",
            "DE136695976", _stdnum_check(stdnum_eu_vat)),
    _scheme("CH_UID", "Swiss business identification number (UID, CHE + 9 digits)",
            "CHE100155212", _stdnum_check(stdnum_ch_uid)),
    _scheme("MX_RFC", "Mexico tax identifier RFC (Pacific Alliance AEO partners)",
            "MAB9307148T4", _stdnum_check(stdnum_mx_rfc)),
    _scheme("BR_CNPJ", "Brazil company registry number CNPJ (14 digits)",
            "16727230000197", _stdnum_check(stdnum_br_cnpj)),
    # Primary identifiers of further programmes in the reference data, each checked by
    # python-stdnum where it has the scheme, by its published shape where it has not.
    _scheme("NO_ORGNR", "Norway organisation number (9 digits, mod 11)",
            "821885221", _stdnum_check(stdnum_no_orgnr)),
    _scheme("BY_UNP", "Belarus payer account number UNP (9 characters)",
            "521885226", _stdnum_check(stdnum_by_unp)),
    _scheme("DO_RNC", "Dominican Republic taxpayer number RNC (9 digits)",
            "121885223", _stdnum_check(stdnum_do_rnc)),
    _scheme("PE_RUC", "Peru taxpayer number RUC (11 digits)",
            "20821885222", _stdnum_check(stdnum_pe_ruc)),
    _scheme("CL_RUT", "Chile tax number RUT (check digit or K)",
            "761885227", _stdnum_check(stdnum_cl_rut, "-.")),
    _scheme("CO_NIT", "Colombia tax number NIT (check digit)",
            "9021885222", _stdnum_check(stdnum_co_nit, "-.")),
    _scheme("UY_RUT", "Uruguay tax number RUT (12 digits)",
            "212885230015", _stdnum_check(stdnum_uy_rut, "-")),
    _scheme("TW_BAN", "Taiwan business administration number (UBN, 8 digits)",
            "21885224", _stdnum_check(stdnum_tw_ubn)),
    _scheme("TH_TIN", "Thailand taxpayer identification number (13 digits)",
            "0918852225970", _stdnum_check(stdnum_th_tin, "-")),
    _scheme("ID_NPWP", "Indonesia taxpayer number NPWP (15 digits)",
            "221885221907000", _stdnum_check(stdnum_id_npwp, ".-")),
    _scheme("VN_MST", "Viet Nam enterprise tax code MST (10 or 13 digits)",
            "0521885224", _stdnum_check(stdnum_vn_mst, "-")),
    _scheme("IL_COMPANY", "Israel company number (9 digits, check digit)",
            "511885220", _stdnum_check(stdnum_il_hp)),
    _scheme("AU_ABN", "Australian Business Number (11 digits, mod 89)",
            "26982188522", _stdnum_check(stdnum_au_abn)),
    _scheme("NZ_NZBN", "New Zealand Business Number (13-digit GS1 number)",
            "9429021885228", _stdnum_check(stdnum_ean)),
    _scheme("HK_BR", "Hong Kong business registration number (8 digits)",
            "82188522", _pattern_check(r"\d{8}", r"\d+", "-", "8 digits")),
    _scheme("NZ_CUSTOMS", "New Zealand Customs client code (opaque: 2 to 20 letters and digits)",
            "NZ282188522", _pattern_check(r"[A-Z0-9]{2,20}", r"[A-Z0-9]+", "-",
                                          "2 to 20 letters and digits")),
    _scheme("JO_TAX", "Jordan tax or customs registration number (opaque: 2 to 20 letters "
            "and digits)", "JO282188522",
            _pattern_check(r"[A-Z0-9]{2,20}", r"[A-Z0-9]+", "-", "2 to 20 letters and digits")),
    _scheme("PH_TIN", "Philippines taxpayer identification number (opaque: 2 to 20 letters "
            "and digits)", "PH282188522",
            _pattern_check(r"[A-Z0-9]{2,20}", r"[A-Z0-9]+", "-", "2 to 20 letters and digits")),
    _scheme("NATIONAL_ID", "A national company identifier with no published format "
            "(2 to 20 letters and digits)", "KH282188522",
            _pattern_check(r"[A-Z0-9]{2,20}", r"[A-Z0-9]+", "-", "2 to 20 letters and digits")),
)

#: All schemes by code, in a stable order.
SCHEMES: Mapping[str, Scheme] = MappingProxyType({scheme.code: scheme for scheme in _ALL})


def _key(code: str) -> str:
    return code.strip().upper() if isinstance(code, str) else ""


def is_known_scheme(code: str) -> bool:
    """True when ``code`` (case-insensitive) names a scheme."""
    return _key(code) in SCHEMES


def get_scheme(code: str) -> Scheme:
    """Return the scheme named ``code`` (case-insensitive) or raise ``unknown_scheme``."""
    scheme = SCHEMES.get(_key(code))
    if scheme is None:
        raise IdentifierError(
            str(code), "unknown_scheme", code, "known schemes: " + ", ".join(SCHEMES)
        )
    return scheme


def validate(scheme: str, value: object) -> Validated:
    """Validate ``value`` as a number of ``scheme``: normalised value and warnings."""
    return get_scheme(scheme).validate(value)


def normalise(scheme: str, value: object) -> str:
    """The normalised form of ``value`` in ``scheme``; raises :class:`IdentifierError`."""
    return get_scheme(scheme).normalise(value)


def normalise_reference(scheme: str, value: object) -> str:
    """The normalised form of a number a person typed or a partner declared, to look it
    up: whitespace anywhere is presentation in every scheme (a MID copied as
    ``USDHL EXP1304ERL``), then the scheme's own rules apply. Raises
    :class:`IdentifierError`.

    :func:`normalise` stays strict where a scheme is: a feed's MID holding a space is
    refused, so that a registry's stored forms are exactly its own.
    """
    if isinstance(value, str):
        value = "".join(value.split())
    return get_scheme(scheme).normalise(value)
