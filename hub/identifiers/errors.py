"""Errors and warnings raised by identifier validation.

An :class:`IdentifierError` is a rejection: the value cannot be a number of that scheme. Its
``rule`` is a short, stable code that callers (API, CLI, connectors) may branch on:

========================  ==============================================================
``empty``                 nothing left after removing presentation characters
``type``                  the value is not a string
``pattern``               wrong characters or shape
``length``                wrong length
``check_digit``           the check digit or check character does not match
``component``             a part of the number is not allowed (stdnum's InvalidComponent)
``country``               the country prefix is unknown or not allowed for the scheme
``category``              an EU AEO number without ``AEOC``, ``AEOS`` or ``AEOF``
``province_required``     a Canadian MID needs the province
``province``              the province is unknown
``name``                  the manufacturer name gives no character for a MID
``city``                  the city gives no letter for a MID
``unknown_scheme``        no scheme with that code
========================  ==============================================================

An :class:`IdentifierWarning` reports the breach of a stricter rule that we could not
source well enough to reject on (for example a GB EORI that is not ``GB`` + 12 or 15 digits).
"""

from __future__ import annotations

from dataclasses import dataclass


class IdentifierError(ValueError):
    """A value broke a rule of an identifier scheme."""

    def __init__(self, scheme: str, rule: str, value: object, detail: str = "") -> None:
        self.scheme = scheme
        self.rule = rule
        self.value = value
        self.detail = detail
        shown = value if isinstance(value, str) else type(value).__name__
        message = f"invalid {scheme} value {shown!r}: breaks rule '{rule}'"
        if detail:
            message += f" ({detail})"
        super().__init__(message)

    @property
    def message(self) -> str:
        """The human message (the same as ``str(error)``)."""
        return str(self)


@dataclass(frozen=True)
class IdentifierWarning:
    """A breach of a stricter, unsourced or per-country rule: reported, never rejected."""

    scheme: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.scheme} [{self.rule}]: {self.message}"
