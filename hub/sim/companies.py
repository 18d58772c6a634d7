"""Synthetic companies: plausible names and addresses per country, and the variants under
which the same company appears in another registry.

A :class:`Company` is the ground truth; a registry record shows it as one registry would
write it. :func:`name_variant` and :func:`address_variant` produce what another
administration's registry writes for the same company: a different legal-form spelling,
an abbreviation, another romanisation, diacritics dropped, the address reordered.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from typing import Any

from anyascii import anyascii

from hub.sim.data.locales import (
    ABBREVIATIONS,
    COUNTRIES,
    DEFAULT_COUNTRY,
    LANGUAGES,
    LEGAL_FORM_VARIANTS,
    TRANSLITERATION_VARIANTS,
)

#: Countries whose registries fill the `region` field (state, province).
REGION_COUNTRIES = frozenset({"US", "CA", "MX", "BR", "IN", "MY", "AU"})

_SG_STREETS = ["Jurong East Street 21", "Tuas Avenue 3", "Changi South Lane", "Pioneer Road",
               "Alexandra Road", "Loyang Way", "Ubi Avenue 1", "Kallang Way",
               "Penjuru Road", "Toh Guan Road East"]
_JP_WARDS = {"Tokyo": ["Minato-ku", "Chiyoda-ku", "Koto-ku", "Ota-ku", "Shinagawa-ku"],
             "Osaka": ["Kita-ku", "Chuo-ku", "Suminoe-ku"], "Yokohama": ["Naka-ku", "Tsurumi-ku"],
             "Nagoya": ["Minato-ku", "Naka-ku"], "Kobe": ["Chuo-ku", "Higashinada-ku"],
             "Fukuoka": ["Hakata-ku", "Higashi-ku"]}
_CN_DISTRICTS = ["Pudong New Area", "Nanshan District", "Huangpu District", "Beilun District",
                 "Binhai New Area", "Haicang District", "Industrial Park", "Chaoyang District",
                 "Bao'an District", "Huli District"]
_KR_DISTRICTS = ["Gangnam-gu", "Jung-gu", "Yeonsu-gu", "Haeundae-gu", "Nam-gu", "Seongsan-gu"]


@dataclass(frozen=True)
class Company:
    """A company of the simulated world (ground truth, never published as such)."""

    company_id: str
    country: str
    stem: str  # the distinctive part of the name, without legal form
    legal_form: str
    street: str
    city: str
    postcode: str
    region: str | None

    @property
    def legal_name(self) -> str:
        """The name as the home registry writes it."""
        return compose_name(self.country, self.stem, self.legal_form)


def locale(country: str) -> dict[str, Any]:
    """The word lists of `country` (the default English set for countries without one)."""
    return COUNTRIES.get(country, DEFAULT_COUNTRY)


def compose_name(country: str, stem: str, legal_form: str) -> str:
    """`stem` with its legal form where the country writes it (Indonesia: before the name)."""
    if not legal_form:
        return stem
    if locale(country).get("prefix_legal_form"):
        if legal_form.endswith("Tbk"):
            return f"PT {stem} Tbk"
        return f"{legal_form} {stem}"
    separator = ", " if legal_form in ("Inc.", "Ltd.", "LLC") and len(stem) > 24 else " "
    return f"{stem}{separator}{legal_form}"


def weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> str:
    """Pick from (value, weight) pairs."""
    values = [value for value, _ in pairs]
    weights = [weight for _, weight in pairs]
    return rng.choices(values, weights)[0]


def _language(country: str, rng: random.Random) -> dict[str, list[str]]:
    info = locale(country)
    code = info["lang"]
    if "alt_lang" in info and rng.random() < 0.35:
        code = info["alt_lang"]
    return LANGUAGES[code]


def make_stem(country: str, rng: random.Random, city: str) -> str:
    """A plausible distinctive name part for a company of `country`."""
    words = _language(country, rng)
    stem, family, sector = (rng.choice(words["stems"]), rng.choice(words["family"]),
                            rng.choice(words["sectors"]))
    code = locale(country)["lang"]
    roll = rng.random()
    if code == "zh":
        return f"{city} {stem} {sector}" if roll < 0.6 else f"{stem} {sector}"
    if code in ("ja", "ko"):
        return f"{stem} {sector}" if roll < 0.75 else f"{family} {sector}"
    if code == "fr" and roll < 0.3:
        return f"{sector} {family}"
    if code == "it" and roll < 0.15:
        return f"F.lli {family}"
    if roll < 0.45:
        return f"{stem} {sector}"
    if roll < 0.8:
        return f"{family} {sector}"
    if roll < 0.92:
        other = rng.choice(words["family"])
        joiner = {"de": "&", "fr": "et", "it": "e", "es": "y", "nl": "&"}.get(code, "&")
        return f"{family} {joiner} {other}" if other != family else f"{family} {sector}"
    return f"{stem} International" if code in ("en", "ms", "th") else f"{stem} {sector} Group"


def _postcode(pattern: str, prefix: str, rng: random.Random) -> str:
    out: list[str] = []
    remaining = list(prefix)
    for symbol in pattern:
        if symbol in "#A" and remaining:
            out.append(remaining.pop(0))
        elif symbol == "#":
            out.append(str(rng.randint(0, 9)))
        elif symbol == "A":
            out.append(rng.choice("ABCDEFGHJKLMNPRSTVWXY"))
        else:
            out.append(symbol)
    return "".join(out)


def make_address(country: str, rng: random.Random) -> tuple[str, str, str, str | None]:
    """(street line, city, postcode, region) for a site in `country`."""
    info = locale(country)
    words = LANGUAGES[info["lang"]]
    cities = info["cities"] or [(f"{country} City", "", None)]
    city, prefix, region_code = rng.choice(cities)
    postcode = _postcode(info["postcode"], prefix, rng) if country != "SG" else (
        f"{rng.randint(1, 82):02d}{rng.randint(0, 9999):04d}"
    )
    region = region_code if country in REGION_COUNTRIES else None
    style = info["street_style"]
    number = rng.choice([rng.randint(1, 60), rng.randint(1, 250), rng.randint(100, 12000)])
    street_name = rng.choice(words["streets"])
    if style == "name_num":
        suffix = rng.choice(["", "", "", "a", "b", "-" + str(number + 2)])
        street = f"{street_name} {number}{suffix}"
    elif style == "name_comma_num":
        street = f"{street_name}, {number}"
        if country == "ES" and rng.random() < 0.3:
            street += f", {rng.randint(1, 8)}º"
    elif style == "pl":
        street = f"{street_name} {number}"
        if rng.random() < 0.3:
            street += f" lok. {rng.randint(1, 40)}"
    elif style == "jp":
        ward = rng.choice(_JP_WARDS.get(city, ["Chuo-ku"]))
        block = f"{rng.randint(1, 5)}-{rng.randint(1, 30)}-{rng.randint(1, 20)}"
        street = f"{block} {street_name}, {ward}"
    elif style == "cn":
        street = f"No. {number} {street_name}, {rng.choice(_CN_DISTRICTS)}"
        if rng.random() < 0.4:
            street += f", Room {rng.randint(2, 28)}{rng.randint(1, 20):02d}"
    elif style == "sg":
        unit = f"#{rng.randint(1, 12):02d}-{rng.randint(1, 60):02d}"
        street = f"{rng.randint(1, 80)} {rng.choice(_SG_STREETS)}, {unit}"
    elif style == "my":
        street = f"No. {rng.randint(1, 80)}, {street_name} {rng.randint(1, 12)}"
    else:
        street = f"{number} {street_name}"
        if country == "KR":
            street += f", {rng.choice(_KR_DISTRICTS)}"
        elif rng.random() < 0.3:
            street += rng.choice([f" Suite {rng.randint(100, 2400)}",
                                  f", Unit {rng.randint(1, 40)}",
                                  f" Ste {rng.randint(100, 999)}",
                                  f", Building {rng.randint(1, 9)}"])
    return street, city, postcode, region


def make_company(company_id: str, country: str, rng: random.Random) -> Company:
    """A new company of `country`."""
    street, city, postcode, region = make_address(country, rng)
    legal_form = weighted(rng, locale(country)["legal_forms"])
    return Company(company_id=company_id, country=country, stem=make_stem(country, rng, city),
                   legal_form=legal_form, street=street, city=city, postcode=postcode,
                   region=region)


def local_establishment(company: Company, country: str, rng: random.Random) -> Company:
    """The company's establishment (subsidiary or branch) in another country."""
    street, city, postcode, region = make_address(country, rng)
    legal_form = weighted(rng, locale(country)["legal_forms"])
    stem = company.stem
    if rng.random() < 0.35:
        label = {"SG": "Singapore", "MY": "Malaysia", "US": "USA", "CN": "China",
                 "JP": "Japan", "KR": "Korea", "GB": "UK", "CA": "Canada",
                 "MX": "México", "TH": "Thailand", "IN": "India"}.get(country)
        if label:
            stem = f"{stem} ({label})"
    return replace(company, country=country, stem=stem, legal_form=legal_form, street=street,
                   city=city, postcode=postcode, region=region)


