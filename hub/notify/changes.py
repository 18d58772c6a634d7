"""The change feed: every creation, status change and removal a client may see, plus
tombstones when an operator leaves its view. Resumable through an opaque cursor.

Visibility is judged at request time by `hub.auth.policy` (the operators the client may
see today). An operator leaves a view in two ways, and each gives a tombstone
(`kind: tombstone`, `reason: no_longer_shared`):
- its consent is withdrawn where its programme requires consent (from the operator's
  `consent_changed` event; consent given again gives `kind: shared`);
- a direction of an arrangement is suspended or ends, so that the client's programme no
  longer recognises the operator's programme or category (from the view changes recorded
  by `hub.notify.views`, which also give `kind: shared` when a direction starts).

Correctness under concurrent writers: event ids come from a sequence, and a transaction
can commit an event with a smaller id after a larger one is visible. The feed therefore
serves events only up to a *horizon* below which every event is committed: on
PostgreSQL, the horizon is `max(id)` read while holding `SHARE` lock on `operator_event`
(the lock waits for every transaction that inserted events to finish; with a short lock
timeout, a busy feed falls back to the last horizon computed, so a poll never blocks a
sync and never skips an event); on SQLite, writers are serialised, so the committed
`max(id)` is already a safe horizon.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from hub import versions
from hub.auth import policy
from hub.auth.cursors import read_cursor, sign_cursor
from hub.auth.policy import View
from hub.auth.shared import data_version, programme_codes
from hub.db import Database
from hub.jsonio import iso
from hub.notify import views
from hub.registry.models import Operator, OperatorEvent

HORIZON_KEY = "changes_horizon"
LOCK_TIMEOUT_MS = 200
#: The cursor: the last operator event ("e") and the last view change ("v") served.
CURSOR_KEYS = ("e", "v")
#: What a partner's feed cursor is bound to (besides the client): this feed.
FEED_QUERY = {"list": "changes"}


def safe_horizon(database: Database) -> int:
    """The largest event id below which every event is committed (see the module doc)."""
    if database.dialect != "postgresql":
        with database.engine.connect() as conn:
            return int(conn.scalar(select(func.max(OperatorEvent.id))) or 0)
    try:
        with database.engine.begin() as conn:
            conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
            conn.execute(text("LOCK TABLE operator_event IN SHARE MODE"))
            horizon = int(conn.scalar(select(func.max(OperatorEvent.id))) or 0)
            stored = conn.execute(update(versions.VersionCounter)
                                  .where(versions.VersionCounter.key == HORIZON_KEY)
                                  .values(version=horizon))
            if not stored.rowcount:
                conn.execute(insert(versions.VersionCounter).values(
                    key=HORIZON_KEY, version=horizon))
            return horizon
    except DBAPIError:
        # Writers are busy: serve up to the last horizon computed under the lock.
        with database.engine.connect() as conn:
            value = conn.scalar(select(versions.VersionCounter.version)
                                .where(versions.VersionCounter.key == HORIZON_KEY))
            return int(value or 0)



def view_changes(session: Session, view: View, pos: dict[str, int], room: int
                 ) -> list[dict[str, Any]]:
    """The viewer's view changes after the cursor (at most `room`); moves the cursor."""
    items = views.feed_items(session, view, pos["v"], room)
    if items:
        pos["v"] = int(items[-1]["view_change_id"])
    return items


def _operator_changes(session: Session, view: View, pos: dict[str, int], room: int,
                      horizon: int, codes: dict[int, tuple[str, Any]]
                      ) -> tuple[list[dict[str, Any]], bool]:
    out: list[dict[str, Any]] = []
    programme_ids = view.programme_ids()
    more = True
    while len(out) < room:
        query = (select(OperatorEvent, Operator)
                 .join(Operator, Operator.id == OperatorEvent.operator_id)
                 .where(OperatorEvent.id > pos["e"], OperatorEvent.id <= horizon)
                 .order_by(OperatorEvent.id).limit(500))
        if programme_ids is not None:
            query = query.where(Operator.programme_id.in_(programme_ids))
        pairs = list(session.execute(query))
        if not pairs:
            more = False
            break
        operators = list({op.id: op for _, op in pairs}.values())
        allowed = policy.grants_of_rows(session, view, operators)
        consent_only = policy.grants_of_rows(session, view, [o for o in operators
                                                      if o.id not in allowed],
                                      ignore_consent=True)
        for event, operator in pairs:
            if len(out) >= room:
                return out, True
            pos["e"] = event.id
            item = _event_item(event, operator, allowed.get(operator.id),
                               consent_only.get(operator.id), codes)
            if item is not None:
                out.append(item)
        if len(pairs) < 500:
            more = False
            break
    return out, more


def _event_item(event: OperatorEvent, operator: Operator, grant: policy.Grant | None,
                hidden_by_consent: policy.Grant | None, codes: dict[int, tuple[str, Any]]
                ) -> dict[str, Any] | None:
    base = {"event_id": event.id, "operator_id": operator.id,
            "programme": codes.get(operator.programme_id, ("?",))[0],
            "effective_date": event.effective_date.isoformat(),
            "recorded_at": iso(event.recorded_at)}
    if event.kind == "consent_changed":
        consent = (event.changes or {}).get("consent_share")
        if consent is False and hidden_by_consent is not None:
            return {**base, "kind": "tombstone", "reason": "no_longer_shared"}
        if consent is True and grant is not None:
            return {**base, "kind": "shared", "changes": {}, "previous": {}}
        return None
    if grant is None:
        return None
    changes = policy.filter_changes(event.changes or {}, grant)
    if not changes and event.kind not in ("created", "removed", "restored"):
        return None
    return {**base, "kind": event.kind, "changes": changes,
            "previous": policy.filter_changes(event.previous or {}, grant)}


def changes_page(session: Session, database: Database, view: View, cursor: str | None,
                 limit: int = 500) -> dict[str, Any]:
    """One page of the feed after `cursor`, with the cursor to resume from."""
    pos = read_cursor(cursor, CURSOR_KEYS, FEED_QUERY)
    codes = programme_codes(session, view.programme_ids() or ())
    items = view_changes(session, view, pos, limit)
    more = len(items) >= limit
    if not more:
        horizon = safe_horizon(database)
        events, more = _operator_changes(session, view, pos, limit - len(items), horizon,
                                         codes)
        items.extend(events)
    return {**data_version(session, view.programme_ids()), "changes": items,
            "next_cursor": sign_cursor(pos, FEED_QUERY), "has_more": more}
