"""The data-sharing policy: the one place that decides who may see which operator.

A client acting for programme R sees an operator of programme P only while, judged at
request time (today):

1. a direction "R recognises P" is active today, by the one rulebook
   (`hub.arrangements.rulebook`: its arrangement is in force, the start date counts, the
   end date does not, and a direction without a start date is not active);
2. the operator holds or held a category in that direction's scope, whatever its status
   now (so partners see suspensions and revocations instead of losing sight of the
   operator). "Holds" is read from the current `categories`; "held" from the operator's
   recorded history (`created` and `categories_changed` events);
3. the operator consents to sharing (`consent_share`) where P requires consent.

It sees only the fields the arrangement shares (`data_fields`); two arrangements
covering the same pair share the union. A client holding the `admin` scope sees every
operator and every field.

Forms: `view_for` builds a `View` (the per-programme grants of today, cached in memory per
worker and keyed by the reference version, so a suspension takes effect on the next
request in every worker); `sql_filter(view)` is the one query condition for "the
operators this client may see today", in the manner of Superset's base filter: every
partner path applies it, directly to its query or through `grants_of_ids` / `grants_of_rows` (one
query for a batch of known operators); `filter_fields` cuts a record down to what its
grant shares.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Boolean, ColumnElement, String, bindparam, false, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import ClauseList
from sqlalchemy.sql.visitors import InternalTraversal

from hub import clock, versions
from hub.arrangements.models import Arrangement, ArrangementDirection
from hub.arrangements.rulebook import arrangement_status_on, direction_active
from hub.db import bind_key
from hub.registry.models import Operator, Programme

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
    """An operator the policy is asked about (an `Operator`, a row, a tuple): its id is
    all the base filter needs."""

    @property
    def id(self) -> int: ...


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
    stamp = versions.reference_stamp(session)
    return (int(stamp[0]), stamp[1]) if stamp is not None else (0, None)


def view_for(session: Session, programme_id: int | None, *, admin: bool = False,
             day: dt.date | None = None) -> View:
    """The viewer's `View` on `day` (default: today), rebuilt when reference data changed."""
    day = day or clock.now().date()
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


class _InView(ColumnElement[bool]):
    """SQL: the operator is in the view whose grants are bound as one JSON parameter, a
    list of {"p": programme id, "c": category code, "k": consent required}.

    The operator qualifies through a grant of its programme, with consent where the grant
    requires it (unless `ignore_consent`), whose category it holds now (its `categories`)
    or held once (the categories its `created` and `categories_changed` events recorded).
    The statement's text is the same for every view, so it is compiled once and cached;
    the JSON functions differ per dialect (compiled below).
    """

    type = Boolean()
    inherit_cache = True
    _traverse_internals = [
        ("columns", InternalTraversal.dp_clauseelement),
        ("grants", InternalTraversal.dp_clauseelement),
        ("ignore_consent", InternalTraversal.dp_boolean),
    ]

    def __init__(self, operator: Any, grants: str, ignore_consent: bool) -> None:
        self.columns = ClauseList(operator.id, operator.programme_id, operator.consent_share,
                                  operator.categories)
        self.grants = bindparam("policy_grants", grants, type_=String(), unique=True)
        self.ignore_consent = ignore_consent


#: The clause per dialect: {grants} is the bound JSON parameter, {op_id}, {programme},
#: {consent} and {categories} the operator's compiled columns; {consent_ok} is empty when
#: consent is ignored. The same category test is applied to the current categories and to
#: those each creation or category event recorded.
_SQLITE = """EXISTS (SELECT 1 FROM json_each({grants}) AS g
WHERE json_extract(g.value, '$.p') = {programme}{consent_ok} AND (
 EXISTS (SELECT 1 FROM json_each({categories}) AS h
  WHERE json_extract(h.value, '$.code') = json_extract(g.value, '$.c'))
 OR EXISTS (SELECT 1 FROM operator_event AS ev WHERE ev.operator_id = {op_id}
  AND ev.kind IN ('created', 'categories_changed') AND (
   EXISTS (SELECT 1 FROM json_each(ev.changes, '$.categories') AS h
    WHERE json_extract(h.value, '$.code') = json_extract(g.value, '$.c'))
   OR EXISTS (SELECT 1 FROM json_each(ev.previous, '$.categories') AS h
    WHERE json_extract(h.value, '$.code') = json_extract(g.value, '$.c'))))))"""
