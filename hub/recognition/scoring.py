"""Scoring for identity resolution: a trader's name and address against the registry's.

* **Blocking** with an in-memory inverted index per database (`MatchIndex`), rebuilt when
  the operator table changes (checked at most every `refresh_seconds`). Keys are, within a
  country, each normalised name token, the first and last four letters of longer tokens
  (so that one typo leaves a key intact), the postcode and (city, house number). Each key
  weighs its inverse document frequency; the `block_size` operators with the highest
  summed weight are kept. Keys held by more than `max_posting` operators are skipped.
* **Scoring** (`compare`) with rapidfuzz on the normalised forms of `hub.identifiers`
  (written-out legal forms stripped too): name (token sort and token set ratios, and an
  agreement of the name words weighted by their IDF in the registry, so that generic
  words count for little and a distinctive word one name has and the other lacks counts
  for a lot), street (token sort, house numbers compared whole: "12" fits "12-14",
  "1-11-20" does not fit "1-11-3"), city, postcode (equal, same area, different) and
  country. The score is the weighted mean of the features present in both; the address is
  judged `agrees`, `partial`, `unknown` or `conflicts` (`address_verdict`); every
  candidate carries its features and an explanation.

Scores are rounded to four places and ties broken by operator id: the order is
deterministic. Deciding between candidates is `hub.recognition.matching`'s.
"""

from __future__ import annotations

import heapq
import math
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.identifiers import (
    name_tokens,
    normalise_city,
    normalise_postcode,
    normalise_street,
)
from hub.recognition.reasons import Reason
from hub.registry.models import Operator, Programme


@dataclass(frozen=True)
class MatchSettings:
    """Thresholds of the matcher (scores are between 0 and 1)."""

    #: A candidate at or above this score identifies the trader...
    accept: float = 0.84
    #: ... provided its name feature reaches this.
    min_name: float = 0.80
    #: Another candidate (not the same company) closer than this to the best: ambiguous.
    margin: float = 0.04
    #: Two operators of different programmes scoring this high together are one company.
    link: float = 0.90
    #: Candidates kept by blocking for full scoring.
    block_size: int = 30
    #: Blocking keys held by more operators than this are skipped (too common to help).
    max_posting: int = 4000
    #: Feature weights (renormalised over the features both sides have).
    weights: tuple[tuple[str, float], ...] = (
        ("name", 0.55), ("street", 0.2), ("city", 0.15), ("postcode", 0.1))
    #: Factor applied when the countries differ.
    country_penalty: float = 0.6
    #: Streets at least this similar (house numbers compatible) agree...
    street_agree: float = 0.8
    #: ... and below this (or with house numbers that differ) they conflict.
    street_conflict: float = 0.6
    #: Cities below this similarity differ (strong negative evidence unless the street
    #: agrees).
    city_conflict: float = 0.7
    #: When the address only partly agrees (city level, no street on one side), or is
    #: unknown, the name must reach this.
    strong_name: float = 0.95
    #: How often (seconds) to check whether the operator table changed.
    refresh_seconds: float = 2.0


DEFAULT_SETTINGS = MatchSettings()
#: House numbers, with their ranges and Japanese block-lot forms kept whole ("12-14",
#: "1-11-20"); a letter suffix ("17a") is not part of the number.
_NUMBER = re.compile(r"\d+(?:[-/]\d+)*")


@dataclass(frozen=True)
class Prepared:
    """The normalised, comparable form of a name and address."""

    name: str
    tokens: tuple[str, ...]
    street: str
    numbers: frozenset[str]
    city: str
    postcode: str
    country: str


#: Legal forms written out in full, which `hub.identifiers.name_tokens` leaves in place;
#: stripped from the end of a name (never its last word) before comparing.
WRITTEN_OUT_FORMS: tuple[tuple[str, ...], ...] = (
    ("gesellschaft", "mit", "beschrankter", "haftung"),
    ("gesellschaft", "mit", "beschraenkter", "haftung"),
    ("aktiengesellschaft",), ("kommanditgesellschaft",), ("offene", "handelsgesellschaft"),
    ("societe", "anonyme"), ("societe", "a", "responsabilite", "limitee"),
    ("sociedad", "limitada"), ("sociedade", "anonima"), ("sociedade", "limitada"),
    ("societa", "per", "azioni"), ("societa", "a", "responsabilita", "limitata"),
    ("besloten", "vennootschap"), ("naamloze", "vennootschap"),
    ("private",), ("public", "limited", "company"), ("limited", "liability", "company"),
)


