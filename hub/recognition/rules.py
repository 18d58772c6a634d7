"""The recognition rules of docs/domain.md, applied to one operator's state on one day.

Arrangements and programmes are read once into an immutable `CachedReference`, cached
per database and rebuilt whenever the reference version (`hub.versions`) moves, so that a
suspended arrangement is honoured on the next call in every worker.

Rules, in the order reasons are reported:

* the authorisation exists on the day (annulment is retroactive; before its start it is
  `NOT_YET_VALID`), is still listed by its source, has overall status `valid`, lies inside
  its validity window, and has consent to share where its programme requires it;
* some direction of an arrangement has the recognising programme recognising the
  operator's programme (`NO_ARRANGEMENT`), the arrangement is in force on the day
  (`ARRANGEMENT_NOT_IN_FORCE`), this direction is active on the day (`NOT_YET_ACTIVE`:
  activation belongs to the direction, not the arrangement), covers the flow
  (`FLOW_NOT_COVERED`), and the operator holds, valid on the day, a category in the
  direction's scope (components count one by one: an AEOF holder whose AEOS component is
  suspended is not recognised where only AEOS/AEOF are, and still is where AEOC is) and a
  tier in its tier list if it has one (`CATEGORY_OUT_OF_SCOPE`, or the component's
  status).
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hub import versions
from hub.arrangements import rulebook
from hub.arrangements.models import Arrangement, ArrangementDirection
from hub.db import bind_key
from hub.recognition import reasons as rc
from hub.recognition.reasons import Reason
from hub.registry.history import OperatorFacts
from hub.registry.models import Programme


@dataclass(frozen=True)
class ProgrammeRule:
    id: int
    code: str
    administration: str
    consent_required: bool
    #: category code -> its components (itself when it has none)
    parts: Mapping[str, tuple[str, ...]]
    declaration_codes: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class DirectionRule:
    arrangement: str
    title: str
    benefits: tuple[str, ...]
    statuses: rulebook.StatusHistory
    recognising: str
    recognised: str
    categories: tuple[str, ...]
    flows: tuple[str, ...]
    tiers: tuple[str, ...]
    active_from: dt.date | None
    active_until: dt.date | None

    def status_on(self, day: dt.date) -> str | None:
        """The arrangement's status on `day` (the rulebook's)."""
        return rulebook.arrangement_status_on(self, day)

    def active_on(self, day: dt.date) -> bool:
        """Whether this direction recognises on `day`, whatever the flow (the rulebook's)."""
        return rulebook.direction_active(self, self, day)


@dataclass(frozen=True)
class CachedReference:
    programmes: Mapping[str, ProgrammeRule]
    by_id: Mapping[int, ProgrammeRule]
    #: (recognising code, recognised code) -> directions, by arrangement code
    directions: Mapping[tuple[str, str], tuple[DirectionRule, ...]]

    def recognised_by(self, recognising: str) -> list[str]:
        """Codes of the programmes `recognising` recognises under any arrangement."""
        return list(self._recognised.get(recognising, ()))

    @functools.cached_property
    def _recognised(self) -> dict[str, tuple[str, ...]]:
        """Recognising code -> the sorted codes it recognises (built once per snapshot)."""
        out: dict[str, set[str]] = {}
        for a, b in self.directions:
            out.setdefault(a, set()).add(b)
        return {a: tuple(sorted(bs)) for a, bs in out.items()}


_LOCK = threading.Lock()
_SNAPSHOTS: dict[str, tuple[tuple[Any, ...], CachedReference]] = {}


def _build(session: Session) -> CachedReference:
    programmes: dict[str, ProgrammeRule] = {}
    rows = session.scalars(select(Programme).options(selectinload(Programme.administration)))
    for p in rows:
        parts = {str(c["code"]): tuple(c.get("components") or ()) or (str(c["code"]),)
                 for c in p.categories or []}
        programmes[p.code] = ProgrammeRule(p.id, p.code, p.administration.code,
                                           bool(p.consent_required), parts,
                                           tuple(p.declaration_codes or ()))
    directions: dict[tuple[str, str], list[DirectionRule]] = {}
    arrangements = session.scalars(select(Arrangement).options(
        selectinload(Arrangement.status_changes),
        selectinload(Arrangement.directions).selectinload(ArrangementDirection.recognising),
        selectinload(Arrangement.directions).selectinload(ArrangementDirection.recognised),
    ).order_by(Arrangement.code))
    for arrangement in arrangements:
        statuses = arrangement.statuses
        for d in arrangement.directions:
            rule = DirectionRule(
                arrangement=arrangement.code, title=arrangement.title,
                benefits=tuple(arrangement.benefits or ()), statuses=statuses,
                recognising=d.recognising.code, recognised=d.recognised.code,
                categories=tuple(d.categories or ()), flows=tuple(d.flows or ()),
                tiers=tuple(d.tiers or ()), active_from=d.active_from,
                active_until=d.active_until)
            directions.setdefault((rule.recognising, rule.recognised), []).append(rule)
    return CachedReference(programmes, {p.id: p for p in programmes.values()},
                             {k: tuple(v) for k, v in directions.items()})


def cached_reference(session: Session) -> CachedReference:
    """Programmes and arrangements, cached until the reference version moves."""
    key = versions.reference_stamp(session)
    url = bind_key(session)
    if key is not None:
        with _LOCK:
            cached = _SNAPSHOTS.get(url)
        if cached is not None and cached[0] == key:
            return cached[1]
    snapshot = _build(session)
    if key is not None:
        with _LOCK:
            _SNAPSHOTS[url] = (key, snapshot)
    return snapshot


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Recognition:
    """One arrangement under which the operator is recognised."""

    arrangement: str
    title: str
    categories: tuple[str, ...]
    benefits: tuple[str, ...]
    flows: tuple[str, ...]
    active_from: dt.date | None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.arrangement, "title": self.title,
                "categories": list(self.categories), "benefits": list(self.benefits),
                "flows": list(self.flows),
                "active_from": self.active_from.isoformat() if self.active_from else None}