_SQLITE_CONSENT = " AND (json_extract(g.value, '$.k') = 0 OR {consent} = 1)"
_POSTGRESQL = """EXISTS (SELECT 1
FROM json_to_recordset(CAST({grants} AS json)) AS g(p integer, c text, k boolean)
WHERE g.p = {programme}{consent_ok} AND (
 EXISTS (SELECT 1 FROM json_array_elements(CASE WHEN json_typeof({categories}) = 'array'
  THEN {categories} ELSE '[]'::json END) AS h(value) WHERE h.value ->> 'code' = g.c)
 OR EXISTS (SELECT 1 FROM operator_event AS ev WHERE ev.operator_id = {op_id}
  AND ev.kind IN ('created', 'categories_changed') AND (
   EXISTS (SELECT 1 FROM json_array_elements(CASE
    WHEN json_typeof(ev.changes -> 'categories') = 'array'
    THEN ev.changes -> 'categories' ELSE '[]'::json END) AS h(value)
    WHERE h.value ->> 'code' = g.c)
   OR EXISTS (SELECT 1 FROM json_array_elements(CASE
    WHEN json_typeof(ev.previous -> 'categories') = 'array'
    THEN ev.previous -> 'categories' ELSE '[]'::json END) AS h(value)
    WHERE h.value ->> 'code' = g.c)))))"""
_POSTGRESQL_CONSENT = " AND (NOT g.k OR {consent})"


def _render(template: str, consent_template: str, element: _InView, compiler: Any,
            **kw: Any) -> str:
    """Only compiled columns and one bound parameter are pasted: nothing from a request."""
    op_id, programme, consent, categories = (compiler.process(c, **kw)
                                             for c in element.columns.clauses)
    consent_ok = "" if element.ignore_consent else consent_template.format(consent=consent)
    return template.format(grants=compiler.process(element.grants, **kw), op_id=op_id,
                           programme=programme, categories=categories,
                           consent_ok=consent_ok)


@compiles(_InView, "sqlite")
def _in_view_sqlite(element: _InView, compiler: Any, **kw: Any) -> str:
    return _render(_SQLITE, _SQLITE_CONSENT, element, compiler, **kw)


@compiles(_InView, "postgresql")
def _in_view_postgresql(element: _InView, compiler: Any, **kw: Any) -> str:
    return _render(_POSTGRESQL, _POSTGRESQL_CONSENT, element, compiler, **kw)


def _grants_json(view: View) -> str:
    return json.dumps([{"p": g.programme_id, "c": code, "k": g.consent_required}
                       for g in sorted(view.grants.values(), key=lambda g: g.programme_id)
                       for code in sorted(g.categories)], separators=(",", ":"))


def sql_filter(view: View, operator: Any = Operator, *, ignore_consent: bool = False
               ) -> ColumnElement[bool]:
    """THE base filter: the operators `view` may see, as a WHERE clause any query of
    operators applies (lists, single reads, exports, the change feed, verify, match).

    Per granted programme: the programme, consent where it requires consent, and a
    category in scope held now or in the past. `ignore_consent` asks which operators
    consent alone hides (the change feed's tombstones).
    """
    if view.is_admin:
        return true()
    if not view.grants:
        return false()
    return _InView(operator, _grants_json(view), ignore_consent)


def category_codes(categories: Any) -> set[str]:
    return {str(c.get("code")) for c in categories or () if isinstance(c, Mapping)}


def grants_of_ids(session: Session, view: View, ids: Iterable[int], *,
                ignore_consent: bool = False) -> dict[int, Grant]:
    """Which of these operators `view` may see, with their grants: one query applying
    the base filter (`sql_filter`)."""
    wanted = sorted(set(ids))
    if not wanted or (not view.is_admin and not view.grants):
        return {}
    out: dict[int, Grant] = {}
    condition = sql_filter(view, ignore_consent=ignore_consent)
    for start in range(0, len(wanted), 5000):
        rows = session.execute(select(Operator.id, Operator.programme_id).where(
            Operator.id.in_(wanted[start:start + 5000]), condition))
        for op_id, programme_id in rows:
            out[op_id] = ADMIN_GRANT if view.is_admin else view.grants[programme_id]
    return out


def grants_of_rows(session: Session, view: View, rows: Sequence[OperatorLike], *,
            ignore_consent: bool = False) -> dict[int, Grant]:
    """The rows `view` may see, by id, with their grants (`grants_of_ids` of their ids)."""
    if view.is_admin:
        return {row.id: ADMIN_GRANT for row in rows}
    return grants_of_ids(session, view, [row.id for row in rows],
                       ignore_consent=ignore_consent)


def grant_of(view: View, programme_id: int) -> Grant | None:
    """The grant under which `view` sees operators of a programme, for an operator already
    found by a query applying `sql_filter` (None: the view covers no such programme)."""
    return ADMIN_GRANT if view.is_admin else view.grants.get(programme_id)


def grant_of_row(session: Session, view: View, row: OperatorLike) -> Grant | None:
    """The single-row form of `grants_of_rows`."""
    return grants_of_rows(session, view, [row]).get(row.id)


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
