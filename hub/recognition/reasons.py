"""Reasons: stable codes with a message, the "why" of every recognition answer.

Codes are part of the API contract: partners branch on them, so they never change
meaning. Messages are for people and may be reworded.
"""

from __future__ import annotations

from dataclasses import dataclass

# Status of the authorisation (overall or of a component in the arrangement's scope).
STATUS_SUSPENDED = "STATUS_SUSPENDED"
STATUS_REVOKED = "STATUS_REVOKED"
STATUS_ANNULLED = "STATUS_ANNULLED"
STATUS_EXPIRED = "STATUS_EXPIRED"
STATUS_WITHDRAWN = "STATUS_WITHDRAWN"
NOT_YET_VALID = "NOT_YET_VALID"
REMOVED_FROM_REGISTRY = "REMOVED_FROM_REGISTRY"
NO_CONSENT = "NO_CONSENT"
# Scope and dates of the arrangements.
CATEGORY_OUT_OF_SCOPE = "CATEGORY_OUT_OF_SCOPE"
# A direction recognises some tiers of a component only (EU: validated C-TPAT importers).
TIER_NOT_RECOGNISED = "TIER_NOT_RECOGNISED"
NO_ARRANGEMENT = "NO_ARRANGEMENT"
ARRANGEMENT_NOT_IN_FORCE = "ARRANGEMENT_NOT_IN_FORCE"
NOT_YET_ACTIVE = "NOT_YET_ACTIVE"
FLOW_NOT_COVERED = "FLOW_NOT_COVERED"
# Identity resolution.
INVALID_IDENTIFIER = "INVALID_IDENTIFIER"
UNKNOWN_IDENTIFIER = "UNKNOWN_IDENTIFIER"
MID_NOT_LINKED = "MID_NOT_LINKED"
NO_MATCH = "NO_MATCH"
AMBIGUOUS_MATCH = "AMBIGUOUS_MATCH"
REFERENCES_DISAGREE = "REFERENCES_DISAGREE"
NOT_KNOWN_AT = "NOT_KNOWN_AT"

#: Every code, for documentation and tests.
ALL_CODES = (
    STATUS_SUSPENDED, STATUS_REVOKED, STATUS_ANNULLED, STATUS_EXPIRED, STATUS_WITHDRAWN,
    NOT_YET_VALID, REMOVED_FROM_REGISTRY, NO_CONSENT, CATEGORY_OUT_OF_SCOPE,
    TIER_NOT_RECOGNISED, NO_ARRANGEMENT,
    ARRANGEMENT_NOT_IN_FORCE, NOT_YET_ACTIVE, FLOW_NOT_COVERED, INVALID_IDENTIFIER,
    UNKNOWN_IDENTIFIER, MID_NOT_LINKED, NO_MATCH, AMBIGUOUS_MATCH, REFERENCES_DISAGREE,
    NOT_KNOWN_AT,
)


def status_code(status: str) -> str:
    """The reason code for an authorisation (or component) in `status`."""
    return f"STATUS_{status.upper()}"


@dataclass(frozen=True)
class Reason:
    """A stable `code` and a human `message`; `arrangement` names the MRA it concerns."""

    code: str
    message: str
    arrangement: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.arrangement:
            out["arrangement"] = self.arrangement
        return out
