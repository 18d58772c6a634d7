"""Read services of the partner API: every operator read goes through `hub.auth.policy`.

Routes call these functions with the caller's `View`; nothing here returns an operator
the view does not allow, nor a field its grant does not share.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hub.arrangements.models import Arrangement, ArrangementDirection, ArrangementParty
from hub.auth import policy
from hub.auth.cursors import read_cursor, sign_cursor
from hub.auth.policy import Grant, View
from hub.auth.shared import data_version, programme_codes, shared_record
from hub.db import MAX_ID
from hub.errors import InvalidInput, NotFound
from hub.jsonio import iso
from hub.recognition.crosswalk import crosswalk
from hub.recognition.rules import cached_reference
from hub.registry.models import Operator, OperatorEvent, Programme

SCAN_BATCH = 500

def _programme_id(session: Session, code: str) -> int:
    pid = session.scalar(select(Programme.id).where(Programme.code == code))
    if pid is None:
        raise NotFound(f"programme {code} does not exist", fields={"programme": "unknown"})
    return pid


def list_operators(session: Session, view: View, *, programme: str | None = None,
                   status: str | None = None, category: str | None = None,
                   country: str | None = None, changed_since: dt.datetime | None = None,
                   include_removed: bool = False, cursor: str | None = None,
                   limit: int = 100) -> dict[str, Any]:
    """A page of visible operators ordered by id; the cursor is the last id served."""
    bound = {"list": "operators", "programme": programme, "status": status,
             "category": category, "country": country, "changed_since": changed_since,
             "include_removed": include_removed}
    after = read_cursor(cursor, ("after",), bound)["after"]
    query = (select(Operator).where(policy.sql_filter(view)).order_by(Operator.id)
             .options(selectinload(Operator.identifiers)))
    programme_ids = view.programme_ids()
    if programme:
        pid = _programme_id(session, programme)
        if not view.may_see_programme(pid):
            raise NotFound(f"programme {programme} is not shared with this client",
                           fields={"programme": "not shared"})
        query = query.where(Operator.programme_id == pid)
        programme_ids = frozenset({pid})
    if status:
        query = query.where(Operator.status == status)
    if country:
        query = query.where(Operator.country == country.upper())
    if changed_since:
        query = query.where(Operator.updated_at >= changed_since)
    if not include_removed:
        query = query.where(Operator.removed_at.is_(None))
    items: list[dict[str, Any]] = []
    last_seen = after
    exhausted = False
    while len(items) < limit:
        rows = list(session.scalars(query.where(Operator.id > last_seen).limit(SCAN_BATCH)))
        if not rows:
            exhausted = True
            break
        allowed = policy.grants_of_rows(session, view, rows)
        codes = programme_codes(session, {row.programme_id for row in rows})
        for row in rows:
            last_seen = row.id
            grant = allowed.get(row.id)
            if grant is None:
                continue
            if category and category not in policy.category_codes(row.categories):
                continue
            items.append(shared_record(row, grant, codes, row.identifiers))
            if len(items) >= limit:
                break
        if len(rows) < SCAN_BATCH and len(items) < limit:
            exhausted = True
            break
    next_cursor = None if exhausted else sign_cursor({"after": last_seen}, bound)
    return {**data_version(session, programme_ids), "items": items, "next_cursor": next_cursor}


def visible_operator(session: Session, view: View, operator_id: int) -> tuple[Operator, Grant]:
    """The operator if the view may see it; otherwise 404, as if it did not exist."""
    # Ids beyond the INTEGER column cannot exist (and a driver may refuse to bind them).
    row = session.get(Operator, operator_id) if operator_id <= MAX_ID else None
    grant = policy.grant_of_row(session, view, row) if row is not None else None
    if row is None or grant is None:
        raise NotFound(f"operator {operator_id} does not exist or is not shared with "
                       "this client", fields={"id": "unknown"})
    return row, grant


def operator_detail(session: Session, view: View, operator_id: int) -> dict[str, Any]:
    row, grant = visible_operator(session, view, operator_id)
    record = shared_record(row, grant, programme_codes(session, [row.programme_id]),
                           row.identifiers)
    return {**data_version(session, [row.programme_id]), "operator": record}


def operator_history(session: Session, view: View, operator_id: int) -> dict[str, Any]:
    row, grant = visible_operator(session, view, operator_id)
    events = session.scalars(
        select(OperatorEvent).where(OperatorEvent.operator_id == row.id)
        .order_by(OperatorEvent.recorded_at, OperatorEvent.id))
    out = []
    for event in events:
        changes = policy.filter_changes(event.changes or {}, grant)
        previous = policy.filter_changes(event.previous or {}, grant)
        if not changes and event.kind not in ("created", "removed", "restored"):
            continue
        out.append({"id": event.id, "kind": event.kind,
                    "effective_date": event.effective_date.isoformat(),
                    "recorded_at": event.recorded_at.isoformat(),
                    "changes": changes, "previous": previous})
    return {**data_version(session, [row.programme_id]), "operator_id": row.id,
            "events": out}


# --- declaration codes ----------------------------------------------------------------

#: Why a code's value is left out: the client's arrangements do not share identifiers.
IDENTIFIERS_NOT_SHARED = ("the arrangements under which this client sees the operator do "
                          "not share its identifiers")


def administration_of(session: Session, programme_code: str) -> str:
    """The administration that runs a programme (from the reference snapshot)."""
    return cached_reference(session).programmes[programme_code].administration


def declaring_administration(session: Session, view: View, declaring: str | None) -> str:
    """The administration codes are asked for: as named, else the client's own."""
    if declaring:
        return declaring.strip().upper()
    own = (cached_reference(session).by_id.get(view.programme_id)
           if view.programme_id is not None and not view.is_admin else None)
    if own is None:
        raise InvalidInput("an admin client names the declaring administration",
                           fields={"declaring": "required for admin clients"})
    return own.administration


