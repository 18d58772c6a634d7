"""Synthetic identifier numbers that pass the real checks (python-stdnum does the check digits).

Every generator takes a `random.Random` and a non-negative integer `unique`: the digits that
must differ between operators of one registry are derived from `unique` through a bijection
(`scrambled`), so two operators never share a number while the numbers still look random.
Check characters come from python-stdnum: its `calc_*` functions where it has them,
otherwise the one candidate its `is_valid` accepts.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

from stdnum import ean, luhn
from stdnum.au import abn
from stdnum.be import vat as be_vat
from stdnum.br import cnpj
from stdnum.by import unp
from stdnum.ch import uid
from stdnum.cl import rut
from stdnum.cn import uscc
from stdnum.co import nit
from stdnum.cz import dic as cz_dic
from stdnum.dk import cvr
from stdnum.do import rnc
from stdnum.es import cif
from stdnum.fi import alv
from stdnum.gb import vat as gb_vat
from stdnum.id import npwp
from stdnum.ie import vat as ie_vat
from stdnum.il import hp
from stdnum.iso7064 import mod_97_10
from stdnum.jp import cn
from stdnum.kr import brn
from stdnum.mx import rfc
from stdnum.nl import bsn
from stdnum.no import orgnr
from stdnum.pe import ruc
from stdnum.pl import nip
from stdnum.pt import nif
from stdnum.sg import uen
from stdnum.th import moa
from stdnum.tw import ubn
from stdnum.uy import rut as uy_rut
from stdnum.vn import mst

_DIGITS = string.digits
_ALNUM = string.digits + string.ascii_uppercase

# Multiplier coprime with 10 and 2: `unique * _MULT + salt` modulo 10**n is a bijection.
_MULT = 7_919_393


def scrambled(unique: int, width: int, salt: int = 0) -> str:
    """`width` digits that differ for every `unique` below 10**width (a bijection)."""
    modulus = 10**width
    return f"{(unique * _MULT + salt * 104_729 + 4_830_517_281_937) % modulus:0{width}d}"


def complete(body: str, is_valid: Callable[[str], bool], alphabet: str = _DIGITS,
             suffix: str = "") -> str:
    """`body` plus the check character that python-stdnum's `is_valid` accepts.

    Some bodies have no valid check character (mod-11 remainders of 10): then the last
    character of the body is nudged and the search repeats.
    """
    for _ in range(len(_ALNUM)):
        for char in alphabet:
            if is_valid(body + char + suffix):
                return body + char + suffix
        last = body[-1]
        pool = _DIGITS if last in _DIGITS else _ALNUM
        body = body[:-1] + pool[(pool.index(last) + 1) % len(pool)]
    raise ValueError(f"no check character makes {body!r} valid")


def digits(rng: random.Random, count: int) -> str:
    """`count` random digits."""
    return "".join(rng.choice(_DIGITS) for _ in range(count))


# --- EU and European national numbers used inside EORIs -------------------------------------

def eori(country: str, rng: random.Random, unique: int) -> str:
    """An EORI in the member state's own national format (VAT/company number based)."""
    if country == "DE":
        return "DE" + str(rng.randint(1, 9)) + scrambled(unique, 8) + digits(rng, 6)
    if country == "FR":
        base = "3" + scrambled(unique, 7)
        siren = base + luhn.calc_check_digit(base)
        nic = siren + "0001"
        return "FR" + nic + luhn.calc_check_digit(nic)
    if country == "IT":
        base = scrambled(unique, 7) + rng.choice(["015", "037", "058", "096", "100"])
        return "IT" + base + luhn.calc_check_digit(base)
    if country == "ES":
        body = rng.choice("AB") + scrambled(unique, 7)
        return "ES" + complete(body, cif.is_valid, _ALNUM)
    if country == "NL":
        body = "8" + scrambled(unique, 7)
        return "NL" + complete(body, bsn.is_valid)
    if country == "PL":
        body = str(rng.randint(1, 9)) + scrambled(unique, 8)
        return "PL" + complete(body, nip.is_valid) + "00000"
    if country == "BE":
        body = "0" + str(rng.randint(2, 9)) + scrambled(unique, 6)
        check = f"{97 - int(body) % 97:02d}"
        number = body + check
        assert be_vat.is_valid(number), number
        return "BE" + number
    if country == "AT":
        return "ATEOS1000" + scrambled(unique, 6)
    if country == "IE":
        body = scrambled(unique, 7)
        return "IE" + body + ie_vat.calc_check_digit(body)
    if country == "SE":
        body = "55" + scrambled(unique, 7)
        return "SE" + body + luhn.calc_check_digit(body)
    if country == "DK":
        body = str(rng.randint(1, 9)) + scrambled(unique, 6)
        return "DK" + complete(body, cvr.is_valid)
    if country == "CZ":
        body = "2" + scrambled(unique, 6)
        return "CZ" + body + cz_dic.calc_check_digit_legal(body)
    if country == "FI":
        body = "2" + scrambled(unique, 6)
        return "FI" + complete(body, alv.is_valid)
    if country == "PT":
        body = "5" + scrambled(unique, 7)
        return "PT" + body + nif.calc_check_digit(body)
    if country == "GB":
        body = str(rng.randint(1, 9)) + scrambled(unique, 7)
        return "GB" + complete(body, gb_vat.is_valid) + "000"
    return country + str(rng.randint(1, 9)) + scrambled(unique, 8) + digits(rng, 3)


