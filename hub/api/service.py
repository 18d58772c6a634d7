"""Read services of the partner API: every operator read goes through `hub.auth.policy`.

Routes call these functions with the caller's `View`; nothing here returns an operator
the view does not allow, nor a field its grant does not share.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hub.api.schemas import MAX_ID
from hub.arrangements.models import Arrangement, ArrangementDirection, ArrangementParty
from hub.auth import policy
from hub.auth.guard import current_principal
from hub.auth.policy import Grant, View
from hub.db import utcnow
from hub.errors import InvalidInput, NotFound
from hub.recognition.crosswalk import crosswalk
from hub.recognition.rules import reference_snapshot
from hub.registry.models import Operator, OperatorEvent, OperatorIdentifier, Programme

SCAN_BATCH = 500

# --- cursors ---------------------------------------------------------------------------


def encode_cursor(data: Mapping[str, int]) -> str:
    """A feed position as text, for the hub's own records (a webhook subscription's place
    in the feed). Partners get `sign_cursor`'s cursors, never these."""
    raw = json.dumps(dict(data), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, keys: Sequence[str]) -> dict[str, int]:
    """The position `encode_cursor` wrote (zeros for none)."""
    if not cursor:
        return dict.fromkeys(keys, 0)
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput("the cursor is not one the hub issued",
                           fields={"cursor": "malformed"}) from exc
    return _position(data, keys)


