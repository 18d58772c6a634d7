"""Identifiers: validate and normalise operator numbers, build US MIDs, normalise names.

Pure Python, no database. The public API:

* schemes: :data:`SCHEMES`, :func:`validate`, :func:`normalise`,
  :func:`normalise_reference` (a number as typed or declared), :func:`is_known_scheme`,
  :func:`get_scheme`, :class:`Scheme`, :class:`Validated`; helpers :func:`parse_eu_aeo`
  (:class:`EuAeoNumber`), :func:`cn_partner_code`, :func:`cn_aeo_code`;
* MID: :func:`build_mid`, :func:`explain_mid` (:class:`MidParts`), :func:`validate_mid`;
* matching normalisers: :func:`normalise_name`, :func:`name_tokens`,
  :func:`normalise_street`, :func:`normalise_city`, :func:`normalise_postcode`;
* errors: :class:`IdentifierError` (a rejection, with ``scheme`` and ``rule``) and
  :class:`IdentifierWarning` (a breach of a stricter, unsourced rule).
"""

from __future__ import annotations

from hub.identifiers.errors import IdentifierError, IdentifierWarning
from hub.identifiers.eu_aeo import EuAeoNumber, parse_eu_aeo
from hub.identifiers.mid import MidPart, MidParts, build_mid, explain_mid, validate_mid
from hub.identifiers.normalise import (
    name_tokens,
    normalise_city,
    normalise_name,
    normalise_postcode,
    normalise_street,
)
from hub.identifiers.schemes import (
    SCHEMES,
    Scheme,
    Validated,
    cn_aeo_code,
    cn_partner_code,
    get_scheme,
    is_known_scheme,
    normalise,
    normalise_reference,
    validate,
)

__all__ = [
    "SCHEMES",
    "EuAeoNumber",
    "IdentifierError",
    "IdentifierWarning",
    "MidPart",
    "MidParts",
    "Scheme",
    "Validated",
    "build_mid",
    "cn_aeo_code",
    "cn_partner_code",
    "explain_mid",
    "get_scheme",
    "is_known_scheme",
    "name_tokens",
    "normalise",
    "normalise_city",
    "normalise_name",
    "normalise_postcode",
    "normalise_reference",
    "normalise_street",
    "parse_eu_aeo",
    "validate",
    "validate_mid",
]