# --- variants -----------------------------------------------------------------------------

def _transliterate(text: str, rng: random.Random) -> str:
    changed = text
    for word, variants in TRANSLITERATION_VARIANTS.items():
        if word in changed:
            changed = changed.replace(word, rng.choice(variants))
    if changed == text:
        changed = anyascii(text)
    return changed


def _abbreviate(text: str) -> str:
    for word, short in ABBREVIATIONS.items():
        text = re.sub(rf"\b{re.escape(word)}\b", short, text)
    return text


def name_variant(company: Company, rng: random.Random) -> str:
    """The company's name as another registry writes it (one or two differences)."""
    stem, legal_form = company.stem, company.legal_form
    operations = rng.sample(["legal_form", "abbreviate", "transliterate", "upper", "drop_form",
                             "ampersand"], k=rng.choice([1, 1, 2]))
    for operation in operations:
        if operation == "legal_form" and legal_form in LEGAL_FORM_VARIANTS:
            legal_form = rng.choice(LEGAL_FORM_VARIANTS[legal_form])
        elif operation == "abbreviate":
            stem = _abbreviate(stem)
        elif operation == "transliterate":
            stem = _transliterate(stem, rng)
        elif operation == "drop_form" and rng.random() < 0.5:
            legal_form = ""
        elif operation == "ampersand":
            stem = stem.replace(" & ", " and ") if " & " in stem else stem.replace(" and ", " & ")
    name = compose_name(company.country, stem, legal_form)
    if "upper" in operations:
        name = name.upper()
    if name == company.legal_name:  # make sure the variant differs somewhere
        name = anyascii(name).upper() if anyascii(name) != name else name.upper()
    return name


