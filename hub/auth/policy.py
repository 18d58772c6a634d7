"""The data-sharing policy: the one place that decides who may see which operator.

A client acting for programme R sees an operator of programme P only while, judged at
request time (today):

1. a direction "R recognises P" is active today, by the one rulebook
   (`hub.arrangements.rulebook`: its arrangement is in force, the start date counts, the
   end date does not, and a direction without a start date is not active);
2. the operator holds or held a category in that direction's scope, whatever its status
   now (so partners see suspensions and revocations instead of losing sight of the
   operator). "Holds" is read from the current `categories`; "held" from the operator's
   recorded history (`created` and `categories_changed` events), which is consulted only
   for operators whose current categories miss the scope, in one query per batch, and
   not for a row that says it has no `categories_changed` event (`category_history`
   False): its creation's categories are among its current ones;
3. the operator consents to sharing (`consent_share`) where P requires consent.

It sees only the fields the arrangement shares (`data_fields`); two arrangements
covering the same pair share the union. A client holding the `admin` scope sees every
operator and every field.

Forms: `view_for` builds a `View` (the per-programme grants, cached in memory per worker
and keyed by the reference version, so a suspension takes effect on the next request in
every worker); `sql_filter(view)` is the set-based pre-filter (programme and consent) for
queries; `visible(session, view, rows)` decides a batch of rows with at most one extra
query; `grant_for(view, row, held)` decides one row; `filter_fields` cuts a record down to
what its grant shares.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, bindparam, false, or_, select, true
from sqlalchemy.orm import Session, selectinload

from hub import state
from hub.arrangements.models import Arrangement, ArrangementDirection
from hub.arrangements.rulebook import arrangement_status_on, direction_active
from hub.db import ListQuery, bind_key
from hub.registry.models import Operator, OperatorEvent, Programme

#: The rulebook's answers, named here too for the API's arrangement listing.
__all__ = ["arrangement_status_on", "direction_active"]

#: What each shared data item of an arrangement exposes of an operator record.
FIELD_MAP: Mapping[str, tuple[str, ...]] = {
    "legal_name": ("legal_name",),
    "address": ("street", "city", "postcode", "region", "country"),
    "status": ("status",),
    "authorisation_date": ("authorised_on", "valid_from"),
    "suspensions": ("status_effective",),
    "revocations": ("status_effective",),
    "identifier": ("trader_id_scheme", "trader_id", "authorisation_number", "identifiers"),
    "programme": ("programme",),
    "categories": ("categories",),
    "valid_until": ("valid_until",),
    "issuing_authority": ("issuing_authority",),
}
#: Fields every visible record carries: the hub's own id and bookkeeping.
ALWAYS_FIELDS = frozenset({"id", "listed", "removed_at", "updated_at"})
#: Every operator field the API can return.
ALL_FIELDS = ALWAYS_FIELDS | frozenset(f for fs in FIELD_MAP.values() for f in fs)


class OperatorLike(Protocol):
    """The facts of an operator the policy judges (an `Operator`, a row, a tuple)."""

    @property
    def id(self) -> int: ...
    @property
    def programme_id(self) -> int: ...
    @property
    def consent_share(self) -> bool: ...
    @property
    def categories(self) -> Any: ...


@dataclass(frozen=True)
class Grant:
    """What a viewer may see of one recognised programme."""

    programme_id: int
    programme_code: str
    arrangements: tuple[str, ...]
    categories: frozenset[str]
    consent_required: bool
    fields: frozenset[str]

    def in_scope(self, held: Iterable[str]) -> bool:
        return not self.categories.isdisjoint(held)


@dataclass(frozen=True)
class View:
    """Everything a viewer may see, as of one day and one reference version."""

    programme_id: int | None
    is_admin: bool
    day: dt.date
    grants: Mapping[int, Grant]

    def programme_ids(self) -> frozenset[int] | None:
        """The programmes whose operators may be visible (None: all, for admins)."""
        return None if self.is_admin else frozenset(self.grants)

    def may_see_programme(self, programme_id: int) -> bool:
        return self.is_admin or programme_id in self.grants


#: The grant of an admin viewer: every field of any programme.
ADMIN_GRANT = Grant(0, "*", (), frozenset(), False, ALL_FIELDS)

_cache: dict[tuple[str, int | None, bool, dt.date], tuple[Any, View]] = {}
_cache_lock = threading.Lock()


def shared_fields(data_fields: Iterable[str]) -> frozenset[str]:
    out = set(ALWAYS_FIELDS)
    for item in data_fields:
        out.update(FIELD_MAP.get(item, ()))
    return frozenset(out)


def _build_view(session: Session, programme_id: int | None, is_admin: bool, day: dt.date
                ) -> View:
    if is_admin or programme_id is None:
        return View(programme_id, is_admin, day, {})
    directions = session.scalars(
        select(ArrangementDirection)
        .where(ArrangementDirection.recognising_id == programme_id)
        .options(selectinload(ArrangementDirection.arrangement)
                 .selectinload(Arrangement.status_changes),
                 selectinload(ArrangementDirection.recognised))
    )
    merged: dict[int, dict[str, Any]] = {}
    for direction in directions:
        if not direction_active(direction, direction.arrangement, day):
            continue
        recognised: Programme = direction.recognised
        entry = merged.setdefault(recognised.id, {
            "code": recognised.code, "arrangements": [], "categories": set(),
            "consent": bool(recognised.consent_required), "fields": set()})
        entry["arrangements"].append(direction.arrangement.code)
        entry["categories"].update(str(c) for c in direction.categories or ())
        entry["fields"].update(shared_fields(direction.arrangement.data_fields or ()))
    grants = {
        pid: Grant(pid, e["code"], tuple(sorted(e["arrangements"])),
                   frozenset(e["categories"]), e["consent"], frozenset(e["fields"]))
        for pid, e in merged.items()
    }
    return View(programme_id, False, day, grants)


def database_key(session: Session) -> str:
    """Which database a session reads (caches must not mix two databases' rows)."""
    return bind_key(session)


def reference_version(session: Session) -> tuple[int, Any]:
    """The reference version and when it moved (a wiped and reloaded database restarts
    the counter, but never at the same instant); read once per request."""
    stamp = state.reference_stamp(session)
    return (int(stamp[0]), stamp[1]) if stamp is not None else (0, None)


def view_for(session: Session, programme_id: int | None, *, admin: bool = False,
             day: dt.date | None = None) -> View:
    """The viewer's `View` on `day` (default: today), rebuilt when reference data changed."""
    day = day or dt.datetime.now(dt.UTC).date()
    version = reference_version(session)
    key = (database_key(session), programme_id, admin, day)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    view = _build_view(session, programme_id, admin, day)
    with _cache_lock:
        if len(_cache) > 512:
            _cache.clear()
        _cache[key] = (version, view)
    return view


def sql_filter(view: View, operator: Any = Operator) -> ColumnElement[bool]:
    """The set-based part of the policy as a WHERE clause: programme and consent.

    Categories are judged on the rows (`visible`), because they live in JSON.
    """
    if view.is_admin:
        return true()
    if not view.grants:
        return false()
    free = [g.programme_id for g in view.grants.values() if not g.consent_required]
    consent = [g.programme_id for g in view.grants.values() if g.consent_required]
    clauses: list[ColumnElement[bool]] = []
    if free:
        clauses.append(operator.programme_id.in_(free))
    if consent:
        clauses.append(and_(operator.programme_id.in_(consent),
                            operator.consent_share.is_(True)))
    return or_(*clauses)


def category_codes(categories: Any) -> set[str]:
    return {str(c.get("code")) for c in categories or () if isinstance(c, Mapping)}


#: Built once: the categories recorded by operators' creation and category events (only
#: that member of each event's JSON, extracted by the database), for a list of operators
#: and for one (a single verify, on the driver's cursor).
_CATEGORY_EVENTS = (
    select(OperatorEvent.operator_id, OperatorEvent.changes["categories"],
           OperatorEvent.previous["categories"])
    .where(or_(OperatorEvent.kind == "created", OperatorEvent.kind == "categories_changed"))
)
_HELD = ListQuery(_CATEGORY_EVENTS, OperatorEvent.operator_id, "ids")


def held_categories(session: Session, operator_ids: Sequence[int]) -> dict[int, set[str]]:
    """Every category code each operator ever held, from its recorded history."""
    held: dict[int, set[str]] = {i: set() for i in operator_ids}
    if operator_ids:
        for op_id, now, before in _HELD.rows(session, {"ids": list(operator_ids)}):
            held[op_id] |= category_codes(now)
            held[op_id] |= category_codes(before)
    return held


def grant_for(view: View, row: OperatorLike, held: Iterable[str] | None = None, *,
              ignore_consent: bool = False) -> Grant | None:
    """The grant under which `view` sees `row` (None: not visible).

    `held` adds the categories the operator held in the past (see `visible`);
    `ignore_consent` asks whether consent is the only thing hiding it (the change feed's
    tombstones).
    """
    if view.is_admin:
        return ADMIN_GRANT
    grant = view.grants.get(row.programme_id)
    if grant is None:
        return None
    if grant.consent_required and not row.consent_share and not ignore_consent:
        return None
    codes = category_codes(row.categories)
    if held is not None:
        codes |= set(held)
    return grant if grant.in_scope(codes) else None


def visible(session: Session, view: View, rows: Sequence[OperatorLike], *,
            ignore_consent: bool = False) -> dict[int, Grant]:
    """The rows `view` may see, by id, with their grants (one history query at most)."""
    result: dict[int, Grant] = {}
    need_history: list[OperatorLike] = []
    for row in rows:
        grant = grant_for(view, row, ignore_consent=ignore_consent)
        if grant is not None:
            result[row.id] = grant
        elif view.grants.get(row.programme_id) is not None and (ignore_consent or not (
            view.grants[row.programme_id].consent_required and not row.consent_share
        )) and getattr(row, "category_history", True):
            need_history.append(row)
    if need_history:
        held = held_categories(session, [r.id for r in need_history])
        for row in need_history:
            grant = grant_for(view, row, held.get(row.id, set()),
                              ignore_consent=ignore_consent)
            if grant is not None:
                result[row.id] = grant
    return result


#: Built once: the columns the policy judges, for a list of operator ids.
_JUDGED = (select(Operator.id, Operator.programme_id, Operator.consent_share,
                  Operator.categories)
           .where(Operator.id.in_(bindparam("ids", expanding=True))))


def visible_ids(session: Session, view: View, ids: Iterable[int]) -> dict[int, Grant]:
    """Which of these operators `view` may see, with their grants (`visible` of their
    rows, read in one query)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    if not view.is_admin and not view.grants:
        return {}
    rows: list[Any] = []
    for start in range(0, len(wanted), 5000):
        rows.extend(session.execute(_JUDGED, {"ids": wanted[start:start + 5000]}))
    return visible(session, view, rows)


def may_see(session: Session, view: View, row: OperatorLike) -> Grant | None:
    """The single-row form of `visible`."""
    return visible(session, view, [row]).get(row.id)


def filter_fields(record: Mapping[str, Any], grant: Grant) -> dict[str, Any]:
    """The record cut down to the fields its grant shares."""
    return {k: v for k, v in record.items() if k in grant.fields}


def filter_changes(changes: Mapping[str, Any], grant: Grant) -> dict[str, Any]:
    """History `changes` cut down to shared fields (`listed` always passes)."""
    allowed = grant.fields | {"listed", "consent_share"}
    return {k: v for k, v in changes.items() if k in allowed}


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
