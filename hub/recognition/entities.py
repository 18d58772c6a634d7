"""Cross-programme entities and the human judgements that steer them.

The same company certified in several programmes (EU AEO and C-TPAT, say) is linked into
one entity by evidence:

1. a human "same" judgement (strongest), stored against (programme, stable key);
2. a declared identifier both operators hold (EORI/TCUIN, LEI, USCC...; MIDs excluded,
   since two companies can share one);
3. a name+address score of at least `MatchSettings.link` between operators of different
   programmes.

A human "different" judgement always wins: it removes the direct link and forbids the two
from ending up in one entity through a chain, so links are added strongest first and a
link that would join two operators judged different is dropped (and reported as broken).
Entities serve the company's own view and matching only: recognition never passes from one
operator to another.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from hub.audit import record
from hub.db import transactional
from hub.errors import InvalidInput, NotFound
from hub.recognition.models import VERDICTS, MatchJudgement
from hub.recognition.scoring import (
    DEFAULT_SETTINGS,
    Candidate,
    MatchIndex,
    MatchSettings,
    compare,
    match_index,
)
from hub.registry.models import Operator, OperatorIdentifier, Programme

#: Identifier schemes that never link two operators (not unique to a company).
NON_LINKING_SCHEMES = frozenset({"MID"})
#: An entity is explored up to this many operators.
MAX_ENTITY_SIZE = 200

Key = tuple[str, str]  # (programme code, stable key)


# --------------------------------------------------------------------------- judgements


def _canonical(a: Key, b: Key) -> tuple[Key, Key]:
    return (a, b) if a <= b else (b, a)


def resolve_operator_key(session: Session, ref: str | int) -> Key:
    """(programme, stable key) of an operator given by id or as `PROGRAMME:KEY`."""
    if isinstance(ref, int) or str(ref).isdigit():
        row = session.execute(select(Programme.code, Operator.stable_key)
                              .join(Programme, Programme.id == Operator.programme_id)
                              .where(Operator.id == int(ref))).first()
        if row is None:
            raise NotFound(f"operator {ref} does not exist", fields={"operator": "unknown"})
        return (row[0], row[1])
    programme, sep, key = str(ref).partition(":")
    if not sep or not programme or not key:
        raise InvalidInput(f"{ref!r}: give an operator id or PROGRAMME:STABLE_KEY",
                           fields={"operator": "format"})
    if session.scalar(select(Programme.id).where(Programme.code == programme)) is None:
        raise NotFound(f"programme {programme} does not exist", fields={"operator": "programme"})
    return (programme, key)


@transactional
def add_judgement(session: Session, left: str | int, right: str | int, verdict: str, *,
                  actor: str, reason: str) -> MatchJudgement:
    """Record that two operators are (not) the same company. The caller commits.

    Operators are given by id or as `PROGRAMME:STABLE_KEY`; the judgement is stored
    against the stable keys, so it outlives the rows.
    """
    fields: dict[str, str] = {}
    if verdict not in VERDICTS:
        fields["verdict"] = f"one of {', '.join(VERDICTS)}"
    if not actor.strip():
        fields["actor"] = "say who judged"
    if not reason.strip():
        fields["reason"] = "say why"
    if fields:
        raise InvalidInput("the judgement is incomplete", fields=fields)
    a, b = _canonical(resolve_operator_key(session, left), resolve_operator_key(session, right))
    if a == b:
        raise InvalidInput("an operator cannot be judged against itself",
                           fields={"right": "same as left"})
    judgement = MatchJudgement(left_programme=a[0], left_key=a[1], right_programme=b[0],
                               right_key=b[1], verdict=verdict, actor=actor.strip(),
                               reason=reason.strip())
    session.add(judgement)
    session.flush()

    record(session, "judgement.added", actor=actor.strip(),
           subject=f"judgement:{judgement.id}",
           details={"left": f"{a[0]}:{a[1]}", "right": f"{b[0]}:{b[1]}", "verdict": verdict,
                    "reason": reason.strip()})
    return judgement


def list_judgements(session: Session, operator: str | int | None = None) -> list[MatchJudgement]:
    query = select(MatchJudgement).order_by(MatchJudgement.created_at, MatchJudgement.id)
    if operator is not None:
        programme, key = resolve_operator_key(session, operator)
        query = query.where(or_(
            and_(MatchJudgement.left_programme == programme, MatchJudgement.left_key == key),
            and_(MatchJudgement.right_programme == programme, MatchJudgement.right_key == key)))
    return list(session.scalars(query))


def judgements_for(session: Session, keys: Collection[Key]
                   ) -> dict[tuple[Key, Key], MatchJudgement]:
    """The latest judgement of every pair touching `keys` (canonical pair -> judgement)."""
    result: dict[tuple[Key, Key], MatchJudgement] = {}
    keys = list(keys)
    for start in range(0, len(keys), 200):
        chunk = keys[start:start + 200]
        conditions = []
        for programme, key in chunk:
            conditions.append(and_(MatchJudgement.left_programme == programme,
                                   MatchJudgement.left_key == key))
            conditions.append(and_(MatchJudgement.right_programme == programme,
                                   MatchJudgement.right_key == key))
        rows = session.scalars(select(MatchJudgement).where(or_(*conditions))
                               .order_by(MatchJudgement.created_at, MatchJudgement.id))
        for row in rows:  # later rows overwrite: the latest judgement wins
            result[((row.left_programme, row.left_key),
                    (row.right_programme, row.right_key))] = row
    return result


# --------------------------------------------------------------------------- links


@dataclass(frozen=True)
class Link:
    """Evidence that two operators are one company."""

    left: int
    right: int
    kind: str  # judgement | identifier | score
    strength: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"left": self.left, "right": self.right, "kind": self.kind,
                "strength": self.strength, "detail": self.detail}


_KIND_RANK = {"judgement": 0, "identifier": 1, "score": 2}


def _shared_identifiers(session: Session, ids: Sequence[int]) -> list[Link]:
    """Pairs among `ids` (and, for one id, beyond) sharing a declared identifier."""
    mine = aliased(OperatorIdentifier)
    other = aliased(OperatorIdentifier)
    rows = session.execute(
        select(mine.operator_id, other.operator_id, mine.scheme, mine.value)
        .join(other, and_(other.scheme == mine.scheme, other.value == mine.value,
                          other.operator_id != mine.operator_id))
        .where(mine.operator_id.in_(list(ids)), mine.origin == "declared",
               other.origin == "declared", mine.scheme.not_in(NON_LINKING_SCHEMES))
    )
    links = []
    for a, b, scheme, value in rows:
        links.append(Link(min(a, b), max(a, b), "identifier", 1.0,
                          f"both declare {scheme} {value}"))
    return links


def _score_link(index: MatchIndex, a: int, b: int, settings: MatchSettings) -> Link | None:
    pa, pb = index.position.get(a), index.position.get(b)
    if pa is None or pb is None or index.programme_ids[pa] == index.programme_ids[pb]:
        return None
    score, features, _ = compare(index.items[pa], index.items[pb], settings, index.idf)
    if (score >= settings.link and features.name >= settings.min_name
            and features.address != "conflicts"):
        return Link(min(a, b), max(a, b), "score", score, f"name and address score {score:.2f}")
    return None


def same_company_pairs(session: Session, index: MatchIndex, candidates: Sequence[Candidate],
                       settings: MatchSettings = DEFAULT_SETTINGS) -> set[tuple[int, int]]:
    """Pairs of candidates directly linked as one company (both orders)."""
    ids = [c.operator_id for c in candidates]
    keys = {c.operator_id: (c.programme, c.stable_key) for c in candidates}
    links: dict[tuple[int, int], bool] = {}
    for link in _shared_identifiers(session, ids):
        if link.left in keys and link.right in keys:
            links[(link.left, link.right)] = True
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            pair = (min(a, b), max(a, b))
            if pair not in links and _score_link(index, a, b, settings):
                links[pair] = True
    by_key = {v: k for k, v in keys.items()}
    for (ka, kb), judgement in judgements_for(session, list(keys.values())).items():
        if ka in by_key and kb in by_key:
            a, b = by_key[ka], by_key[kb]
            links[(min(a, b), max(a, b))] = judgement.verdict == "same"
    pairs = set()
    for (a, b), linked in links.items():
        if linked:
            pairs.update({(a, b), (b, a)})
    return pairs


# --------------------------------------------------------------------------- entities


@dataclass
class Entity:
    """One company across programmes: its operators and the links that join them."""

    id: int
    members: list[dict[str, Any]]
    links: list[Link]
    broken: list[Link] = field(default_factory=list)
    judgements: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "members": self.members,
                "links": [link.to_dict() for link in self.links],
                "broken_links": [link.to_dict() for link in self.broken],
                "judgements": self.judgements}


def _operators_by_key(session: Session, keys: Iterable[Key]) -> dict[Key, int]:
    out: dict[Key, int] = {}
    for programme, key in keys:
        row = session.scalar(select(Operator.id).join(Programme, Programme.id ==
                                                      Operator.programme_id)
                             .where(Programme.code == programme, Operator.stable_key == key))
        if row is not None:
            out[(programme, key)] = row
    return out


def entity_of(session: Session, operator_id: int,
              settings: MatchSettings = DEFAULT_SETTINGS) -> Entity:
    """The entity holding `operator_id`: its members, links and the judgements applied."""
    index = match_index(session, settings)
    if operator_id not in index.position:
        raise NotFound(f"operator {operator_id} does not exist", fields={"operator": "unknown"})
    key_of = {i: (index.programmes[p], index.stable_keys[p]) for i, p in index.position.items()
              if i == operator_id}
    seen = {operator_id}
    frontier = [operator_id]
    links: dict[tuple[int, int], Link] = {}
    judged: dict[tuple[Key, Key], MatchJudgement] = {}
    while frontier and len(seen) < MAX_ENTITY_SIZE:
        found: list[Link] = []
        found.extend(_shared_identifiers(session, frontier))
        for node in frontier:
            position = index.position[node]
            for other in index.block(index.items[position], settings):
                link = _score_link(index, node, index.ids[other], settings)
                if link is not None:
                    found.append(link)
        for node in frontier:
            p = index.position[node]
            key_of[node] = (index.programmes[p], index.stable_keys[p])
        new_judgements = judgements_for(session, [key_of[n] for n in frontier])
        judged.update(new_judgements)
        same_keys = {k for pair, j in new_judgements.items() if j.verdict == "same"
                     for k in pair}
        resolved = _operators_by_key(session, same_keys)
        for (ka, kb), judgement in new_judgements.items():
            if judgement.verdict == "same" and ka in resolved and kb in resolved:
                a, b = resolved[ka], resolved[kb]
                found.append(Link(min(a, b), max(a, b), "judgement", 1.0,
                                  f"judged the same by {judgement.actor}: {judgement.reason}"))
        frontier = []
        for link in found:
            pair = (link.left, link.right)
            current = links.get(pair)
            if current is None or _KIND_RANK[link.kind] < _KIND_RANK[current.kind]:
                links[pair] = link
            for node in pair:
                if node not in seen and node in index.position:
                    seen.add(node)
                    frontier.append(node)
    for node in seen:
        p = index.position[node]
        key_of[node] = (index.programmes[p], index.stable_keys[p])
    judged.update(judgements_for(session, [key_of[n] for n in seen]))
    node_of = {k: n for n, k in key_of.items()}
    different: set[tuple[int, int]] = set()
    for (ka, kb), judgement in judged.items():
        if judgement.verdict == "different" and ka in node_of and kb in node_of:
            a, b = node_of[ka], node_of[kb]
            different.add((min(a, b), max(a, b)))
    # Union strongest links first; never join two operators judged different.
    parent = {n: n for n in seen}
    members: dict[int, set[int]] = {n: {n} for n in seen}

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    kept: list[Link] = []
    broken: list[Link] = []
    ordered = sorted(links.values(), key=lambda lk: (_KIND_RANK[lk.kind], -lk.strength,
                                                     lk.left, lk.right))
    for link in ordered:
        if (link.left, link.right) in different:
            broken.append(link)
            continue
        ra, rb = root(link.left), root(link.right)
        if ra == rb:
            kept.append(link)
            continue
        if any((min(x, y), max(x, y)) in different for x in members[ra] for y in members[rb]):
            broken.append(link)
            continue
        parent[rb] = ra
        members[ra] |= members.pop(rb)
        kept.append(link)
    component = sorted(members[root(operator_id)])
    rows = session.execute(select(Operator.id, Programme.code, Operator.stable_key,
                                  Operator.legal_name, Operator.country, Operator.status)
                           .join(Programme, Programme.id == Operator.programme_id)
                           .where(Operator.id.in_(component)).order_by(Operator.id))
    member_rows = [{"operator_id": r[0], "programme": r[1], "stable_key": r[2],
                    "legal_name": r[3], "country": r[4], "status": r[5]} for r in rows]
    inside = set(component)
    keys_inside = {key_of[n] for n in inside}
    return Entity(
        id=component[0],
        members=member_rows,
        links=[lk for lk in kept if lk.left in inside and lk.right in inside],
        broken=[lk for lk in broken if lk.left in inside or lk.right in inside],
        judgements=[{"left": f"{ka[0]}:{ka[1]}", "right": f"{kb[0]}:{kb[1]}",
                     "verdict": j.verdict, "actor": j.actor, "reason": j.reason,
                     "at": j.created_at.isoformat()}
                    for (ka, kb), j in sorted(judged.items())
                    if ka in keys_inside or kb in keys_inside],
    )