def strip_written_out_forms(tokens: Sequence[str]) -> tuple[str, ...]:
    """`tokens` without trailing written-out legal forms (never the last word)."""
    out = tuple(tokens)
    changed = True
    while changed:
        changed = False
        for form in WRITTEN_OUT_FORMS:
            if len(out) > len(form) and out[-len(form):] == form:
                out = out[:-len(form)]
                changed = True
    return out


def _tokens(name: str | None) -> tuple[str, ...]:
    return strip_written_out_forms(name_tokens(name or ""))


def prepare(name: str | None, street: str | None, city: str | None, postcode: str | None,
            country: str | None) -> Prepared:
    tokens = _tokens(name)
    street_norm = normalise_street(street) if street else ""
    return Prepared(
        name=" ".join(tokens),
        tokens=tokens,
        street=street_norm,
        numbers=frozenset(_NUMBER.findall(street_norm)),
        city=normalise_city(city) if city else "",
        postcode=normalise_postcode(postcode) if postcode else "",
        country=(country or "").upper(),
    )


def _name_keys(country: str, tokens: Iterable[str]) -> list[tuple[str, float]]:
    keys: list[tuple[str, float]] = []
    for token in tokens:
        if len(token) < 2:
            continue
        keys.append((f"{country}|t|{token}", 1.0))
        if len(token) >= 5:
            keys.append((f"{country}|p|{token[:4]}", 0.5))
            keys.append((f"{country}|s|{token[-4:]}", 0.5))
    return keys


def _address_keys(item: Prepared, country: str) -> list[tuple[str, float]]:
    keys: list[tuple[str, float]] = []
    if item.postcode:
        keys.append((f"{country}|z|{item.postcode}", 0.7))
    if item.city:
        for number in item.numbers:
            keys.append((f"{country}|n|{item.city}|{number}", 0.7))
    return keys


def blocking_keys(item: Prepared, country: str | None = None) -> list[tuple[str, float]]:
    """(key, weight factor) pairs of `item` in `country` (default: its own)."""
    country = country if country is not None else item.country
    return _name_keys(country, item.tokens) + _address_keys(item, country)


#: How the addresses of two records relate (see `address_verdict`).
AGREES, PARTIAL, UNKNOWN, CONFLICTS = "agrees", "partial", "unknown", "conflicts"


@dataclass(frozen=True)
class Features:
    name: float
    street: float | None
    city: float | None
    postcode: float | None
    country: bool | None
    #: `agrees`, `partial`, `unknown` or `conflicts` (see `address_verdict`).
    address: str = UNKNOWN

    def to_dict(self) -> dict[str, float | bool | str | None]:
        return {"name": self.name, "street": self.street, "city": self.city,
                "postcode": self.postcode, "country": self.country, "address": self.address}


def _numbers_compatible(a: frozenset[str], b: frozenset[str]) -> bool:
    """Every house number of the side that gives fewer has a counterpart on the other:
    equal, or one a range or block-lot prefix of the other ("12" and "12-14")."""
    fewer, more = (a, b) if len(a) <= len(b) else (b, a)
    return all(any(x == y or y.startswith(x + "-") or x.startswith(y + "-")
                   or y.startswith(x + "/") or x.startswith(y + "/") for y in more)
               for x in fewer)


def address_verdict(street: float | None, city: float | None, postcode: float | None,
                    numbers_differ: bool, settings: MatchSettings) -> str:
    """How two addresses relate.

    * `conflicts`: both streets given and they differ (house numbers that do not
      correspond, or street names too far apart); or, without streets to compare, the
      cities or the postcodes differ;
    * `agrees`: both streets given and they correspond (a different city does not
      overrule an agreeing street: cities are written many ways); streets that only
      half correspond conflict when the city or the postcode differs;
    * `partial`: no street on one side, the city (and postcode, if both give one) agree;
    * `unknown`: nothing to compare.
    """
    if street is not None:
        if numbers_differ or street < settings.street_conflict:
            return CONFLICTS
        if street >= settings.street_agree:
            return AGREES
        if (city is not None and city < settings.city_conflict) or postcode == 0.0:
            return CONFLICTS  # the street only half agrees and the place differs
        return PARTIAL
    if (city is not None and city < settings.city_conflict) or postcode == 0.0:
        return CONFLICTS
    if city is not None or postcode is not None:
        return PARTIAL
    return UNKNOWN