def component_statuses(programme: ProgrammeRule, categories: Sequence[Mapping[str, Any]]
                       ) -> dict[str, tuple[str, str | None]]:
    """Status and since of every component the operator holds or held.

    A combined category's entry (AEOF) gives its status to components not listed on
    their own; an entry for a component itself always wins.
    """
    out: dict[str, tuple[str, str | None]] = {}
    for entry in categories:
        code = str(entry.get("code"))
        parts = programme.parts.get(code, (code,))
        if parts != (code,):
            for part in parts:
                out.setdefault(part, (str(entry.get("status")), entry.get("since")))
            out[code] = (str(entry.get("status")), entry.get("since"))
    for entry in categories:
        code = str(entry.get("code"))
        if programme.parts.get(code, (code,)) == (code,):
            out[code] = (str(entry.get("status")), entry.get("since"))
    return out


def _status_reasons(state: OperatorFacts, programme: ProgrammeRule, day: dt.date
                    ) -> list[Reason]:
    if state.annulled:
        return [Reason(rc.STATUS_ANNULLED, "the authorisation was annulled: it is treated as "
                       "never having existed (annulment is retroactive)")]
    reasons = []
    if not state.exists:
        began = f" (it began on {state.began.isoformat()})" if state.began else ""
        reasons.append(Reason(rc.NOT_YET_VALID, f"the authorisation did not exist on "
                              f"{day.isoformat()}{began}"))
        return reasons
    if not state.listed:
        reasons.append(Reason(rc.REMOVED_FROM_REGISTRY,
                              "the source registry no longer lists this operator"))
    if state.status and state.status != "valid":
        since = (f" since {state.status_effective.isoformat()}"
                 if state.status_effective else "")
        reasons.append(Reason(rc.status_code(state.status),
                              f"the authorisation is {state.status}{since}"))
    valid_from = state.details.get("valid_from")
    valid_until = state.details.get("valid_until")
    if isinstance(valid_from, dt.date) and day < valid_from:
        reasons.append(Reason(rc.NOT_YET_VALID, f"the authorisation is valid from "
                              f"{valid_from.isoformat()}"))
    if isinstance(valid_until, dt.date) and day > valid_until and state.status != "expired":
        reasons.append(Reason(rc.STATUS_EXPIRED, f"the authorisation was valid until "
                              f"{valid_until.isoformat()}"))
    if programme.consent_required and not state.consent_share:
        reasons.append(Reason(rc.NO_CONSENT, f"the operator has not consented to share its "
                              f"data with {programme.code}'s partners, which that programme "
                              "requires for MRA benefits"))
    return reasons