def _position(data: Any, keys: Sequence[str]) -> dict[str, int]:
    """The whole numbers of a position, each between 0 and MAX_ID."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the cursor is not one the hub issued",
                           fields={"cursor": "malformed"})
    position = {}
    for key in keys:
        value = data.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
            raise InvalidInput("the cursor is not one the hub issued",
                               fields={"cursor": "out of range"})
        position[key] = value
    return position


#: Partners' cursors are signed (itsdangerous, with the app's secret key; the earlier keys
#: of SECRET_KEY_FALLBACKS still verify, so cursors survive a key rotation) and carry the
#: client and a digest of the query they continue: a forged cursor, another client's or
#: another query's is refused. They never expire: a feed can be resumed any time later.
CURSOR_SALT = "aeohub.cursor"


def _cursor_serializer() -> URLSafeSerializer:
    config = current_app.config
    keys = [*(config.get("SECRET_KEY_FALLBACKS") or ()), config["SECRET_KEY"]]
    return URLSafeSerializer(keys, salt=CURSOR_SALT)  # signs with the last key


def _binding(query: Mapping[str, Any]) -> tuple[str, str]:
    """The calling client, and a digest of the query a cursor continues."""
    # The same instant is the same query, whatever offset it was written with.
    text = json.dumps(sorted((k, _iso(v.astimezone(dt.UTC) if isinstance(v, dt.datetime)
                                      else v)) for k, v in query.items()), default=str)
    return current_principal().client_id, hashlib.sha256(text.encode()).hexdigest()[:32]


def sign_cursor(position: Mapping[str, int], query: Mapping[str, Any]) -> str:
    """The cursor a partner gets for `position` in the results of `query`."""
    client_id, digest = _binding(query)
    return _cursor_serializer().dumps({"p": dict(position), "c": client_id, "q": digest})


def read_cursor(cursor: str | None, keys: Sequence[str], query: Mapping[str, Any]
                ) -> dict[str, int]:
    """The position of a partner's cursor for `query` (zeros for none); 400 naming the
    `cursor` parameter when it is forged, malformed, another client's or query's."""
    if not cursor:
        return dict.fromkeys(keys, 0)
    try:
        data = _cursor_serializer().loads(cursor)
    except BadSignature as exc:
        raise InvalidInput("the cursor is not one the hub issued",
                           fields={"cursor": "not issued by the hub"}) from exc
    client_id, digest = _binding(query)
    if not isinstance(data, dict) or data.get("c") != client_id or data.get("q") != digest:
        raise InvalidInput("the cursor was issued for another client or another query",
                           fields={"cursor": "not for this client and query"})
    return _position(data.get("p"), keys)


# --- data version ----------------------------------------------------------------------

_versions: dict[str, tuple[float, dict[int, tuple[str, Any]]]] = {}
_versions_lock = threading.Lock()
VERSION_TTL_SECONDS = 2.0


def programme_versions(session: Session) -> dict[int, tuple[str, dt.datetime | None]]:
    """Programme id -> (code, data version); cached for a couple of seconds per worker."""
    now = time.monotonic()
    key = policy.database_key(session)
    with _versions_lock:
        cached = _versions.get(key)
    if cached is not None and now - cached[0] < VERSION_TTL_SECONDS:
        return cached[1]
    rows = {pid: (code, version) for pid, code, version in
            session.execute(select(Programme.id, Programme.code, Programme.data_version))}
    with _versions_lock:
        _versions[key] = (now, rows)
    return rows


def programme_codes(session: Session, ids: Iterable[int]) -> dict[int, tuple[str, Any]]:
    """Like `programme_versions`, refreshed when a programme is missing."""
    rows = programme_versions(session)
    if any(i not in rows for i in ids):
        with _versions_lock:
            _versions.pop(policy.database_key(session), None)
        rows = programme_versions(session)
    return rows


def data_version(session: Session, programme_ids: Iterable[int] | None) -> dict[str, Any]:
    """`data_version` (the oldest sync time among the programmes) and its age in seconds."""
    versions = programme_versions(session)
    ids = list(versions) if programme_ids is None else list(programme_ids)
    # Programmes never synced hold no data to answer from; the version is the oldest
    # sync among those that do.
    known: list[dt.datetime] = [v for v in (versions[i][1] for i in ids if i in versions)
                                if v is not None]
    if not known:
        return {"data_version": None, "data_age_seconds": None}
    oldest = min(known)
    age = max(0, int((utcnow() - oldest).total_seconds()))
    return {"data_version": oldest.isoformat(), "data_age_seconds": age}


def view_data_version(session: Session, view: View) -> dict[str, Any]:
    return data_version(session, view.programme_ids())


# --- operator records ------------------------------------------------------------------


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def operator_record(row: Operator, programme_code: str,
                    identifiers: Sequence[OperatorIdentifier]) -> dict[str, Any]:
    """An operator in the one representation every answer uses (lists, single reads,
    exports, webhooks): the identifiers are those its source declared (a MID the hub
    derived is a matching hint, never a shared fact)."""
    return {
        "id": row.id,
        "programme": programme_code,
        "legal_name": row.legal_name,
        "street": row.street,
        "city": row.city,
        "postcode": row.postcode,
        "region": row.region,
        "country": row.country,
        "status": row.status,
        "status_effective": _iso(row.status_effective),
        "categories": list(row.categories or []),
        "authorised_on": _iso(row.authorised_on),
        "valid_from": _iso(row.valid_from),
        "valid_until": _iso(row.valid_until),
        "issuing_authority": row.issuing_authority,
        "trader_id_scheme": row.trader_id_scheme,
        "trader_id": row.trader_id,
        "authorisation_number": row.authorisation_number,
        "identifiers": [
            {"scheme": i.scheme, "value": i.value, "origin": i.origin, "linked": i.linked}
            for i in sorted(identifiers, key=lambda i: i.id) if i.origin == "declared"],
        "listed": row.removed_at is None,
        "removed_at": _iso(row.removed_at),
        "updated_at": _iso(row.updated_at),
    }


def shared_record(row: Operator, grant: Grant, codes: Mapping[int, tuple[str, Any]],
                  identifiers: Sequence[OperatorIdentifier]) -> dict[str, Any]:
    """`operator_record` cut down to the fields `grant` shares (identifiers only with the
    arrangement's `identifier` data item)."""
    code = codes[row.programme_id][0] if row.programme_id in codes else str(row.programme_id)
    return policy.filter_fields(operator_record(row, code, identifiers), grant)


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
        allowed = policy.visible(session, view, rows)
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
    grant = policy.may_see(session, view, row) if row is not None else None
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
    return reference_snapshot(session).programmes[programme_code].administration


def declaring_administration(session: Session, view: View, declaring: str | None) -> str:
    """The administration codes are asked for: as named, else the client's own."""
    if declaring:
        return declaring.strip().upper()
    own = (reference_snapshot(session).by_id.get(view.programme_id)
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
        "data_version": _iso(p.data_version),
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
                "active_from": _iso(d.active_from), "active_until": _iso(d.active_until),
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
            allowed = policy.visible(session, view, rows)
            for row in rows:
                grant = allowed.get(row.id)
                if grant is not None:
                    yield json.dumps(shared_record(row, grant, codes, row.identifiers),
                                     separators=(",", ":")) + "\n"
            last = rows[-1].id
            session.expunge_all()

    return generate()