def eu_aeo_number(country: str, category: str, rng: random.Random, unique: int,
                  year: int) -> str:
    """An EU AEO authorisation number: country + category + national reference."""
    yy = f"{year % 100:02d}"
    serial = int(scrambled(unique, 6)) % 100_000
    style = {"DE": "slash", "AT": "slash", "NL": "long", "FR": "fr", "IT": "it",
             "ES": "es", "PL": "pl"}.get(country, "plain")
    if style == "slash":
        ref = f"{serial:05d}/{yy}"
    elif style == "long":
        ref = f"{serial:010d}"
    elif style == "fr":
        ref = f"{year}{serial:06d}"
    elif style == "it":
        ref = f"IT{serial:06d}"
    elif style == "es":
        ref = f"{yy}ES{serial:06d}"
    elif style == "pl":
        ref = f"{serial:07d}"
    else:
        ref = f"{yy}{serial:06d}"
    return f"{country}{category}{ref}"


def lei(rng: random.Random, unique: int) -> str:
    """An ISO 17442 LEI with valid mod-97 check digits."""
    lou = rng.choice(["5493", "5299", "2138", "9845", "3912", "8156", "3003", "7245"])
    body = lou + "00" + "".join(rng.choice(_ALNUM) for _ in range(6)) + scrambled(unique, 6)
    return body + mod_97_10.calc_check_digits(body)


# --- Asia --------------------------------------------------------------------------------

def cn_uscc(admin_code: str, rng: random.Random, unique: int) -> str:
    """A China Unified Social Credit Code (company, registered with market regulation)."""
    org = "MA" + "".join(rng.choice(_ALNUM[:10] + "ABCDEFGHJKLMNPQRTUWXY") for _ in range(1))
    org = org + scrambled(unique, 6)
    body = "91" + admin_code + org
    return body + uscc.calc_check_digit(body)


def cn_customs(district: str, unique: int) -> str:
    """A 10-digit China customs enterprise code: 4-digit district + 6 digits."""
    return district + scrambled(unique, 6)


def jp_corporate_number(unique: int, rng: random.Random) -> str:
    """A 13-digit Japan corporate number (leading check digit)."""
    body = str(rng.randint(1, 9)) + digits(rng, 3) + scrambled(unique, 8)
    return cn.calc_check_digit(body) + body


def kr_brn(unique: int, rng: random.Random) -> str:
    """A 10-digit Korean business registration number (81 = corporation head office)."""
    body = str(rng.randint(101, 899)) + rng.choice(["81", "86", "87"]) + scrambled(unique, 4)
    return complete(body, brn.is_valid)


def sg_uen(unique: int, rng: random.Random, year: int) -> str:
    """A Singapore UEN of a local company (YYYY + 5 digits + check letter)."""
    body = f"{year}{scrambled(unique, 5)}"
    return body + uen.calc_local_company_check_digit(body)


def sg_foreign_uen(unique: int) -> str:
    """The UEN of a foreign company's registered Singapore branch (T + yy + FC + 4 digits)."""
    body = "T08FC" + scrambled(unique, 4)
    return body + uen.calc_other_check_digit(body)


# --- Americas, Oceania and the generic fallback -----------------------------------------

def _uy_rut(unique: int, is_valid: Callable[[str], bool]) -> str:
    """A Uruguayan RUT: 2-digit area, 6 digits, 001, check digit (skip bodies without one)."""
    for attempt in range(20):
        body = f"21{(int(scrambled(unique, 6)) + attempt) % 900_000 + 100_000}001"
        for char in _DIGITS:
            if is_valid(body + char):
                return body + char
    raise ValueError("no valid RUT found")


