"""Identity resolution: which operator(s) a trader reference names, decided and explained.

Identifiers come first (normalised; only declared, linked identifiers identify: a MID the
hub derived is a hint, never proof). Names and addresses come next, scored by
`hub.recognition.scoring`.

A candidate identifies the trader when its score reaches `accept`, its name feature
`min_name`, its address does not conflict, and, unless the address agrees, its name
reaches `strong_name`. A rival whose address conflicts is another site, not a doubt;
when another candidate is within `margin` of the best and is not the same
company (a shared declared identifier, a human "same" judgement, or a cross-programme
score above `link`, unless a human said "different": `hub.recognition.entities`), the
answer is `ambiguous`. Both `match` and verify (`hub.recognition.service`) decide names
through `add_name_and_address`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.identifiers import (
    IdentifierError,
    is_known_scheme,
    normalise_reference,
)
from hub.recognition import reasons as rc
from hub.recognition.entities import same_company_pairs
from hub.recognition.reasons import Reason
from hub.recognition.scoring import (
    AGREES,
    CONFLICTS,
    DEFAULT_SETTINGS,
    UNKNOWN,
    Candidate,
    MatchIndex,
    MatchResult,
    MatchSettings,
    compare,
    match_index,
    prepare,
    score_candidates,
)
from hub.recognition.trader import DeclaredTrader
from hub.registry.models import Operator, OperatorIdentifier, Programme

# --------------------------------------------------------------------------- identifiers


def normalise_reference_identifier(reference: DeclaredTrader) -> tuple[str, str]:
    """(scheme, normalised value); raises `IdentifierError` for a malformed value."""
    assert reference.scheme is not None and reference.value is not None
    scheme = reference.scheme.strip().upper()
    if not is_known_scheme(scheme):
        # As the sync stores them: schemes without rules are compared without spaces.
        return scheme, "".join(reference.value.split()).upper()
    return scheme, normalise_reference(scheme, reference.value)


def identifier_hits(session: Session, pairs: Collection[tuple[str, str]], *,
                    declared: bool = True) -> dict[tuple[str, str], list[int]]:
    """Operator ids per (scheme, value), a few queries for any number of pairs.

    `declared=True`: only declared, linked identifiers (those that identify);
    `declared=False`: only derived ones (hints).
    """
    by_scheme: dict[str, list[str]] = {}
    for scheme, value in pairs:
        by_scheme.setdefault(scheme, []).append(value)
    hits: dict[tuple[str, str], list[int]] = {}
    for scheme, values in sorted(by_scheme.items()):
        unique = sorted(set(values))
        for start in range(0, len(unique), 900):
            chunk = unique[start:start + 900]
            query = select(OperatorIdentifier.value, OperatorIdentifier.operator_id).where(
                OperatorIdentifier.scheme == scheme, OperatorIdentifier.value.in_(chunk))
            if declared:
                query = query.where(OperatorIdentifier.origin == "declared",
                                    OperatorIdentifier.linked.is_(True))
            else:
                query = query.where(OperatorIdentifier.origin == "derived")
            for value, operator_id in session.execute(query):
                ids = hits.setdefault((scheme, value), [])
                if operator_id not in ids:
                    ids.append(operator_id)
    for ids in hits.values():
        ids.sort()
    return hits


# --------------------------------------------------------------------------- matching


def _accepted(candidate: Candidate, settings: MatchSettings) -> bool:
    """Does the candidate identify the trader? Score and name high enough, the address
    not in conflict, and, when the address agrees only partly (or cannot be compared),
    a name that agrees almost fully."""
    features = candidate.features
    name = features.get("name", 0.0)
    address = features.get("address", UNKNOWN)
    if candidate.score < settings.accept or name < settings.min_name or address == CONFLICTS:
        return False
    return bool(address == AGREES or name >= settings.strong_name)


def decide(session: Session, index: MatchIndex, candidates: list[Candidate],
           settings: MatchSettings) -> MatchResult:
    """Turn scored candidates into a decision, linking candidates of one company."""
    best = next((c for c in candidates if _accepted(c, settings)), None)
    if best is None:
        best_score = candidates[0].score if candidates else 0.0
        why = ""
        if candidates and candidates[0].features.get("address") == CONFLICTS:
            why = "; the best candidate's address differs"
        elif candidates and best_score >= settings.accept:
            why = "; the address agrees too little for how much the name differs"
        # The message names no score: term weights are worked out over the whole
        # registry, so a score would say something about operators the asker cannot see.
        return MatchResult("no_match", candidates, None, [Reason(
            rc.NO_MATCH, f"no operator matches the name and address well enough "
            f"(a score of {settings.accept:.2f} is needed{why})")])
    # A rival whose address conflicts with the reference's is another site, not a doubt.
    close = [c for c in candidates if c is not best and best.score - c.score < settings.margin
             and c.features.get("address") != CONFLICTS]
    if close:
        linked = same_company_pairs(session, index, [best, *close], settings)
        for candidate in close:
            if (best.operator_id, candidate.operator_id) in linked:
                best.same_company_as.append(candidate.operator_id)
                candidate.same_company_as.append(best.operator_id)
        rivals = [c for c in close if c.operator_id not in best.same_company_as]
        if rivals:
            names = ", ".join(f"{c.legal_name} ({c.programme}, {c.score:.2f})"
                              for c in [best, *rivals])
            return MatchResult("ambiguous", candidates, None, [Reason(
                rc.AMBIGUOUS_MATCH, f"candidates too close to call: {names}")])
    return MatchResult("match", candidates, best, [])


#: Which of some operator ids an asker may see (a partner's view: `hub.auth.policy`).
Scope = Callable[[Iterable[int]], Collection[int]]


def match(session: Session, reference: DeclaredTrader, limit: int = 10, *,
          settings: MatchSettings = DEFAULT_SETTINGS,
          programmes: Collection[str] | None = None, scope: Scope | None = None
          ) -> MatchResult:
    """Scored, explained candidates for `reference` (identifier first, then name+address).

    `programmes` limits the candidates to operators of those programme codes; `scope` to
    the operators it keeps, before anything is decided or cut to `limit`, so that an
    operator outside it changes nothing in the answer.
    """
    reference.check()
    result: MatchResult | None = None
    programme_ids = _programme_ids(session, programmes)
    if reference.has_identifier:
        result = _match_identifier(session, reference, programme_ids, scope)
    if reference.has_name:
        result = add_name_and_address(session, match_index(session, settings), reference,
                                      result, settings, programme_ids, scope)
    assert result is not None
    result.candidates = result.candidates[:limit]
    return result


def add_name_and_address(session: Session, index: MatchIndex, reference: DeclaredTrader,
                         identified: MatchResult | None, settings: MatchSettings,
                         programme_ids: Collection[int] | None, scope: Scope | None
                         ) -> MatchResult:
    """The decision for a reference that gives a name: candidates by name and address
    (of `programme_ids`, kept by `scope`), combined with what its identifier found
    (`identified`; None when it gives none). `match` and verify both resolve names here.
    """
    query = prepare(reference.name, reference.street, reference.city, reference.postcode,
                    reference.country)
    scored = score_candidates(index, query, settings, programme_ids)
    if scope is not None:
        kept = scope(c.operator_id for c in scored)
        scored = [c for c in scored if c.operator_id in kept]
    by_name = decide(session, index, scored, settings)
    if identified is None:
        return by_name
    own = None
    best = identified.best
    if best is not None and best.operator_id in index.position:
        score, features, explanation = compare(query, index.items[index.position[best.operator_id]],
                                               settings, index.idf)
        own = replace(best, score=score, via="name_address", features=features.to_dict(),
                      explanation=explanation)
    return combine(identified, by_name, own, settings)


def _programme_ids(session: Session, programmes: Collection[str] | None
                   ) -> set[int] | None:
    if programmes is None:
        return None
    return set(session.scalars(select(Programme.id).where(Programme.code.in_(list(programmes)))))


def summaries_of(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
    """(programme code, stable key, legal name) per operator id."""
    out: dict[int, tuple[str, str, str]] = {}
    unique = sorted(set(ids))
    for start in range(0, len(unique), 900):
        rows = session.execute(select(Operator.id, Programme.code, Operator.stable_key,
                                      Operator.legal_name)
                               .join(Programme, Programme.id == Operator.programme_id)
                               .where(Operator.id.in_(unique[start:start + 900])))
        out.update({r[0]: (r[1], r[2], r[3]) for r in rows})
    return out


def _match_identifier(session: Session, reference: DeclaredTrader,
                      programme_ids: Collection[int] | None, scope: Scope | None = None
                      ) -> MatchResult:
    try:
        scheme, value = normalise_reference_identifier(reference)
    except IdentifierError as exc:
        return MatchResult("no_match", [], None, [Reason(
            rc.INVALID_IDENTIFIER, f"{reference.scheme} {reference.value!r} is not valid: {exc}")])
    ids = identifier_hits(session, [(scheme, value)]).get((scheme, value), [])
    if programme_ids is not None and ids:
        allowed = set(session.scalars(select(Operator.id).where(
            Operator.id.in_(ids), Operator.programme_id.in_(list(programme_ids)))))
        ids = [i for i in ids if i in allowed]
    hints: list[int] | None = None  # looked up by identifier_result
    if scope is not None:
        kept = scope(ids)
        ids = [i for i in ids if i in kept]
        if scheme == "MID" and not ids:
            derived = identifier_hits(session, [(scheme, value)], declared=False).get(
                (scheme, value), [])
            kept = scope(derived)
            hints = [i for i in derived if i in kept]
    return identifier_result(session, scheme, value, ids, hints)


def identifier_result(session: Session, scheme: str, value: str, ids: Sequence[int],
                      hints: Sequence[int] | None = None,
                      summaries: dict[int, tuple[str, str, str]] | None = None) -> MatchResult:
    """The match result for operators found by a declared identifier. `hints`: the
    operators with a derived MID of that value, when the caller looked them up (None:
    looked up here)."""
    if summaries is None or any(i not in summaries for i in [*ids, *(hints or ())]):
        summaries = summaries_of(session, [*ids, *(hints or ())])
    candidates = [Candidate(i, *summaries[i], score=1.0, via="identifier",
                            explanation=[f"declared {scheme} {value}"]) for i in ids]
    if len(candidates) == 1:
        return MatchResult("match", candidates, candidates[0], [])
    if candidates:
        return MatchResult("ambiguous", candidates, None, [Reason(
            rc.AMBIGUOUS_MATCH, f"{scheme} {value} is declared by {len(candidates)} operators")])
    if scheme == "MID":
        derived = list(hints) if hints is not None else identifier_hits(
            session, [(scheme, value)], declared=False).get((scheme, value), [])
        if derived:
            summaries = summaries_of(session, derived)
            hint_candidates = [Candidate(i, *summaries[i], score=0.5, via="derived_mid",
                                         explanation=[f"MID {value} derived by the hub"])
                               for i in derived]
            return MatchResult("no_match", hint_candidates, None, [Reason(
                rc.MID_NOT_LINKED, f"MID {value} is not linked by any operator; the hub "
                "derived it from a name and address, which is a hint, never proof")])
    return MatchResult("no_match", [], None, [Reason(
        rc.UNKNOWN_IDENTIFIER, f"no operator declares {scheme} {value}")])


def combine(by_id: MatchResult, by_name: MatchResult, own: Candidate | None,
            settings: MatchSettings = DEFAULT_SETTINGS) -> MatchResult:
    """Both an identifier and a name+address were given: they must agree.

    `own` is the identified operator scored against the name and address.
    """
    if by_id.decision == "match" and by_id.best is not None:
        best = by_id.best
        same = by_name.best is not None and (
            by_name.best.operator_id == best.operator_id
            or best.operator_id in by_name.best.same_company_as)
        consistent = own is not None and _accepted(own, settings) and (
            by_name.decision != "match" or same)
        if same or consistent:
            merged = replace(best, features=own.features if own else {},
                             explanation=best.explanation + (own.explanation if own else []))
            rest = [c for c in by_name.candidates if c.operator_id != merged.operator_id]
            return MatchResult("match", [merged, *rest], merged, [])
        if own is not None and by_name.decision != "match":
            by_name.candidates = [own, *[c for c in by_name.candidates
                                         if c.operator_id != own.operator_id]]
        return _disagree(by_id, by_name)
    if by_id.decision == "no_match" and by_name.decision == "no_match":
        return MatchResult("no_match", by_id.candidates + by_name.candidates, None,
                           by_id.reasons + by_name.reasons)
    return _disagree(by_id, by_name)


def _disagree(by_id: MatchResult, by_name: MatchResult) -> MatchResult:
    id_part = (f"the identifier names {by_id.best.legal_name} ({by_id.best.programme})"
               if by_id.best else "the identifier names no single operator")
    name_part = (f"the name and address match {by_name.best.legal_name} "
                 f"({by_name.best.programme})" if by_name.best
                 else "the name and address match no single operator")
    seen: set[int] = set()
    candidates = []
    for candidate in [*by_id.candidates, *by_name.candidates]:
        if candidate.operator_id not in seen:
            seen.add(candidate.operator_id)
            candidates.append(candidate)
    reasons = [Reason(rc.REFERENCES_DISAGREE, f"{id_part}, but {name_part}"),
               *by_id.reasons, *by_name.reasons]
    return MatchResult("ambiguous", candidates, None, reasons)
