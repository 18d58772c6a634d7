"""EU AEO authorisation numbers: country + ``AEOC|AEOS|AEOF`` + national reference.

Examples: ``DE AEOF 00025/08`` and ``DEAEOF1234/16`` are both German AEOF authorisations.
Spaces are presentation only, so the normalised form has none (``DEAEOF00025/08``). The
country must be an EU member state or ``XI`` (Northern Ireland, where EU customs law applies
to goods). The reference is the member state's own numbering: it may hold any printable
ASCII character, but must contain at least one letter or digit.

The whole number is expected to fit the 35 characters of the EU customs decision
reference; a longer one is accepted with a warning, because that limit comes from the
data-element width rather than from a published rule for AEO numbers.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from hub.identifiers.countries import EU_AEO_COUNTRIES
from hub.identifiers.errors import IdentifierError, IdentifierWarning

SCHEME = "EU_AEO"

#: AEO categories: customs simplifications, security and safety, and both ("full").
EU_AEO_CATEGORIES: tuple[str, ...] = ("AEOC", "AEOS", "AEOF")

#: The width of an EU customs decision reference; longer numbers draw a warning.
MAX_PRESENTED_LENGTH = 35

_SHAPE = re.compile(r"(?P<country>[A-Z]{2})(?P<category>AEO[A-Z])(?P<reference>.*)")
_PRINTABLE = re.compile(r"[\x21-\x7E]+")
_ALNUM = re.compile(r"[A-Za-z0-9]")


@dataclass(frozen=True)
class EuAeoNumber:
    """A parsed EU AEO authorisation number."""

    country: str
    category: str
    reference: str

    @property
    def number(self) -> str:
        """The normalised number, without spaces."""
        return f"{self.country}{self.category}{self.reference}"

    @property
    def presentation(self) -> str:
        """The number as usually printed: ``DE AEOF 00025/08``."""
        return f"{self.country} {self.category} {self.reference}"

    @property
    def covers_security(self) -> bool:
        """True for AEOS and AEOF, the categories most MRAs recognise."""
        return self.category in ("AEOS", "AEOF")

    def __str__(self) -> str:
        return self.number


def _compact(value: str) -> str:
    text = value if value.isascii() else unicodedata.normalize("NFKC", value)  # ASCII: as is
    return "".join(text.split()).upper()


def parse_eu_aeo(value: str) -> EuAeoNumber:
    """Parse an EU AEO authorisation number; raise :class:`IdentifierError` if it is not one."""
    if not isinstance(value, str):
        raise IdentifierError(SCHEME, "type", value, "expected a string")
    compact = _compact(value)
    if not compact:
        raise IdentifierError(SCHEME, "empty", value, "the value is empty")
    match = _SHAPE.fullmatch(compact)
    if match is None:
        raise IdentifierError(
            SCHEME, "pattern", value,
            "expected a two-letter country code followed by AEOC, AEOS or AEOF "
            "and the national reference, e.g. 'DE AEOF 00025/08'",
        )
    country, category, reference = match.group("country", "category", "reference")
    if category not in EU_AEO_CATEGORIES:
        raise IdentifierError(
            SCHEME, "category", value,
            f"{category!r} is not an AEO category; expected AEOC, AEOS or AEOF",
        )
    if country not in EU_AEO_COUNTRIES:
        raise IdentifierError(
            SCHEME, "country", value,
            f"{country!r} is not an EU member state code (or XI for Northern Ireland)",
        )
    if not reference:
        raise IdentifierError(SCHEME, "length", value, "the national reference is missing")
    # printable ASCII, so "a letter or digit" is [A-Za-z0-9]
    if not _PRINTABLE.fullmatch(reference) or not _ALNUM.search(reference):
        raise IdentifierError(
            SCHEME, "pattern", value,
            "the national reference must be printable ASCII with at least one letter or digit",
        )
    return EuAeoNumber(country=country, category=category, reference=reference)


def eu_aeo_warnings(number: EuAeoNumber) -> tuple[IdentifierWarning, ...]:
    """Warnings for a parsed number that breaks an unsourced, stricter rule."""
    if len(number.number) > MAX_PRESENTED_LENGTH:
        return (
            IdentifierWarning(
                SCHEME, "length",
                f"{len(number.number)} characters is longer than the "
                f"{MAX_PRESENTED_LENGTH} of an EU customs decision reference",
            ),
        )
    return ()