def _day_reasons(rule: DirectionRule, day: dt.date, flow: str) -> tuple[Reason, ...]:
    """Reasons of one direction that depend only on the day and the flow."""
    code = rule.arrangement
    reasons: list[Reason] = []
    inactive = rulebook.activity(rule, rule, day)
    if rulebook.NOT_IN_FORCE in inactive:
        status = rule.status_on(day)
        reasons.append(Reason(rc.ARRANGEMENT_NOT_IN_FORCE,
                              f"{code} is {status or 'not yet signed'} on {day.isoformat()}",
                              code))
    if rulebook.NO_START in inactive or rulebook.NOT_STARTED in inactive:
        when = (f"only from {rule.active_from.isoformat()}" if rule.active_from
                else "from a date not yet set")
        reasons.append(Reason(rc.NOT_YET_ACTIVE, f"under {code}, {rule.recognising} "
                              f"recognises {rule.recognised} AEOs {when}", code))
    elif rulebook.ENDED in inactive:
        assert rule.active_until is not None
        reasons.append(Reason(rc.NOT_YET_ACTIVE, f"under {code}, {rule.recognising} "
                              f"recognised {rule.recognised} AEOs until "
                              f"{rule.active_until.isoformat()}", code))
    if not rulebook.covers_flow(rule.flows, flow):
        reasons.append(Reason(rc.FLOW_NOT_COVERED, f"under {code}, {rule.recognising} grants "
                              f"benefits on {', '.join(rule.flows) or 'no'} flows, not {flow}",
                              code))
    return tuple(reasons)


def _category_reasons(rule: DirectionRule, programme: ProgrammeRule,
                      components: Mapping[str, tuple[str, str | None]], overall_valid: bool,
                      tiers: Mapping[str, str | None] | None = None
                      ) -> tuple[list[Reason], tuple[str, ...]]:
    """Reasons of one direction that depend on the operator's components."""
    code = rule.arrangement
    reasons: list[Reason] = []
    held = [c for c in rule.categories
            if all(components.get(p, ("", None))[0] == "valid"
                   for p in programme.parts.get(c, (c,)))]
    # Drop a code that is a component of another recognised code (AEOS under AEOF).
    recognised = tuple(c for c in held if not any(
        c != other and c in programme.parts.get(other, ()) for other in held))
    if not recognised:
        lost: list[tuple[str, tuple[str, str | None]]] = []
        for category in rule.categories:
            parts = programme.parts.get(category, (category,))
            if all(p in components for p in parts):
                lost.extend((p, components[p]) for p in parts if components[p][0] != "valid")
        if lost and overall_valid:
            for part, (part_status, since) in dict(lost).items():
                when = f" since {since}" if since else ""
                reasons.append(Reason(rc.status_code(part_status),
                                      f"component {part} is {part_status}{when}; {code} "
                                      f"recognises {', '.join(rule.categories)}", code))
        elif not lost:
            holds = ", ".join(sorted(c for c, s in components.items() if s[0] == "valid")
                              ) or "no valid category"
            reasons.append(Reason(rc.CATEGORY_OUT_OF_SCOPE,
                                  f"{rule.recognising} recognises {rule.recognised} "
                                  f"{', '.join(rule.categories) or 'no categories'} under "
                                  f"{code}; the operator holds {holds}", code))
    tiers = tiers or {}
    if rule.tiers and recognised and not any(tiers.get(c) in rule.tiers for c in recognised):
        holding = ", ".join(f"{c} {tiers.get(c) or 'without a tier'}" for c in recognised)
        reasons.append(Reason(rc.TIER_NOT_RECOGNISED,
                              f"under {code}, {rule.recognising} recognises "
                              f"{rule.recognised} {', '.join(rule.categories)} of tiers "
                              f"{', '.join(rule.tiers)} only; the operator holds {holding}",
                              code))
        recognised = ()
    return reasons, recognised


def _dedupe(reasons: Iterable[Reason]) -> list[Reason]:
    seen: set[tuple[str, str]] = set()
    out = []
    for reason in reasons:
        if (reason.code, reason.message) not in seen:
            seen.add((reason.code, reason.message))
            out.append(reason)
    return out


#: What the categories of an operator come to for one programme's directions:
#: (recognitions when the authorisation itself is in order, the directions' reasons).
_Outcome = tuple[tuple["Recognition", ...], tuple[Reason, ...]]


def categories_key(categories: Iterable[Mapping[str, Any]]) -> tuple[Any, ...]:
    """A hashable key of the facts of `categories` that recognition reads: the code,
    status and tier of each, and since when for those not valid (only their reasons quote
    it)."""
    return tuple((c.get("code"), c.get("status"),
                  None if c.get("status") == "valid" else c.get("since"), c.get("tier"))
                 for c in categories)


