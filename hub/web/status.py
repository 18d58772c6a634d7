"""Company status: find a published authorisation and say where it is recognised.

`find_published` resolves what a company typed (an authorisation number, an EORI or
TCUIN, or a MID it linked) to the operators that consent to publication; anything else
gives an empty list, and the page then shows one neutral answer whatever the reason, so
that the page cannot be used to learn who holds an unpublished authorisation.

`company_status` gathers, for one published operator: its programme and categories, each
partner programme that recognises or does not recognise it (with recognition's own
reasons, through `hub.recognition.service.verify`), and, for each administration where its
goods may be declared, the exact code to declare there (`hub.recognition.crosswalk`).

`answers` then puts them in the order a reader needs them: one line per partner
administration (recognised or not, since when, the code to declare and where). It only
arranges what those services answered; whether a direction is active on a day is asked of
the rulebook (`DirectionRule.active_on`), never worked out here. An administration appears
only while an arrangement recognises the holder's programme there, or will from a known
date: an arrangement that is signed without a date, suspended or ended is left out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import clock
from hub.errors import HubError
from hub.identifiers import IdentifierError, normalise_reference
from hub.recognition.crosswalk import crosswalk
from hub.recognition.reasons import FLOW_NOT_COVERED
from hub.recognition.rules import CachedReference, DirectionRule, cached_reference
from hub.recognition.service import verify
from hub.recognition.trader import DeclaredTrader
from hub.registry.models import Administration, Operator, OperatorIdentifier, Programme
from hub.registry.service import find_by_identifier

#: Schemes a company may look itself up by (besides the authorisation number).
LOOKUP_SCHEMES = ("EORI", "TCUIN", "MID")
FLOWS = ("import", "export")
MAX_QUERY_LENGTH = 64


@dataclass
class CategoryView:
    code: str
    description: str
    status: str
    since: str | None


@dataclass
class RecognitionView:
    arrangement: str
    title: str
    categories: list[str]
    flows: list[str]
    benefits: list[str]
    since: dt.date | None


@dataclass
class PartnerView:
    """One partner programme and what it does for the operator."""

    programme: str
    name: str
    administration: str
    recognised: bool
    direction: str
    recognitions: list[RecognitionView] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


@dataclass
class DeclarationView:
    """What to declare for the operator in one administration."""

    administration: str
    name: str
    codes: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    arrangements: list[str] = field(default_factory=list)


#: What an authorisation's status means for its holder's partners, in plain words.
STATUS_MEANINGS = {
    "valid": "The authorisation is in effect: partners grant their benefits.",
    "suspended": "The authorisation is suspended: partners grant no benefits until the "
                 "suspension ends.",
    "revoked": "The customs administration withdrew the authorisation: partners grant no "
               "benefits.",
    "annulled": "The authorisation was annulled: it is treated as never having existed.",
    "expired": "The authorisation's validity period has ended.",
    "withdrawn": "The holder gave the authorisation up.",
}

#: What each answer on a partner line means.
ANSWER_MEANINGS = {
    "recognised": "The partner's customs grant this authorisation their AEO benefits today, "
                  "when the declaration carries the code shown.",
    "not_recognised": "An arrangement is in force with the partner, but this authorisation "
                      "does not qualify today (the reason is given).",
    "upcoming": "The arrangement is signed and its start date is known: recognition begins "
                "on that date.",
}


@dataclass
class AnswerLine:
    """One partner administration, answer first: recognised or not, since when, and the
    code to declare there."""

    administration: str
    name: str
    state: str  # a key of ANSWER_MEANINGS
    since: dt.date | None  # recognised since, or (upcoming) from
    own_categories: list[str] = field(default_factory=list)  # the holder's own, e.g. AEOS
    codes: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    arrangements: list[str] = field(default_factory=list)  # titles
    flows: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


@dataclass
class CompanyStatus:
    operator_id: int
    legal_name: str
    city: str | None
    country: str
    authorisation_number: str
    trader_id_scheme: str
    trader_id: str
    linked_mids: list[str]
    programme: str
    programme_name: str
    administration: str
    status: str
    status_effective: dt.date | None
    valid_until: dt.date | None
    categories: list[CategoryView]
    partners: list[PartnerView]
    declarations: list[DeclarationView]
    data_version: dt.datetime | None
    day: dt.date
    answers: list[AnswerLine] = field(default_factory=list)
    benefits: list[str] = field(default_factory=list)

    @property
    def status_meaning(self) -> str:
        return STATUS_MEANINGS.get(self.status, "")


def _normalised(scheme: str, text: str) -> str | None:
    # What a company typed is a reference, as a partner's declaration is: whitespace is
    # presentation in every scheme, the MID's included ("Spaces do not matter").
    try:
        return normalise_reference(scheme, text)
    except (IdentifierError, ValueError):
        return None


def find_published(session: Session, text: str) -> list[Operator]:
    """Published, listed operators matching an authorisation number, EORI/TCUIN or
    linked MID; [] for anything else (unknown, unpublished, removed, malformed)."""
    compact = "".join(text.split()).upper()
    if not compact or len(compact) > MAX_QUERY_LENGTH:
        return []
    numbers = {compact}
    eu_number = _normalised("EU_AEO", text)
    if eu_number:
        numbers.add(eu_number)
    found: dict[int, Operator] = {
        o.id: o for o in session.scalars(
            select(Operator).where(Operator.authorisation_number.in_(sorted(numbers))))}
    for scheme in LOOKUP_SCHEMES:
        value = _normalised(scheme, text)
        if value:
            found.update((o.id, o) for o in find_by_identifier(session, scheme, value))
    return [o for _id, o in sorted(found.items())
            if o.consent_publish and o.removed_at is None]


def _since(direction_from: dt.date | None, categories: list[str],
           held: dict[str, CategoryView]) -> dt.date | None:
    dates = [direction_from] if direction_from else []
    starts = []
    for code in categories:
        view = held.get(code)
        if view is not None and view.since:
            try:
                starts.append(dt.date.fromisoformat(view.since))
            except ValueError:
                continue
    if starts:
        dates.append(min(starts))
    return max(dates) if dates else None


def _partners(session: Session, operator: Operator, snapshot: CachedReference,
              day: dt.date, held: dict[str, CategoryView], names: dict[str, Programme]
              ) -> list[PartnerView]:
    programme = operator.programme
    recognising_codes = sorted({a for (a, b) in snapshot.directions if b == programme.code})
    reference = DeclaredTrader(scheme=operator.trader_id_scheme, value=operator.trader_id)
    partners = []
    for code in recognising_codes:
        partner = names.get(code)
        rule = snapshot.programmes[code]
        view = PartnerView(
            programme=code, name=partner.name if partner else code,
            administration=rule.administration, recognised=False,
            direction=f"{code} ({rule.administration}) recognises {programme.code} AEOs")
        recognitions: dict[str, RecognitionView] = {}
        reasons: list[str] = []
        for flow in FLOWS:
            try:
                decision = verify(session, reference, code, day, flow)
            except HubError as exc:
                reasons.append(exc.detail)
                continue
            if decision.operator is None or decision.operator.get("id") != operator.id:
                reasons.append("the hub could not resolve this authorisation unambiguously")
                continue
            for found in decision.arrangements:
                if found.arrangement not in recognitions:
                    recognitions[found.arrangement] = RecognitionView(
                        found.arrangement, found.title, list(found.categories),
                        list(found.flows), list(found.benefits),
                        _since(found.active_from, list(found.categories), held))
            # A flow the direction does not cover is no obstacle worth showing: had the
            # other flow passed, the partner would be listed as recognising.
            reasons.extend(r.message for r in decision.reasons
                           if r.code != FLOW_NOT_COVERED)
        view.recognitions = list(recognitions.values())
        view.recognised = bool(recognitions)
        if not view.recognised:
            view.reasons = list(dict.fromkeys(reasons))
        partners.append(view)
    partners.sort(key=lambda p: (not p.recognised, p.programme))
    return partners


def _declarations(session: Session, operator: Operator, snapshot: CachedReference,
                  admin_names: dict[str, str], day: dt.date) -> list[DeclarationView]:
    programme = operator.programme
    own = operator.programme.administration.code
    administrations = {snapshot.programmes[a].administration
                       for (a, b) in snapshot.directions if b == programme.code}
    administrations |= {str(e.get("declared_in")) for e in programme.declaration_codes or []
                        if e.get("declared_in") not in (None, "*")}
    views = []
    for code in sorted(administrations - {own}):
        try:
            answer = crosswalk(session, operator.id, code, day)
        except HubError:
            continue
        views.append(DeclarationView(code, admin_names.get(code, code), list(answer.codes),
                                     list(answer.warnings), list(answer.arrangements)))
    return views


def _first_active_day(rule: DirectionRule, day: dt.date) -> dt.date | None:
    """The first day after `day` on which the rulebook says `rule` is active, among the
    days its activity can change (a status step, its start date); None if none is known,
    or if the arrangement is not signed (or in force) on `day`."""
    if rule.status_on(day) not in ("signed", "in_force"):
        return None
    candidates = {effective for effective, _status in rule.statuses if effective > day}
    if rule.active_from is not None and rule.active_from > day:
        candidates.add(rule.active_from)
    return next((d for d in sorted(candidates) if rule.active_on(d)), None)


def _answers(status: CompanyStatus, snapshot: CachedReference, admin_names: dict[str, str],
             held: dict[str, CategoryView]) -> list[AnswerLine]:
    declarations = {d.administration: d for d in status.declarations}
    valid_own = [c for c in status.categories if c.status == "valid"]
    lines = []
    for administration in sorted({p.administration for p in status.partners}):
        rules = [rule for (recognising, recognised), found in snapshot.directions.items()
                 if recognised == status.programme
                 and snapshot.programmes[recognising].administration == administration
                 for rule in found]
        active = any(rule.active_on(status.day) for rule in rules)
        starts = [d for d in (_first_active_day(rule, status.day) for rule in rules) if d]
        if not active and not starts:
            continue  # signed without a date, suspended or ended: nothing to tell
        partners = [p for p in status.partners if p.administration == administration]
        recognitions = [(p, r) for p in partners for r in p.recognitions]
        declaration = declarations.get(administration)
        line = AnswerLine(administration, admin_names.get(administration, administration),
                          "not_recognised", None)
        if declaration is not None:
            line.codes, line.warnings = declaration.codes, declaration.warnings
        if recognitions:
            line.state = "recognised"
            dates = [r.since for _p, r in recognitions if r.since]
            line.since = min(dates) if dates else None
            scope = {c for p, r in recognitions for rule in rules
                     if rule.arrangement == r.arrangement and rule.recognising == p.programme
                     for c in rule.categories}
            own = [c for c in valid_own if c.code in scope] or [
                held[c] for _p, r in recognitions for c in r.categories if c in held]
            line.own_categories = list(dict.fromkeys(c.code for c in own))
            line.arrangements = list(dict.fromkeys(r.title for _p, r in recognitions))
            flows = {f for _p, r in recognitions for f in r.flows}
            line.flows = [f"{flow}s" for flow in FLOWS if flow in flows]
        elif not active:
            line.state = "upcoming"
            line.since = min(starts)
            line.arrangements = list(dict.fromkeys(rule.title for rule in rules
                                                   if _first_active_day(rule, status.day)))
        else:
            line.reasons = list(dict.fromkeys(r for p in partners for r in p.reasons))
            line.arrangements = list(dict.fromkeys(rule.title for rule in rules
                                                   if rule.active_on(status.day)))
        lines.append(line)
    order = {"recognised": 0, "upcoming": 1, "not_recognised": 2}
    lines.sort(key=lambda a: (order[a.state], a.name))
    return lines


def company_status(session: Session, operator: Operator, day: dt.date | None = None
                   ) -> CompanyStatus:
    """Everything the public page shows about one published operator."""
    day = day or clock.now().date()
    programme = operator.programme
    descriptions = {str(c["code"]): str(c.get("description") or c["code"])
                    for c in programme.categories or []}
    categories = [CategoryView(str(c.get("code")), descriptions.get(str(c.get("code")), ""),
                               str(c.get("status")), c.get("since"))
                  for c in operator.categories or []]
    held = {c.code: c for c in categories}
    mids = sorted(session.scalars(select(OperatorIdentifier.value).where(
        OperatorIdentifier.operator_id == operator.id, OperatorIdentifier.scheme == "MID",
        OperatorIdentifier.origin == "declared", OperatorIdentifier.linked.is_(True))))
    status = CompanyStatus(
        operator_id=operator.id, legal_name=operator.legal_name, city=operator.city,
        country=operator.country, authorisation_number=operator.authorisation_number,
        trader_id_scheme=operator.trader_id_scheme, trader_id=operator.trader_id,
        linked_mids=mids, programme=programme.code, programme_name=programme.name,
        administration=programme.administration.code, status=operator.status,
        status_effective=operator.status_effective, valid_until=operator.valid_until,
        categories=categories, partners=[], declarations=[],
        data_version=programme.data_version, day=day)
    snapshot = cached_reference(session)
    names = {p.code: p for p in session.scalars(select(Programme))}
    admin_names = {str(code): str(name) for code, name in session.execute(
        select(Administration.code, Administration.name))}
    status.partners = _partners(session, operator, snapshot, day, held, names)
    status.declarations = _declarations(session, operator, snapshot, admin_names, day)
    status.answers = _answers(status, snapshot, admin_names, held)
    status.benefits = list(dict.fromkeys(
        b for p in status.partners for r in p.recognitions for b in r.benefits))
    return status
