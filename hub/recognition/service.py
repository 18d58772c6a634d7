"""verify: is this trader recognised by programme R, on this day, for this flow, and why?

`verify_many` answers any number of references with a handful of queries: one query per
identifier scheme (5,000 values a chunk) joins identifier, operator and programme and
returns the narrow rows an answer needs (a value already in the stored, normalised form
skips the scheme's validator; the others are normalised and looked up once more);
history is read, in one query, only for operators whose current row does not hold on the
day asked about or when `known_at` is given; categories JSON is decoded once per
distinct value; the arrangement rules come from the cached reference snapshot, their
day-dependent part worked out once per batch and their outcome once per set of
categories (`rules.Evaluator`). `verify` is `verify_many` of one reference: two queries
when the trader is known (reference version, identifier -> operator).

The answer's `data_version` is when the operator's programme last synced successfully
(for an unknown trader, the oldest among the synced programmes R recognises); it is
`stale` when older than `staleness_seconds` (default: the app's
`DEFAULT_STALENESS_SECONDS`) or unknown.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Text, bindparam, cast, func, select
from sqlalchemy.orm import Session

from config.default import DEFAULT_STALENESS_SECONDS
from hub import clock, gcpause, jsonio
from hub.auth import policy
from hub.auth.policy import View
from hub.db import DriverQuery, ListQuery
from hub.errors import InvalidInput, NotFound
from hub.identifiers import IdentifierError
from hub.recognition import reasons as rc
from hub.recognition.matching import (
    add_name_and_address,
    identifier_hits,
    identifier_result,
    normalise_reference_identifier,
    summaries_of,
)
from hub.recognition.reasons import Reason
from hub.recognition.rules import (
    CachedReference,
    Evaluator,
    Recognition,
    cached_reference,
    categories_key,
)
from hub.recognition.scoring import (
    DEFAULT_SETTINGS,
    Candidate,
    MatchResult,
    MatchSettings,
    match_index,
)
from hub.recognition.trader import DeclaredTrader
from hub.registry.history import OperatorFacts, facts_at
from hub.registry.models import Operator, OperatorIdentifier, Programme
from hub.registry.service import recorded_events

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
    reference: DeclaredTrader
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

    def to_dict(self, made: dict[int, Any] | None = None) -> dict[str, Any]:
        """The API/CLI fields. `made`: the dictionaries of arrangements and reasons made so
        far (by object), shared by the answers of one batch that name the same ones (the
        evaluator's outcomes are shared objects): read-only, as the whole answer is."""
        if made is None:
            arrangements = [a.to_dict() for a in self.arrangements]
            reasons = [r.to_dict() for r in self.reasons]
        else:
            arrangements = [_made(a, made) for a in self.arrangements]
            reasons = [_made(r, made) for r in self.reasons]
        return {
            "decision": self.decision,
            "recognising_programme": self.recognising_programme,
            "date": self.day.isoformat(),
            "flow": self.flow,
            "known_at": self.known_at.isoformat() if self.known_at else None,
            "reference": self.reference.to_dict(),
            "operator": self.operator,
            "candidates": [c.to_dict() for c in self.candidates],
            "arrangements": arrangements,
            "reasons": reasons,
            "data_version": self.data_version.isoformat() if self.data_version else None,
            "data_age_seconds": self.data_age_seconds,
            "stale": self.stale,
        }


def _made(item: Any, made: dict[int, Any]) -> Any:
    """`item.to_dict()`, made once per object (while `made` and the objects live)."""
    found = made.get(id(item))
    if found is None:
        found = made[id(item)] = item.to_dict()
    return found


def warm(session: Session, settings: MatchSettings = DEFAULT_SETTINGS) -> dict[str, float]:
    """Build what the first verify or match would otherwise pay for: the reference snapshot
    and the name-and-address index of the session's database. For start-up (the demo);
    returns the seconds each took. (A gunicorn worker then moves what it loaded out of the
    collector's way: `config/gunicorn.conf.py`.)
    """
    started = time.perf_counter()
    cached_reference(session)
    snapshot_seconds = time.perf_counter() - started
    started = time.perf_counter()
    index = match_index(session, settings)
    return {"cached_reference": snapshot_seconds,
            "match_index": time.perf_counter() - started, "operators": float(index.size)}


def verify(session: Session, reference: DeclaredTrader, recognising_programme_code: str,
           day: dt.date | None = None, flow: str = "import",
           known_at: dt.datetime | None = None, *,
           staleness_seconds: int = DEFAULT_STALENESS_SECONDS, now: dt.datetime | None = None,
           settings: MatchSettings = DEFAULT_SETTINGS,
           current_rows: dict[int, CurrentRow] | None = None,
           read_ahead: ReadAhead | None = None, view: View | None = None) -> Decision:
    """Is `reference` recognised by `recognising_programme_code` on `day` for `flow`,
    as the hub knew things at `known_at` (default: now)?

    `view` (a partner's, from `hub.auth.policy`) limits the operators the answer may find
    to those the partner may see today: any other is not found at all, so its answer is
    the one a trader unknown to the hub gets, whatever the day, flow or known-at.

    `current_rows`, when given, receives the current row (`CurrentRow`) of every operator
    the answer names, read by the same query: what the data-sharing policy judges, so
    that the API needs no second read of them. `read_ahead` holds rows of
    `IDENTIFIER_READ` the caller already read (`read_ahead_of`), used instead of reading
    them again.
    """
    return verify_many(session, [reference], recognising_programme_code, day, flow, known_at,
                       staleness_seconds=staleness_seconds, now=now, settings=settings,
                       current_rows=current_rows, read_ahead=read_ahead, view=view)[0]


def _check_inputs(snapshot: CachedReference, references: Sequence[DeclaredTrader],
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


#: The operator columns an answer needs (categories as text, decoded once per distinct
#: value), with the programme's data version.
_COLUMNS = (
    Operator.id, Operator.programme_id, Operator.stable_key, Operator.authorisation_number,
    Operator.trader_id_scheme, Operator.trader_id, Operator.legal_name, Operator.street,
    Operator.city, Operator.postcode, Operator.region, Operator.country,
    Operator.issuing_authority, Operator.status, Operator.status_effective,
    cast(Operator.categories, Text).label("categories"), Operator.authorised_on,
    Operator.valid_from, Operator.valid_until, Operator.consent_share,
    Operator.consent_publish, Operator.removed_at, Operator.last_effective,
    Programme.data_version,
)
#: Built once: operators holding declared, linked identifiers of one scheme, for a list
#: of values, and for one value (what a single verify reads first: `IDENTIFIER_READ`).
_DECLARED = (
    select(OperatorIdentifier.value, *_COLUMNS)
    .join(Operator, Operator.id == OperatorIdentifier.operator_id)
    .join(Programme, Programme.id == Operator.programme_id)
    .where(OperatorIdentifier.scheme == bindparam("scheme"),
           OperatorIdentifier.origin == "declared", OperatorIdentifier.linked.is_(True))
)
_BY_IDENTIFIER = ListQuery(_DECLARED, OperatorIdentifier.value, "values")
_ONE_IDENTIFIER = DriverQuery(_DECLARED.where(OperatorIdentifier.value == bindparam("value")))
_BY_ID = ListQuery(select(*_COLUMNS).join(Programme, Programme.id == Operator.programme_id),
                   Operator.id, "ids")
#: Built once: the oldest data version (last sync) among a list of programmes.
_OLDEST_SYNC = ListQuery(select(func.min(Programme.data_version).label("oldest")), Programme.id,
                         "ids")


def _oldest_sync(session: Session, programme_ids: Sequence[int]) -> dt.datetime | None:
    """The oldest data version (last sync) among these programmes, None if none synced."""
    if not programme_ids:
        return None
    value: dt.datetime | None = _OLDEST_SYNC.rows(session, {"ids": list(programme_ids)})[0][0]
    return value


#: Batches at least this large run with the cyclic garbage collector paused.
_PAUSE_GC_FROM = 500


def _by_identifier(session: Session, pairs: Collection[tuple[str, str]], rows: dict[int, Any],
                   read_ahead: ReadAhead | None = None) -> dict[tuple[str, str], list[int]]:
    """Operator ids per declared (scheme, value), their rows added to `rows`: one query
    per scheme, for the pairs whose rows were not read ahead."""
    by_scheme: dict[str, set[str]] = {}
    hits: dict[tuple[str, str], list[int]] = {}
    read_ahead = read_ahead or {}
    for scheme, value in pairs:
        known = read_ahead.get((scheme, value))
        if known is not None:
            _add_hits(scheme, known, hits, rows)
        else:
            by_scheme.setdefault(scheme, set()).add(value)
    for scheme, values in sorted(by_scheme.items()):
        _add_hits(scheme, _BY_IDENTIFIER.rows(session, {"scheme": scheme,
                                                         "values": sorted(values)}),
                  hits, rows)
    for ids in hits.values():
        ids.sort()
    return hits


def _add_hits(scheme: str, found: Iterable[Any], hits: dict[tuple[str, str], list[int]],
              rows: dict[int, Any]) -> None:
    for row in found:
        ids = hits.setdefault((scheme, row.value), [])
        if row.id not in ids:
            ids.append(row.id)
        rows[row.id] = row


#: The read of one declared identifier's operators, as a verify of one reference makes it
#: first (`identifier_read` gives its parameters). A caller may run it ahead, joined to a
#: statement of its own (the API's token check: `hub.auth.guard.authenticate_reading`),
#: and hand its rows to `verify` (`read_ahead_of`).
IDENTIFIER_READ = _ONE_IDENTIFIER
#: Rows of `IDENTIFIER_READ` read ahead, by (scheme, value).
ReadAhead = Mapping[tuple[str, str], list[Any]]


def identifier_read(reference: DeclaredTrader) -> dict[str, str] | None:
    """The parameters of the `IDENTIFIER_READ` a verify of `reference` makes first (None:
    it makes none)."""
    pair = _compact_identifier(reference) if reference.has_identifier else None
    return None if pair is None else {"scheme": pair[0], "value": pair[1]}


def read_ahead_of(params: Mapping[str, str], rows: list[Any]) -> ReadAhead:
    """What `verify` takes as `read_ahead`: the rows of `IDENTIFIER_READ` for `params`,
    read by the caller in the session it then verifies in."""
    return {(params["scheme"], params["value"]): rows}


def _by_id(session: Session, ids: Collection[int], rows: dict[int, Any]) -> None:
    """Add the rows of `ids` not yet in `rows`."""
    missing = sorted(set(ids) - rows.keys())
    if missing:
        for row in _BY_ID.rows(session, {"ids": missing}):
            rows[row.id] = row


def _compact_identifier(reference: DeclaredTrader) -> tuple[str, str] | None:
    """(scheme, value without spaces, upper case) when the value is plain ASCII letters
    and digits; None otherwise (left to the scheme's normaliser)."""
    assert reference.scheme is not None and reference.value is not None
    value = "".join(reference.value.split()).upper()
    if not (value.isascii() and value.isalnum()):
        return None
    return reference.scheme.strip().upper(), value


class _Scope:
    """The operators an answer may find: every one (no view), or those of a partner's
    view today (`hub.auth.policy`). Every row and candidate found passes through it, so
    an operator outside the view takes the path of one that does not exist."""

    def __init__(self, session: Session, view: View | None) -> None:
        self.session = session
        self.view = view

    def keep_rows(self, hits: dict[tuple[str, str], list[int]], rows: dict[int, Any]) -> None:
        """Drop from `hits` and `rows` the operators outside the view."""
        if self.view is None or not rows:
            return
        shown = policy.grants_of_ids(self.session, self.view, rows)
        for op_id in [i for i in rows if i not in shown]:
            del rows[op_id]
        for pair in list(hits):
            hits[pair] = [i for i in hits[pair] if i in shown]
            if not hits[pair]:
                del hits[pair]

    def keep_ids(self, ids: Iterable[int]) -> set[int]:
        """The ids among `ids` inside the view."""
        wanted = set(ids)
        if self.view is None or not wanted:
            return wanted
        return set(policy.grants_of_ids(self.session, self.view, wanted))


def _resolve(session: Session, snapshot: CachedReference, references: Sequence[DeclaredTrader],
             recognising: str, settings: MatchSettings, scope: _Scope,
             read_ahead: ReadAhead | None = None
             ) -> tuple[list[MatchResult | int], dict[int, Any]]:
    """Identity resolution for every reference: identifiers in bulk, then names, among
    the operators of `scope`.

    Returns the results (the operator id when an identifier alone names one operator)
    and the rows (`_COLUMNS`) of the operators they name.
    """
    recognised_ids = {snapshot.programmes[c].id for c in snapshot.recognised_by(recognising)}
    rows: dict[int, Any] = {}
    # Fast path: a compacted value found among declared identifiers (which the sync
    # validated and normalised) is valid and normalised; the others are normalised in full.
    compact = [_compact_identifier(r) if r.has_identifier else None for r in references]
    hits = _by_identifier(session, {p for p in compact if p is not None}, rows, read_ahead)
    scope.keep_rows(hits, rows)
    normalised: list[tuple[str, str] | None] = []
    results: list[MatchResult | None] = []
    for reference, fast in zip(references, compact, strict=True):
        results.append(None)
        if fast is not None and fast in hits:
            normalised.append(fast)
            continue
        if not reference.has_identifier:
            normalised.append(None)
            continue
        try:
            normalised.append(normalise_reference_identifier(reference))
        except IdentifierError as exc:
            normalised.append(None)
            results[-1] = MatchResult("no_match", [], None, [Reason(
                rc.INVALID_IDENTIFIER,
                f"{reference.scheme} {reference.value!r} is not valid: {exc}")])
    pairs = {p for p in normalised if p is not None}
    second = {p for p in pairs if p not in hits} - {p for p in compact if p is not None}
    if second:
        hits.update(_by_identifier(session, second, rows))
        scope.keep_rows(hits, rows)
    missing_mids = {p for p in pairs if p[0] == "MID" and p not in hits}
    hints = identifier_hits(session, missing_mids, declared=False) if missing_mids else {}
    if hints:
        shown = scope.keep_ids(i for ids in hints.values() for i in ids)
        hints = {p: kept for p, ids in hints.items() if (kept := [i for i in ids if i in shown])}
    summaries = {i: (snapshot.by_id[r.programme_id].code, r.stable_key, r.legal_name)
                 for i, r in rows.items()}
    if hints:
        summaries.update(summaries_of(session, [i for g in hints.values() for i in g]))
    index = None
    out: list[MatchResult | int] = []
    for reference, pair, early in zip(references, normalised, results, strict=True):
        result = early
        if result is None and pair is not None:
            ids = hits.get(pair, [])
            if len(ids) == 1 and not reference.has_name:
                out.append(ids[0])  # identified: the common case, kept lean
                continue
            if len(ids) > 1:
                # One identifier, several programmes: keep those the recogniser recognises.
                preferred = [i for i in ids if rows[i].programme_id in recognised_ids]
                ids = preferred if len(preferred) == 1 else ids
            result = identifier_result(session, pair[0], pair[1], ids, hints.get(pair, []),
                                       summaries)
        if reference.has_name:
            index = index or match_index(session, settings)
            result = add_name_and_address(session, index, reference, result, settings,
                                          recognised_ids or None, scope.keep_ids)
        assert result is not None
        out.append(result)
    _by_id(session, [r.best.operator_id for r in out
                     if not isinstance(r, int) and r.decision == "match" and r.best], rows)
    return out, rows


class CurrentRow(NamedTuple):
    """An operator's current row, as the answer read it (`hub.auth.policy.OperatorLike`)."""

    id: int
    programme_id: int
    consent_share: bool
    categories: tuple[Mapping[str, Any], ...]


class _Categories:
    """Categories JSON decoded once per distinct text, with its recognition key."""

    def __init__(self) -> None:
        self._decoded: dict[Any, tuple[tuple[Mapping[str, Any], ...], tuple[Any, ...]]] = {}

    def __call__(self, raw: Any) -> tuple[tuple[Mapping[str, Any], ...], tuple[Any, ...]]:
        if not isinstance(raw, str | None):  # a driver that decodes JSON itself
            raw = json.dumps(raw, sort_keys=True)
        found = self._decoded.get(raw)
        if found is None:
            categories = tuple(jsonio.unpack(raw) or ()) if raw else ()
            found = (categories, categories_key(categories))
            self._decoded[raw] = found
        return found


def _current_state(row: Any, categories: tuple[Mapping[str, Any], ...]) -> OperatorFacts:
    """The state held by an operator's current row (as `history.facts_from_current`)."""
    return OperatorFacts(
        exists=row.status != "annulled", annulled=row.status == "annulled",
        listed=row.removed_at is None, status=row.status,
        status_effective=row.status_effective, categories=categories,
        consent_share=bool(row.consent_share), consent_publish=bool(row.consent_publish),
        details=row._mapping, began=row.authorised_on or row.valid_from)


def _states(session: Session, rows: Mapping[int, Any], day: dt.date,
            known_at: dt.datetime | None, decode: _Categories | None = None
            ) -> dict[int, tuple[OperatorFacts | None, tuple[Any, ...] | None]]:
    """State of each operator on `day` as known at `known_at`, with its categories key:
    from the current row when it holds on that day, from history (one query) otherwise."""
    decode = decode or _Categories()
    out: dict[int, tuple[OperatorFacts | None, tuple[Any, ...] | None]] = {}
    need_history = []
    for op_id, row in rows.items():
        if known_at is None and row.last_effective is not None and day >= row.last_effective:
            categories, key = decode(row.categories)
            out[op_id] = (_current_state(row, categories), key)
        else:
            need_history.append(op_id)
    if need_history:
        for op_id, events in recorded_events(session, sorted(need_history)).items():
            out[op_id] = (facts_at(events, day, known_at), None)
    return out


def _operator_view(row: Any, programme: str, state: OperatorFacts, current: bool
                   ) -> dict[str, Any]:
    """The operator as the answer shows it: its details on the day asked about
    (`current`: the state is the current row's, read from `row` directly)."""
    categories = [dict(c) for c in state.categories]
    if current:
        return {
            "id": row.id, "programme": programme, "stable_key": row.stable_key,
            "authorisation_number": row.authorisation_number,
            "trader_id_scheme": row.trader_id_scheme, "trader_id": row.trader_id,
            "legal_name": row.legal_name, "street": row.street, "city": row.city,
            "postcode": row.postcode, "country": row.country, "status": state.status,
            "categories": categories,
        }
    details = state.details
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
        "status": state.status,
        "categories": categories,
    }


def verify_many(session: Session, references: Sequence[DeclaredTrader],
                recognising_programme_code: str, day: dt.date | None = None,
                flow: str = "import", known_at: dt.datetime | None = None, *,
                staleness_seconds: int = DEFAULT_STALENESS_SECONDS,
                now: dt.datetime | None = None,
                settings: MatchSettings = DEFAULT_SETTINGS,
                current_rows: dict[int, CurrentRow] | None = None,
                read_ahead: ReadAhead | None = None, view: View | None = None
                ) -> list[Decision]:
    """`verify` for many references at once (same programme, day, flow, known-at and
    view).

    A large batch runs with the cyclic garbage collector paused (`hub.gcpause`).
    """
    with gcpause.paused(len(references) >= _PAUSE_GC_FROM):
        return _verify_many(session, references, recognising_programme_code, day, flow,
                            known_at, staleness_seconds, now, settings, current_rows,
                            read_ahead, view)


def verify_many_dicts(session: Session, references: Sequence[DeclaredTrader],
                      recognising_programme_code: str, day: dt.date | None = None,
                      flow: str = "import", known_at: dt.datetime | None = None, *,
                      staleness_seconds: int = DEFAULT_STALENESS_SECONDS,
                      now: dt.datetime | None = None,
                      settings: MatchSettings = DEFAULT_SETTINGS,
                      current_rows: dict[int, CurrentRow] | None = None,
                      view: View | None = None) -> list[dict[str, Any]]:
    """`verify_many` answered as `Decision.to_dict()` dictionaries, built while the
    collector is still paused (what a batch endpoint serialises anyway)."""
    with gcpause.paused(len(references) >= _PAUSE_GC_FROM):
        decisions = _verify_many(session, references, recognising_programme_code, day, flow,
                                 known_at, staleness_seconds, now, settings, current_rows,
                                 view=view)
        made: dict[int, Any] = {}
        return [d.to_dict(made) for d in decisions]


def _verify_many(session: Session, references: Sequence[DeclaredTrader],
                 recognising_programme_code: str, day: dt.date | None, flow: str,
                 known_at: dt.datetime | None, staleness_seconds: int,
                 now: dt.datetime | None, settings: MatchSettings,
                 current_rows: dict[int, CurrentRow] | None = None,
                 read_ahead: ReadAhead | None = None, view: View | None = None
                 ) -> list[Decision]:
    now = now or clock.now()
    day = day or now.date()
    recognising = recognising_programme_code
    snapshot = cached_reference(session)
    _check_inputs(snapshot, references, recognising, flow, known_at)
    decode = _Categories()
    results, rows = _resolve(session, snapshot, references, recognising, settings,
                             _Scope(session, view), read_ahead)
    states = _states(session, rows, day, known_at, decode)
    if current_rows is not None:
        for op_id, row in rows.items():
            current_rows[op_id] = CurrentRow(op_id, row.programme_id, bool(row.consent_share),
                                             decode(row.categories)[0])
    evaluator = Evaluator.shared(snapshot, recognising, day, flow)
    fallback: list[dt.datetime | None] = []

    def fallback_version() -> dt.datetime | None:
        """For an unknown trader: the oldest sync among the programmes R recognises."""
        if not fallback:
            fallback.append(_oldest_sync(session, [
                snapshot.programmes[c].id for c in snapshot.recognised_by(recognising)]))
        return fallback[0]

    def freshness(version: dt.datetime | None) -> tuple[int | None, bool]:
        if version is None:
            return None, True
        age = int((now - version).total_seconds())
        return age, age > staleness_seconds

    decisions = []
    for reference, result in zip(references, results, strict=True):
        decision = Decision("unknown_trader", recognising, day, flow, known_at, reference)
        if isinstance(result, int):
            operator_id: int | None = result
        elif result.decision == "match" and result.best is not None:
            operator_id = result.best.operator_id
        else:
            operator_id = None
            if result.decision == "ambiguous":
                decision.decision = "ambiguous"
                decision.candidates = result.candidates
            else:
                decision.candidates = [c for c in result.candidates if c.via == "derived_mid"]
            decision.reasons = result.reasons
            decision.data_version = fallback_version()
        if operator_id is not None:
            row = rows[operator_id]
            programme = snapshot.by_id[row.programme_id]
            state, key = states.get(operator_id, (None, None))
            decision.data_version = row.data_version
            if state is None:
                decision.reasons = [Reason(rc.NOT_KNOWN_AT, "the hub did not know this "
                                           "operator at the time asked about")]
            else:
                decision.operator = _operator_view(row, programme.code, state,
                                                   current=key is not None)
                found, reasons = evaluator.evaluate(programme, state, key)
                decision.decision = "recognised" if found else "not_recognised"
                decision.arrangements = found
                decision.reasons = reasons
        decision.data_age_seconds, decision.stale = freshness(decision.data_version)
        decisions.append(decision)
    return decisions