def declaration_codes(session: Session, grant: Grant, operator_id: int, declaring: str,
                      day: dt.date | None) -> dict[str, Any]:
    """The crosswalk (`hub.recognition.crosswalk`) for a visible operator, cut to what its
    grant shares: without the `identifier` data item, no code's value is given."""
    try:
        answer = crosswalk(session, operator_id, declaring, day).to_dict()
    except NotFound as exc:
        if "declared_in" not in exc.fields:
            raise
        raise InvalidInput(f"administration {declaring} does not exist",
                           fields={"declaring": "unknown administration"}) from exc
    if "identifiers" not in grant.fields:
        answer["codes"], answer["warnings"] = [], [IDENTIFIERS_NOT_SHARED]
    return answer


# --- reference data --------------------------------------------------------------------


def list_programmes(session: Session) -> dict[str, Any]:
    rows = session.scalars(select(Programme).options(selectinload(Programme.administration))
                           .order_by(Programme.code))
    return {"programmes": [{
        "code": p.code, "name": p.name, "administration": p.administration.code,
        "categories": [{"code": c.get("code"), "description": c.get("description")}
                       for c in p.categories or []],
        "primary_scheme": p.primary_scheme, "consent_required": bool(p.consent_required),
        "data_version": iso(p.data_version),
    } for p in rows]}


def list_arrangements(session: Session, view: View) -> dict[str, Any]:
    """Arrangements with their directions; a partner sees those its programme is party to."""
    today = view.day
    query = select(Arrangement).options(
        selectinload(Arrangement.parties).selectinload(ArrangementParty.programme),
        selectinload(Arrangement.directions).selectinload(ArrangementDirection.recognising),
        selectinload(Arrangement.directions).selectinload(ArrangementDirection.recognised),
        selectinload(Arrangement.status_changes),
    ).order_by(Arrangement.code)
    out = []
    for arrangement in session.scalars(query):
        if not view.is_admin and view.programme_id not in {
                p.programme_id for p in arrangement.parties}:
            continue
        out.append({
            "code": arrangement.code, "title": arrangement.title, "kind": arrangement.kind,
            "status": policy.arrangement_status_on(arrangement, today),
            "parties": sorted(p.programme.code for p in arrangement.parties),
            "data_fields": list(arrangement.data_fields or []),
            "directions": [{
                "recognising": d.recognising.code, "recognised": d.recognised.code,
                "categories": list(d.categories or []), "flows": list(d.flows or []),
                "active_from": iso(d.active_from), "active_until": iso(d.active_until),
                "active": policy.direction_active(d, arrangement, today),
            } for d in arrangement.directions],
        })
    return {"arrangements": out}


# --- export ----------------------------------------------------------------------------


def export_lines(session: Session, view: View, programme: str) -> Iterator[str]:
    """NDJSON lines of every visible, listed operator of `programme` (keyset batches)."""
    pid = _programme_id(session, programme)
    if not view.may_see_programme(pid):
        raise NotFound(f"programme {programme} is not shared with this client",
                       fields={"programme": "not shared"})
    codes = programme_codes(session, [pid])
    query = (select(Operator).where(policy.sql_filter(view), Operator.programme_id == pid,
                                    Operator.removed_at.is_(None)).order_by(Operator.id)
             .options(selectinload(Operator.identifiers)))

    def generate() -> Iterator[str]:
        last = 0
        while True:
            rows = list(session.scalars(query.where(Operator.id > last).limit(2000)))
            if not rows:
                return
            allowed = policy.grants_of_rows(session, view, rows)
            for row in rows:
                grant = allowed.get(row.id)
                if grant is not None:
                    yield json.dumps(shared_record(row, grant, codes, row.identifiers),
                                     separators=(",", ":")) + "\n"
            last = rows[-1].id
            session.expunge_all()

    return generate()