_EIN_PREFIXES = ("20", "26", "27", "45", "46", "47", "81", "82", "83", "84", "85", "86",
                 "87", "88", "90", "91", "92", "93", "98")


def scheme_value(scheme: str, country: str, rng: random.Random, unique: int) -> str:
    """A valid value of `scheme` for an operator in `country` (fallback: country + digits)."""
    if scheme in ("EORI", "TCUIN"):
        return eori(country, rng, unique)
    if scheme == "LEI":
        return lei(rng, unique)
    if scheme == "US_CTPAT":
        letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(3))
        return letters + scrambled(unique, 9)
    if scheme == "US_EIN":
        return rng.choice(_EIN_PREFIXES) + scrambled(unique, 7)  # prefixes IRS assigns
    if scheme == "CA_BN":
        body = str(rng.randint(1, 9)) + scrambled(unique, 7)
        return body + luhn.calc_check_digit(body)
    if scheme == "JP_CN":
        return jp_corporate_number(unique, rng)
    if scheme == "KR_BRN":
        return kr_brn(unique, rng)
    if scheme == "SG_UEN":
        return sg_uen(unique, rng, rng.randint(1975, 2022))
    if scheme == "MY_AEO":
        return f"MY{rng.randint(1990, 2022)}01{scrambled(unique, 6)}"
    if scheme == "BN_AEO":
        return "SLMSBN" + scrambled(unique, 6) + digits(rng, 3)
    if scheme == "TH_TIN":
        body = "0" + str(rng.randint(1, 9)) + scrambled(unique, 6) + digits(rng, 4)
        return body + moa.calc_check_digit(body)
    if scheme == "ID_NPWP":
        return complete(str(rng.randint(1, 9)) + scrambled(unique, 7), npwp.is_valid,
                        suffix=digits(rng, 3) + "000")
    if scheme == "VN_MST":
        return complete("0" + str(rng.randint(1, 9)) + scrambled(unique, 7), mst.is_valid)
    if scheme == "IN_IEC":
        letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(3))
        return letters + "C" + rng.choice(string.ascii_uppercase) + scrambled(unique, 4) + (
            rng.choice(string.ascii_uppercase)
        )
    if scheme == "MX_RFC":
        letters = "".join(rng.choice("ABCDEFGHIJLMNOPRSTUVZ") for _ in range(3))
        date = f"{rng.randint(0, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        homoclave = rng.choice(_ALNUM[1:]) + rng.choice(_ALNUM[1:])
        body = letters + date + homoclave
        number = body + rfc.calc_check_digit(body)
        if not rfc.is_valid(number):  # a generated word may be on the RFC's blocklist
            return scheme_value(scheme, country, rng, unique)
        return number
    if scheme == "BR_CNPJ":
        body = scrambled(unique, 8) + "0001"
        return body + cnpj.calc_check_digits(body)
    if scheme == "CL_RUT":
        body = "76" + scrambled(unique, 6)
        return body + rut.calc_check_digit(body)
    if scheme == "CO_NIT":
        body = "90" + scrambled(unique, 7)
        return body + nit.calc_check_digit(body)
    if scheme == "PE_RUC":
        body = "20" + scrambled(unique, 8)
        return body + ruc.calc_check_digit(body)
    if scheme == "UY_RUT":
        return _uy_rut(unique, uy_rut.is_valid)
    if scheme == "DO_RNC":
        body = "1" + scrambled(unique, 7)
        return body + rnc.calc_check_digit(body)
    if scheme == "AU_ABN":
        body = str(rng.randint(1, 9)) + scrambled(unique, 8)
        return abn.calc_check_digits(body) + body
    if scheme == "NZ_NZBN":
        body = "94290" + scrambled(unique, 7)
        return body + ean.calc_check_digit(body)
    if scheme == "TW_BAN":
        return complete(scrambled(unique, 7), ubn.is_valid)
    if scheme == "CH_UID":
        return complete("CHE" + str(rng.randint(1, 4)) + scrambled(unique, 7), uid.is_valid)
    if scheme == "NO_ORGNR":
        return complete(rng.choice("89") + scrambled(unique, 7), orgnr.is_valid)
    if scheme == "BY_UNP":
        return complete(str(rng.randint(1, 7)) + scrambled(unique, 7), unp.is_valid)
    if scheme == "IL_COMPANY":
        return complete("51" + scrambled(unique, 6), hp.is_valid)
    if scheme == "HK_BR":
        return scrambled(unique, 8)
    if scheme == "CN_USCC":
        return cn_uscc("310000", rng, unique)
    if scheme == "CN_CUSTOMS":
        return cn_customs("2244", unique)
    return country + scrambled(unique, 9)