_STREET_ABBREVIATIONS = [("Street", "St."), ("Road", "Rd"), ("Avenue", "Ave"),
                         ("Boulevard", "Blvd"), ("Drive", "Dr."), ("straße", "str."),
                         ("Straße", "Str."), ("Suite", "Ste"), ("Parkway", "Pkwy")]


def address_variant(company: Company, rng: random.Random) -> tuple[str, str, str]:
    """(street, city, postcode) as another registry writes the same address."""
    street, city, postcode = company.street, company.city, company.postcode
    operation = rng.choice(["reorder", "abbreviate", "ascii", "upper", "postcode"])
    if operation == "reorder":
        match = re.fullmatch(r"(\D+?) (\d+\w?)", street)
        if match:
            street = f"{match.group(2)} {match.group(1)}"
        else:
            match = re.fullmatch(r"(\d+) ([^,]+)(,.*)?", street)
            street = f"{match.group(2)} {match.group(1)}{match.group(3) or ''}" if match else (
                street.upper()
            )
    elif operation == "abbreviate":
        for long, short in _STREET_ABBREVIATIONS:
            street = street.replace(long, short)
    elif operation == "ascii":
        street, city = anyascii(street), anyascii(city)
    elif operation == "upper":
        street, city = street.upper(), city.upper()
    else:
        postcode = postcode.replace(" ", "").replace("-", "")
    return street, city, postcode