def _token_match(token: str, others: Sequence[str]) -> float:
    """How well `token` is found among `others`: 1 when present, its best similarity when
    at least 0.8 (a typo), 0.9 for an abbreviation (a prefix of three letters or more)."""
    if token in others:
        return 1.0
    best = 0.0
    for other in others:
        if len(token) >= 3 and len(other) >= 3 and (
                other.startswith(token) or token.startswith(other)):
            best = max(best, 0.9)
        ratio = fuzz.ratio(token, other) / 100
        if ratio >= 0.8:
            best = max(best, ratio)
    return best


def _uniform_weight(_token: str) -> float:
    return 1.0


def weighted_name(a: Sequence[str], b: Sequence[str], weight: Callable[[str], float]
                  ) -> tuple[float, list[str], list[str]]:
    """Agreement of two token lists, each token weighing its distinctiveness (IDF):
    (agreement, tokens of `a` missing from `b`, tokens of `b` missing from `a`)."""
    total = agreed = 0.0
    missing_a: list[str] = []
    missing_b: list[str] = []
    for tokens, others, missing in ((a, b, missing_a), (b, a, missing_b)):
        for token in tokens:
            w = weight(token)
            found = _token_match(token, others)
            total += w
            agreed += w * found
            if not found:
                missing.append(token)
    return (agreed / total if total else 0.0), missing_a, missing_b


def compare(a: Prepared, b: Prepared, settings: MatchSettings = DEFAULT_SETTINGS,
            idf: Callable[[str], float] | None = None
            ) -> tuple[float, Features, list[str]]:
    """Score two names and addresses: (score, features, explanation).

    `idf` gives a name token's distinctiveness (the index's IDF; uniform without).
    The name feature is the better of the fuzzy ratios and the IDF-weighted token
    agreement, so that extra generic words ("trading", a written-out legal form) cost
    little; but when each name has a word the other lacks (Acme Logistics, Acme
    Chemicals) it is the lower of the two, so that a differing distinctive word weighs
    what it is worth.
    """
    explain: list[str] = []
    sort_ratio = fuzz.token_sort_ratio(a.name, b.name)
    set_ratio = fuzz.token_set_ratio(a.name, b.name)
    fuzzy = max(sort_ratio, 0.5 * sort_ratio + 0.5 * set_ratio) / 100
    weighted, missing_a, missing_b = weighted_name(a.tokens, b.tokens,
                                                   idf or _uniform_weight)
    if missing_a and missing_b:
        name = round(min(fuzzy, weighted), 4)
        how = (f"differing words {' '.join(missing_a)!r} vs {' '.join(missing_b)!r}, "
               f"weighted {weighted:.2f}")
    else:
        name = round(max(fuzzy, weighted), 4)
        how = f"weighted {weighted:.2f}"
    explain.append(f"name {name:.2f} ('{a.name}' vs '{b.name}': token sort {sort_ratio:.0f},"
                   f" token set {set_ratio:.0f}, {how})")
    street: float | None = None
    numbers_differ = False
    if a.street and b.street:
        street = fuzz.token_sort_ratio(a.street, b.street) / 100
        numbers_differ = bool(a.numbers and b.numbers
                              and not _numbers_compatible(a.numbers, b.numbers))
        if numbers_differ:
            street = min(street, 0.4)
            explain.append(f"street {street:.2f} (house numbers differ)")
        else:
            explain.append(f"street {street:.2f}")
        street = round(street, 4)
    else:
        explain.append("street missing on one side")
    city: float | None = None
    if a.city and b.city:
        city = round(fuzz.ratio(a.city, b.city) / 100, 4)
        explain.append(f"city {city:.2f} ('{a.city}' vs '{b.city}')")
    else:
        explain.append("city missing on one side")
    postcode: float | None = None
    if a.postcode and b.postcode:
        if a.postcode == b.postcode:
            postcode = 1.0
        elif a.postcode[:3] == b.postcode[:3]:
            postcode = 0.5
        else:
            postcode = 0.0
        explain.append(f"postcode {postcode:.1f} ({a.postcode} vs {b.postcode})")
    else:
        explain.append("postcode missing on one side")
    country: bool | None = None
    if a.country and b.country:
        country = a.country == b.country
        if not country:
            explain.append(f"countries differ ({a.country} vs {b.country})")
    values = {"name": name, "street": street, "city": city, "postcode": postcode}
    total = weight = 0.0
    for feature, w in settings.weights:
        value = values[feature]
        if value is not None:
            total += w * value
            weight += w
    score = total / weight if weight else 0.0
    if country is False:
        score *= settings.country_penalty
    address = address_verdict(street, city, postcode, numbers_differ, settings)
    explain.append(f"address {address}")
    return (round(score, 4), Features(name, street, city, postcode, country, address),
            explain)