_EVALUATORS: dict[tuple[Any, ...], Evaluator] = {}
_EVALUATORS_KEPT = 256


class Evaluator:
    """`evaluate` for many operators on one day, flow and recognising programme.

    The day-dependent facts of every direction (arrangement status, activation, flow) are
    worked out once per recognised programme, and the category-dependent outcome once per
    distinct set of categories: a batch of 10,000 operators holding a handful of category
    combinations builds a handful of reason lists.
    """

    def __init__(self, snapshot: CachedReference, recognising: str, day: dt.date,
                 flow: str) -> None:
        self.snapshot = snapshot
        self.recognising = recognising
        self.day = day
        self.flow = flow
        self._days: dict[str, tuple[tuple[DirectionRule, tuple[Reason, ...]], ...]] = {}
        self._outcomes: dict[tuple[Any, ...], _Outcome] = {}

    @classmethod
    def shared(cls, snapshot: CachedReference, recognising: str, day: dt.date,
               flow: str) -> Evaluator:
        """The evaluator of this snapshot, programme, day and flow, kept across calls:
        single look-ups asking about the same day reuse its worked-out outcomes (they are
        immutable; `evaluate` hands out copies)."""
        key = (id(snapshot), recognising, day, flow)
        found = _EVALUATORS.get(key)
        if found is None or found.snapshot is not snapshot:
            if len(_EVALUATORS) >= _EVALUATORS_KEPT:
                _EVALUATORS.clear()
            found = _EVALUATORS[key] = cls(snapshot, recognising, day, flow)
        return found

    def _rules(self, programme: ProgrammeRule
               ) -> tuple[tuple[DirectionRule, tuple[Reason, ...]], ...]:
        rules = self._days.get(programme.code)
        if rules is None:
            rules = tuple((rule, _day_reasons(rule, self.day, self.flow)) for rule in
                          self.snapshot.directions.get((self.recognising, programme.code), ()))
            self._days[programme.code] = rules
        return rules

    def _outcome(self, programme: ProgrammeRule, rules: Sequence[
            tuple[DirectionRule, tuple[Reason, ...]]], state: OperatorFacts,
                 key: tuple[Any, ...] | None) -> _Outcome:
        overall_valid = state.status == "valid"
        full_key = (programme.code, overall_valid,
                    key if key is not None else categories_key(state.categories))
        outcome = self._outcomes.get(full_key)
        if outcome is None:
            components = component_statuses(programme, state.categories)
            found: list[Recognition] = []
            problems: list[Reason] = []
            for rule, day_reasons in rules:
                reasons, categories = _category_reasons(
                    rule, programme, components, overall_valid,
                    {str(c.get("code")): c.get("tier") for c in state.categories})
                if not day_reasons and not reasons:
                    found.append(Recognition(rule.arrangement, rule.title, categories,
                                             rule.benefits, rule.flows, rule.active_from))
                problems.extend(day_reasons)
                problems.extend(reasons)
            outcome = (tuple(found), tuple(_dedupe(problems)))
            self._outcomes[full_key] = outcome
        return outcome

    def evaluate(self, programme: ProgrammeRule, state: OperatorFacts,
                 categories: tuple[Any, ...] | None = None
                 ) -> tuple[list[Recognition], list[Reason]]:
        """Arrangements recognising the operator, or the reasons why none does.

        `categories` is `categories_key(state.categories)` when the caller has it.
        """
        reasons = _status_reasons(state, programme, self.day)
        rules = self._rules(programme)
        if not rules:
            reasons.append(Reason(rc.NO_ARRANGEMENT, f"no arrangement has {self.recognising} "
                                  f"recognising {programme.code} AEOs"))
            return [], reasons
        if not state.exists:
            return [], reasons
        found, problems = self._outcome(programme, rules, state, categories)
        if found and not reasons:
            return list(found), []
        if not reasons:
            return [], list(problems)
        return [], _dedupe([*reasons, *problems])


def evaluate(snapshot: CachedReference, recognising: str, programme: ProgrammeRule,
             state: OperatorFacts, day: dt.date, flow: str
             ) -> tuple[list[Recognition], list[Reason]]:
    """Arrangements recognising the operator on `day`, or the reasons why none does."""
    return Evaluator(snapshot, recognising, day, flow).evaluate(programme, state)
