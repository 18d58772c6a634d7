"""Crosswalk: the exact code(s) to declare in an administration for one operator.

Driven by the programme's `declaration_codes` (reference data, see
`config/reference/README.md`), never by code branches: the entry for the declaring
administration (else the `"*"` entry) names the identifier scheme and the template, which
`DeclarationCodeRef.render` fills. `linked_only` entries use only identifiers the source
linked (an EU AEO's MIDs for CBP); a MID the hub derived never counts. When the operator
has no identifier in the scheme, the answer carries the entry's `missing_warning`. The
arrangements named are those with a direction active on the day asked about (the
rulebook's `active_on`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import clock
from hub.arrangements.reference import ANY_ADMINISTRATION, DeclarationCodeRef
from hub.errors import NotFound
from hub.recognition.rules import cached_reference
from hub.registry.models import Administration, Operator, OperatorIdentifier
from hub.registry.service import get_operator


@dataclass
class Crosswalk:
    operator_id: int
    programme: str
    declared_in: str
    codes: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Arrangements under which a programme of `declared_in` recognises this programme.
    arrangements: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"operator_id": self.operator_id, "programme": self.programme,
                "declared_in": self.declared_in, "codes": self.codes,
                "warnings": self.warnings, "arrangements": self.arrangements}


def _entries(declaration_codes: list[Any], declared_in: str) -> list[DeclarationCodeRef]:
    names = set(DeclarationCodeRef.__dataclass_fields__)
    specific = [e for e in declaration_codes if e.get("declared_in") == declared_in]
    chosen = specific or [e for e in declaration_codes
                          if e.get("declared_in") == ANY_ADMINISTRATION]
    return [DeclarationCodeRef(**{k: v for k, v in e.items() if k in names}) for e in chosen]


def _values(session: Session, operator: Operator, scheme: str, linked_only: bool) -> list[str]:
    query = select(OperatorIdentifier.value).where(
        OperatorIdentifier.operator_id == operator.id, OperatorIdentifier.scheme == scheme,
        OperatorIdentifier.origin == "declared").order_by(OperatorIdentifier.value)
    if linked_only:
        query = query.where(OperatorIdentifier.linked.is_(True))
    values = list(dict.fromkeys(session.scalars(query)))
    if not values and not linked_only and operator.trader_id_scheme == scheme:
        values = [operator.trader_id]
    if not values and not linked_only and operator.authorisation_number and (
            operator.programme.authorisation_scheme == scheme):
        values = [operator.authorisation_number]  # the authorisation number itself
    return values


def crosswalk(session: Session, operator_id: int, declared_in: str,
              day: dt.date | None = None) -> Crosswalk:
    """What must be declared in administration `declared_in` for operator `operator_id`,
    under the arrangements whose directions towards it are active on `day` (today)."""
    day = day or clock.now().date()
    operator = get_operator(session, operator_id)
    declared_in = declared_in.strip().upper()
    if session.scalar(select(Administration.id).where(Administration.code == declared_in)
                      ) is None:
        raise NotFound(f"administration {declared_in} does not exist",
                       fields={"declared_in": "unknown"})
    programme = operator.programme
    answer = Crosswalk(operator.id, programme.code, declared_in)
    snapshot = cached_reference(session)
    answer.arrangements = sorted({
        rule.arrangement
        for (recognising, recognised), rules in snapshot.directions.items()
        if recognised == programme.code
        and snapshot.programmes[recognising].administration == declared_in
        for rule in rules if rule.active_on(day)})
    entries = _entries(list(programme.declaration_codes or []), declared_in)
    if not entries:
        answer.warnings.append(f"{programme.code} defines no code to declare in {declared_in}")
        return answer
    for entry in entries:
        values = _values(session, operator, entry.scheme, entry.linked_only)
        if not values:
            answer.warnings.append(entry.missing_warning or (
                f"the operator has no {'linked ' if entry.linked_only else ''}{entry.scheme} "
                f"on record, which {declared_in} needs"))
            continue
        for value in values:
            code: dict[str, Any] = {"scheme": entry.scheme, "value": value,
                                    **entry.render(value, operator.country)}
            if entry.field:
                code["field"] = entry.field
            if entry.format_note:
                code["format_note"] = entry.format_note
            code.update(roles=list(entry.roles), source=entry.source,
                        verified=entry.verified)
            answer.codes.append(code)
    return answer