# --------------------------------------------------------------------------- the index


class MatchIndex:
    """Inverted index of every operator's name and address keys (one per database)."""

    def __init__(self, rows: Sequence[Any], programme_codes: dict[int, str]) -> None:
        self.ids: list[int] = []
        self.programme_ids: list[int] = []
        self.programmes: list[str] = []
        self.stable_keys: list[str] = []
        self.names: list[str] = []
        self.items: list[Prepared] = []
        self.position: dict[int, int] = {}
        postings: dict[str, list[int]] = {}
        countries: set[str] = set()
        frequency: dict[str, int] = {}
        # Names, cities and streets repeat across a registry: normalise each spelling once.
        names: dict[str, tuple[str, ...]] = {}
        cities: dict[str, str] = {}
        streets: dict[str, tuple[str, frozenset[str]]] = {}
        name_keys: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for row in rows:
            tokens = names.get(row.legal_name)
            if tokens is None:
                tokens = names[row.legal_name] = _tokens(row.legal_name)
            street = streets.get(row.street or "")
            if street is None:
                norm = normalise_street(row.street) if row.street else ""
                street = streets[row.street or ""] = (
                    norm, frozenset(_NUMBER.findall(norm)))
            city = cities.get(row.city or "")
            if city is None:
                city = cities[row.city or ""] = normalise_city(row.city) if row.city else ""
            country = (row.country or "").upper()
            item = Prepared(" ".join(tokens), tokens, street[0], street[1], city,
                            normalise_postcode(row.postcode) if row.postcode else "", country)
            index = len(self.ids)
            self.ids.append(row.id)
            self.position[row.id] = index
            self.programme_ids.append(row.programme_id)
            self.programmes.append(programme_codes.get(row.programme_id, "?"))
            self.stable_keys.append(row.stable_key)
            self.names.append(row.legal_name)
            self.items.append(item)
            countries.add(country)
            for token in set(tokens):
                frequency[token] = frequency.get(token, 0) + 1
            keys = name_keys.get((country, tokens))
            if keys is None:
                keys = name_keys[(country, tokens)] = [k for k, _w in _name_keys(country,
                                                                                  tokens)]
            for key in keys:
                postings.setdefault(key, []).append(index)
            for key, _w in _address_keys(item, country):
                postings.setdefault(key, []).append(index)
        self.postings = postings
        self.countries = sorted(countries)
        self.size = len(self.ids)
        self.frequency = frequency
        self._top = math.log(1 + self.size)

    def idf(self, token: str) -> float:
        """How distinctive a name token is: log(1 + N / (1 + operators whose name has it))."""
        return math.log(1 + self.size / (1 + self.frequency.get(token, 0))) or self._top

    def block(self, query: Prepared, settings: MatchSettings,
              programme_ids: Collection[int] | None = None) -> list[int]:
        """Positions of the `block_size` operators sharing the heaviest keys with `query`."""
        countries = [query.country] if query.country else self.countries
        weights: dict[int, float] = {}
        size = max(self.size, 1)
        for country in countries:
            for key, factor in blocking_keys(query, country):
                posting = self.postings.get(key)
                if not posting or len(posting) > settings.max_posting:
                    continue
                weight = factor * math.log(1 + size / len(posting))
                for position in posting:
                    weights[position] = weights.get(position, 0.0) + weight
        if programme_ids is not None:
            allowed = set(programme_ids)
            weights = {p: w for p, w in weights.items() if self.programme_ids[p] in allowed}
        best = heapq.nsmallest(settings.block_size, weights.items(),
                               key=lambda pw: (-pw[1], self.ids[pw[0]]))
        return [position for position, _w in best]


