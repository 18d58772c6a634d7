"""The one operator representation every answer uses, and the data version it carries.

Lists, single reads, exports, the change feed and webhooks all give an operator as
`shared_record`: `operator_record` cut by `hub.auth.policy.filter_fields` to the fields
the client's grant shares. `data_version` says how fresh the programmes behind an answer
are.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import clock
from hub.auth import policy
from hub.auth.policy import Grant, View
from hub.jsonio import iso
from hub.registry.models import Operator, OperatorIdentifier, Programme

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
    age = max(0, int((clock.now() - oldest).total_seconds()))
    return {"data_version": oldest.isoformat(), "data_age_seconds": age}


def view_data_version(session: Session, view: View) -> dict[str, Any]:
    return data_version(session, view.programme_ids())


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
        "status_effective": iso(row.status_effective),
        "categories": list(row.categories or []),
        "authorised_on": iso(row.authorised_on),
        "valid_from": iso(row.valid_from),
        "valid_until": iso(row.valid_until),
        "issuing_authority": row.issuing_authority,
        "trader_id_scheme": row.trader_id_scheme,
        "trader_id": row.trader_id,
        "authorisation_number": row.authorisation_number,
        "identifiers": [
            {"scheme": i.scheme, "value": i.value, "origin": i.origin, "linked": i.linked}
            for i in sorted(identifiers, key=lambda i: i.id) if i.origin == "declared"],
        "listed": row.removed_at is None,
        "removed_at": iso(row.removed_at),
        "updated_at": iso(row.updated_at),
    }


def shared_record(row: Operator, grant: Grant, codes: Mapping[int, tuple[str, Any]],
                  identifiers: Sequence[OperatorIdentifier]) -> dict[str, Any]:
    """`operator_record` cut down to the fields `grant` shares (identifiers only with the
    arrangement's `identifier` data item)."""
    code = codes[row.programme_id][0] if row.programme_id in codes else str(row.programme_id)
    return policy.filter_fields(operator_record(row, code, identifiers), grant)
