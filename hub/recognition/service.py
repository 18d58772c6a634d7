"""verify: is this trader recognised by programme R, on this day, for this flow, and why?

`verify_many` answers any number of references with a handful of queries: identifiers are
looked up per scheme in chunks, operators are read in one pass (plain rows, not ORM
objects), their states come from `hub.registry.service.states_on` (current rows when the
day allows, history otherwise), and arrangements from the cached reference snapshot.
`verify` is `verify_many` of one reference.

The answer's `data_version` is when the operator's programme last synced successfully
(for an unknown trader, the oldest among the synced programmes R recognises); it is
`stale` when older than `staleness_seconds` (default: the app's
`DEFAULT_STALENESS_SECONDS`) or unknown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.default import DEFAULT_STALENESS_SECONDS
from hub.db import utcnow
from hub.errors import InvalidInput, NotFound
from hub.identifiers import IdentifierError
from hub.recognition import reasons as rc
from hub.recognition.matching import (
    DEFAULT_SETTINGS,
    Candidate,
    MatchResult,
    MatchSettings,
    combine,
    compare,
    decide,
    identifier_hits,
    identifier_result,
    match_index,
    normalise_reference_identifier,
    prepare,
    score_candidates,
    summaries_of,
)
from hub.recognition.reasons import Reason
from hub.recognition.reference import TraderReference
from hub.recognition.rules import Recognition, ReferenceSnapshot, evaluate, reference_snapshot
from hub.registry.history import OperatorState
from hub.registry.models import Operator, Programme
from hub.registry.service import states_on

FLOWS = ("import", "export")
DECISIONS = ("recognised", "not_recognised", "unknown_trader", "ambiguous")


@dataclass
class Decision:
    """The answer to one verify question; `to_dict` gives the API/CLI fields."""

    decision: str
    recognising_programme: str
    day: dt.date
    flow: str
    known_at: dt.datetime | None
    reference: TraderReference
    operator: dict[str, Any] | None = None
    candidates: list[Candidate] = field(default_factory=list)
    arrangements: list[Recognition] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    data_version: dt.datetime | None = None
    data_age_seconds: int | None = None
    stale: bool = True

    @property
    def reason_codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "recognising_programme": self.recognising_programme,
            "date": self.day.isoformat(),
            "flow": self.flow,
            "known_at": self.known_at.isoformat() if self.known_at else None,
            "reference": self.reference.to_dict(),
            "operator": self.operator,
            "candidates": [c.to_dict() for c in self.candidates],
            "arrangements": [a.to_dict() for a in self.arrangements],
            "reasons": [r.to_dict() for r in self.reasons],
            "data_version": self.data_version.isoformat() if self.data_version else None,
            "data_age_seconds": self.data_age_seconds,
            "stale": self.stale,
        }


def verify(session: Session, reference: TraderReference, recognising_programme_code: str,
           day: dt.date | None = None, flow: str = "import",
           known_at: dt.datetime | None = None, *,
           staleness_seconds: int = DEFAULT_STALENESS_SECONDS, now: dt.datetime | None = None,
           settings: MatchSettings = DEFAULT_SETTINGS) -> Decision:
    """Is `reference` recognised by `recognising_programme_code` on `day` for `flow`,
    as the hub knew things at `known_at` (default: now)?"""
    return verify_many(session, [reference], recognising_programme_code, day, flow, known_at,
                       staleness_seconds=staleness_seconds, now=now, settings=settings)[0]


def _check_inputs(snapshot: ReferenceSnapshot, references: Sequence[TraderReference],
                  recognising: str, flow: str, known_at: dt.datetime | None) -> None:
    if recognising not in snapshot.programmes:
        raise NotFound(f"programme {recognising} does not exist",
                       fields={"programme": "unknown"})
    fields: dict[str, str] = {}
    if flow not in FLOWS:
        fields["flow"] = f"one of {', '.join(FLOWS)}"
    if known_at is not None and known_at.tzinfo is None:
        fields["known_at"] = "a timezone-aware time"
    for position, reference in enumerate(references):
        try:
            reference.check()
        except InvalidInput as exc:
            prefix = "" if len(references) == 1 else f"references.{position}."
            for name, messages in exc.fields.items():
                fields[prefix + name] = messages[0]
    if fields:
        raise InvalidInput("the verify request is invalid", fields=fields)


def _resolve(session: Session, snapshot: ReferenceSnapshot, references: Sequence[TraderReference],
             recognising: str, settings: MatchSettings) -> list[MatchResult]:
    """Identity resolution for every reference: identifiers in bulk, then names."""
    recognised_codes = set(snapshot.recognised_by(recognising))
    recognised_ids = {snapshot.programmes[c].id for c in recognised_codes}
    normalised: list[tuple[str, str] | None] = []
    results: list[MatchResult | None] = []
    for reference in references:
        if not reference.has_identifier:
            normalised.append(None)
            results.append(None)
            continue
        try:
            normalised.append(normalise_reference_identifier(reference))
            results.append(None)
        except IdentifierError as exc:
            normalised.append(None)
            results.append(MatchResult("no_match", [], None, [Reason(
                rc.INVALID_IDENTIFIER,
                f"{reference.scheme} {reference.value!r} is not valid: {exc}")]))
    pairs = {p for p in normalised if p is not None}
    hits = identifier_hits(session, pairs) if pairs else {}
    missing_mids = {p for p in pairs if p[0] == "MID" and p not in hits}
    hints = identifier_hits(session, missing_mids, declared=False) if missing_mids else {}
    programme_of: dict[int, int] = {}
    multi = {i for ids in hits.values() if len(ids) > 1 for i in ids}
    if multi:
        programme_of = dict(session.execute(select(Operator.id, Operator.programme_id)
                                            .where(Operator.id.in_(sorted(multi)))).tuples().all())
    summaries = summaries_of(session, [i for group in (*hits.values(), *hints.values())
                                       for i in group])
    index = None
    out: list[MatchResult] = []
    for reference, pair, early in zip(references, normalised, results, strict=True):
        result = early
        if result is None and pair is not None:
            ids = hits.get(pair, [])
            if len(ids) > 1:
                # One identifier, several programmes: keep those the recogniser recognises.
                preferred = [i for i in ids if programme_of.get(i) in recognised_ids]
                ids = preferred if len(preferred) == 1 else ids
            result = identifier_result(session, pair[0], pair[1], ids, hints.get(pair, []),
                                       summaries)
        if reference.has_name:
            index = index or match_index(session, settings)
            query = prepare(reference.name, reference.street, reference.city,
                            reference.postcode, reference.country)
            by_name = decide(session, index, score_candidates(
                index, query, settings, recognised_ids or None), settings)
            if result is None:
                result = by_name
            else:
                own = None
                if result.best is not None and result.best.operator_id in index.position:
                    position = index.position[result.best.operator_id]
                    score, features, explanation = compare(query, index.items[position],
                                                           settings)
                    own = Candidate(result.best.operator_id, result.best.programme,
                                    result.best.stable_key, result.best.legal_name, score,
                                    "name_address", features.to_dict(), explanation)
                result = combine(result, by_name, own, settings)
        assert result is not None
        out.append(result)
    return out


def _operator_rows(session: Session, ids: Sequence[int]) -> dict[int, Any]:
    rows: dict[int, Any] = {}
    columns = list(Operator.__table__.c)
    unique = sorted(set(ids))
    for start in range(0, len(unique), 900):
        chunk = unique[start:start + 900]
        for row in session.execute(select(*columns).where(Operator.id.in_(chunk))):
            rows[row.id] = row
    return rows


def _operator_view(row: Any, programme: str, state: OperatorState | None) -> dict[str, Any]:
    details = state.details if state is not None else {}
    return {
        "id": row.id,
        "programme": programme,
        "stable_key": row.stable_key,
        "authorisation_number": details.get("authorisation_number") or row.authorisation_number,
        "trader_id_scheme": row.trader_id_scheme,
        "trader_id": row.trader_id,
        "legal_name": details.get("legal_name") or row.legal_name,
        "street": details.get("street", row.street),
        "city": details.get("city", row.city),
        "postcode": details.get("postcode", row.postcode),
        "country": details.get("country") or row.country,
        "status": state.status if state is not None else None,
        "categories": [dict(c) for c in state.categories] if state is not None else [],
    }


def verify_many(session: Session, references: Sequence[TraderReference],
                recognising_programme_code: str, day: dt.date | None = None,
                flow: str = "import", known_at: dt.datetime | None = None, *,
                staleness_seconds: int = DEFAULT_STALENESS_SECONDS,
                now: dt.datetime | None = None,
                settings: MatchSettings = DEFAULT_SETTINGS) -> list[Decision]:
    """`verify` for many references at once (same programme, day, flow and known-at)."""
    now = now or utcnow()
    day = day or now.date()
    recognising = recognising_programme_code
    snapshot = reference_snapshot(session)
    _check_inputs(snapshot, references, recognising, flow, known_at)
    results = _resolve(session, snapshot, references, recognising, settings)
    ids = [r.best.operator_id for r in results if r.decision == "match" and r.best]
    rows = _operator_rows(session, ids)
    states = states_on(session, cast(Sequence[Operator], list(rows.values())), day, known_at)
    versions = dict(session.execute(select(Programme.id, Programme.data_version))
                    .tuples().all())
    synced = [versions[snapshot.programmes[c].id] for c in snapshot.recognised_by(recognising)
              if versions.get(snapshot.programmes[c].id) is not None]
    fallback_version = min(synced) if synced else None  # type: ignore[type-var]

    def freshness(version: dt.datetime | None) -> tuple[int | None, bool]:
        if version is None:
            return None, True
        age = int((now - version).total_seconds())
        return age, age > staleness_seconds

    decisions = []
    for reference, result in zip(references, results, strict=True):
        decision = Decision("unknown_trader", recognising, day, flow, known_at, reference)
        decision.data_version = fallback_version
        if result.decision == "ambiguous":
            decision.decision = "ambiguous"
            decision.candidates = result.candidates
            decision.reasons = result.reasons
        elif result.decision == "no_match" or result.best is None:
            decision.reasons = result.reasons
            decision.candidates = [c for c in result.candidates if c.via == "derived_mid"]
        else:
            row = rows[result.best.operator_id]
            programme = snapshot.by_id[row.programme_id]
            state = states.get(row.id)
            decision.data_version = versions.get(row.programme_id)
            if state is None:
                decision.reasons = [Reason(rc.NOT_KNOWN_AT, "the hub did not know this "
                                           "operator at the time asked about")]
            else:
                decision.operator = _operator_view(row, programme.code, state)
                found, reasons = evaluate(snapshot, recognising, programme, state, day, flow)
                decision.decision = "recognised" if found else "not_recognised"
                decision.arrangements = found
                decision.reasons = reasons
        decision.data_age_seconds, decision.stale = freshness(decision.data_version)
        decisions.append(decision)
    return decisions