_LOCK = threading.Lock()
# database URL -> (signature, checked at (monotonic), index)
_INDEXES: dict[str, tuple[tuple[Any, ...], float, MatchIndex]] = {}
#: Registries this small are re-checked on every call (the check is cheap).
_ALWAYS_CHECK_BELOW = 500


def _signature(session: Session) -> tuple[Any, ...]:
    """A cheap fingerprint of the matchable columns (one scan, no row transfer)."""
    row = session.execute(select(
        func.count(Operator.id), func.max(Operator.id), func.sum(Operator.id),
        func.max(Operator.updated_at), func.max(Operator.created_at),
        func.sum(func.length(Operator.legal_name)),
        func.sum(func.length(func.coalesce(Operator.street, ""))),
        func.sum(func.length(func.coalesce(Operator.city, ""))),
        func.sum(func.length(func.coalesce(Operator.postcode, ""))),
        func.sum(func.length(Operator.country)))).one()
    return tuple(row)


def match_index(session: Session, settings: MatchSettings = DEFAULT_SETTINGS) -> MatchIndex:
    """The index of the session's database, rebuilt when the operator table changed.

    Large registries are re-checked at most every `settings.refresh_seconds`; small ones
    (where the check costs little) on every call.
    """
    bind = session.get_bind()
    url = str(bind.engine.url) if hasattr(bind, "engine") else str(id(bind))
    now = time.monotonic()
    with _LOCK:
        cached = _INDEXES.get(url)
    if cached is not None and cached[2].size >= _ALWAYS_CHECK_BELOW and (
            now - cached[1] < settings.refresh_seconds):
        return cached[2]
    signature = _signature(session)
    if cached is not None and cached[0] == signature:
        with _LOCK:
            _INDEXES[url] = (signature, now, cached[2])
        return cached[2]
    codes = {int(pid): str(code)
             for pid, code in session.execute(select(Programme.id, Programme.code))}
    rows = session.execute(select(Operator.id, Operator.programme_id, Operator.stable_key,
                                  Operator.legal_name, Operator.street, Operator.city,
                                  Operator.postcode, Operator.country)
                           .order_by(Operator.id)).all()
    index = MatchIndex(rows, codes)
    with _LOCK:
        _INDEXES[url] = (signature, now, index)
    return index


# --------------------------------------------------------------------------- results


@dataclass
class Candidate:
    """An operator a reference may name, with its score and why."""

    operator_id: int
    programme: str
    stable_key: str
    legal_name: str
    score: float
    via: str  # identifier | name_address
    features: dict[str, Any] = field(default_factory=dict)
    explanation: list[str] = field(default_factory=list)
    #: Ids of other candidates judged or linked to be the same company.
    same_company_as: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"operator_id": self.operator_id, "programme": self.programme,
                "stable_key": self.stable_key, "legal_name": self.legal_name,
                "score": self.score, "via": self.via, "features": self.features,
                "explanation": self.explanation, "same_company_as": self.same_company_as}


@dataclass
class MatchResult:
    """`decision` is `match`, `ambiguous` or `no_match`; `best` is set for `match`."""

    decision: str
    candidates: list[Candidate]
    best: Candidate | None = None
    reasons: list[Reason] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision,
                "operator_id": self.best.operator_id if self.best else None,
                "candidates": [c.to_dict() for c in self.candidates],
                "reasons": [r.to_dict() for r in self.reasons]}


def score_candidates(index: MatchIndex, query: Prepared, settings: MatchSettings,
                     programme_ids: Collection[int] | None = None) -> list[Candidate]:
    """Blocked and scored candidates, best first (ties by operator id)."""
    out = []
    for position in index.block(query, settings, programme_ids):
        score, features, explanation = compare(query, index.items[position], settings,
                                               index.idf)
        out.append(Candidate(
            operator_id=index.ids[position], programme=index.programmes[position],
            stable_key=index.stable_keys[position], legal_name=index.names[position],
            score=score, via="name_address", features=features.to_dict(),
            explanation=explanation))
    out.sort(key=lambda c: (-c.score, c.operator_id))
    return out
