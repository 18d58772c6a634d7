"""What the dashboard shows, scoped to the signed-in user.

An administration's staff see only their administration's connections (and the runs,
quarantined records and OAuth clients that belong to them), the arrangement directions
that involve their administration's programmes, and the audit entries about their
administration; hub administrators see all.
Every look-up of one connection, run or record goes through `visible_*`, which answers
404 for anything outside the user's scope, so that ids of other administrations' objects
cannot even be confirmed to exist.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from hub import clock
from hub.arrangements.models import Arrangement
from hub.audit import service as audit_service
from hub.auth.models import OAuthClient
from hub.db import transactional
from hub.errors import NotFound
from hub.notify.models import WebhookDelivery, WebhookSubscription
from hub.recognition.rules import cached_reference, component_statuses
from hub.registry.models import Operator
from hub.sync import connections as conns
from hub.sync import quarantine
from hub.sync.models import Connection, QuarantinedRecord, SyncRun
from hub.usage import UsageCount
from hub.web.models import DashboardUser

COUNT_NAMES = ("read", "created", "updated", "unchanged", "removed", "quarantined")
CHANGE_SERIES = ("created", "updated", "removed", "quarantined")


def _scoped(query: Select[Any], user: DashboardUser) -> Select[Any]:
    if user.hub_admin:
        return query
    return query.where(Connection.administration_id == user.administration_id)


def visible_connections(session: Session, user: DashboardUser) -> list[Connection]:
    query = select(Connection).options(selectinload(Connection.administration))
    return list(session.scalars(_scoped(query, user).order_by(Connection.name)))


def visible_connection(session: Session, user: DashboardUser, connection_id: int
                       ) -> Connection:
    connection = session.get(Connection, connection_id)
    if connection is None or not (
            user.hub_admin or connection.administration_id == user.administration_id):
        raise NotFound(f"no connection {connection_id}")
    return connection


def visible_run(session: Session, user: DashboardUser, run_id: int) -> SyncRun:
    run = session.get(SyncRun, run_id)
    if run is None:
        raise NotFound(f"no sync run {run_id}")
    visible_connection(session, user, run.connection_id)
    return run


def visible_record(session: Session, user: DashboardUser, record_id: int
                   ) -> QuarantinedRecord:
    record = session.get(QuarantinedRecord, record_id)
    if record is None:
        raise NotFound(f"no quarantined record {record_id}")
    visible_connection(session, user, record.connection_id)
    return record


@transactional
def replay(session: Session, user: DashboardUser, record_id: int,
           corrections: Mapping[str, Any]) -> QuarantinedRecord:
    """Validate a record the user may see again (with `corrections`) and apply it."""
    visible_record(session, user, record_id)
    return quarantine.replay(session, record_id, corrections or None)


@transactional
def dismiss(session: Session, user: DashboardUser, record_id: int, note: str | None
            ) -> QuarantinedRecord:
    """Dismiss a record the user may see (with a note)."""
    visible_record(session, user, record_id)
    return quarantine.dismiss(session, record_id, note=note)


@dataclass
class ConnectionRow:
    connection: Connection
    age_hours: float | None
    stale: bool
    last_run: SyncRun | None
    held: int
    open_quarantine: int
    age_seconds: float | None = None
    retry_after: dt.datetime | None = None  # a failing connection's backoff ends


def connection_rows(session: Session, connections: Sequence[Connection],
                    now: dt.datetime | None = None) -> list[ConnectionRow]:
    now = now or clock.now()
    ids = [c.id for c in connections]
    if not ids:
        return []
    held = Counter({int(cid): int(n) for cid, n in session.execute(
        select(SyncRun.connection_id, func.count()).where(
            SyncRun.connection_id.in_(ids), SyncRun.status == "needs_confirmation")
        .group_by(SyncRun.connection_id))})
    quarantined = Counter({int(cid): int(n) for cid, n in session.execute(
        select(QuarantinedRecord.connection_id, func.count()).where(
            QuarantinedRecord.connection_id.in_(ids), QuarantinedRecord.status == "open")
        .group_by(QuarantinedRecord.connection_id))})
    latest_ids = session.scalars(select(func.max(SyncRun.id)).where(
        SyncRun.connection_id.in_(ids)).group_by(SyncRun.connection_id))
    latest = {r.connection_id: r for r in session.scalars(
        select(SyncRun).where(SyncRun.id.in_(list(latest_ids))))}
    rows = []
    for connection in connections:
        age = conns.feed_age(connection, now)
        rows.append(ConnectionRow(
            connection, round(age / 3600, 1) if age is not None else None,
            conns.is_stale(connection, now), latest.get(connection.id),
            held[connection.id], quarantined[connection.id], age,
            conns.backoff_until(connection, now)))
    return rows


def runs(session: Session, connection_ids: Sequence[int], *, limit: int = 20,
         status: str | None = None) -> list[SyncRun]:
    if not connection_ids:
        return []
    query = select(SyncRun).where(SyncRun.connection_id.in_(list(connection_ids)))
    if status:
        query = query.where(SyncRun.status == status)
    return list(session.scalars(query.options(selectinload(SyncRun.connection))
                                .order_by(SyncRun.id.desc()).limit(limit)))


def open_quarantine(session: Session, connection_ids: Sequence[int], *, limit: int = 50
                    ) -> list[QuarantinedRecord]:
    if not connection_ids:
        return []
    return list(session.scalars(
        select(QuarantinedRecord).where(QuarantinedRecord.connection_id.in_(
            list(connection_ids)), QuarantinedRecord.status == "open")
        .order_by(QuarantinedRecord.id).limit(limit)))


def quarantine_by_reason(session: Session, connection_ids: Sequence[int]
                         ) -> list[tuple[str, int]]:
    """Open quarantined records per reason code, most frequent first."""
    if not connection_ids:
        return []
    rows = session.execute(
        select(QuarantinedRecord.reason_code, func.count()).where(
            QuarantinedRecord.connection_id.in_(list(connection_ids)),
            QuarantinedRecord.status == "open")
        .group_by(QuarantinedRecord.reason_code)).all()
    return sorted(((str(code), int(n)) for code, n in rows), key=lambda r: (-r[1], r[0]))


def counts(run: SyncRun) -> dict[str, int]:
    return {name: int((run.counts or {}).get(name, 0)) for name in COUNT_NAMES}


def changed_nothing(run: SyncRun) -> bool:
    """A run that succeeded without creating, updating, removing or quarantining
    anything: the dashboard folds these away."""
    values = counts(run)
    return run.status == "succeeded" and not any(values[k] for k in CHANGE_SERIES)


def freshness_series(session: Session, connection: Connection, *, limit: int = 40,
                     now: dt.datetime | None = None) -> list[tuple[dt.datetime, float]]:
    """Age of the feed (hours since its last successful sync) at each run and now."""
    now = now or clock.now()
    recent = list(reversed(list(session.scalars(
        select(SyncRun).where(SyncRun.connection_id == connection.id)
        .order_by(SyncRun.id.desc()).limit(limit)))))
    points: list[tuple[dt.datetime, float]] = []
    last_success: dt.datetime | None = None
    for run in recent:
        if last_success is not None:
            points.append((run.started_at, (run.started_at - last_success).total_seconds()
                           / 3600))
        if run.status == "succeeded" and not run.dry_run and run.finished_at is not None:
            last_success = run.finished_at
            points.append((run.finished_at, 0.0))
    last_success = connection.last_success_at or last_success
    if last_success is not None:
        points.append((now, max((now - last_success).total_seconds(), 0) / 3600))
    points.sort(key=lambda p: p[0])
    return points


@dataclass
class DirectionCount:
    arrangement: str
    title: str
    status: str | None
    recognising: str
    recognised: str
    categories: list[str]
    active_from: dt.date | None
    operators: int


@dataclass
class ArrangementSummary:
    code: str
    title: str
    status: str | None
    directions: list[DirectionCount] = field(default_factory=list)

    @property
    def operators(self) -> int:
        return sum(d.operators for d in self.directions)


def recognised_per_arrangement(session: Session, user: DashboardUser,
                               day: dt.date | None = None) -> list[ArrangementSummary]:
    """For each arrangement and direction the user may see, how many listed operators it
    recognises today: a hub administrator sees every direction, an administration's
    staff only the directions whose recognising or recognised programme is one of their
    administration's.

    Applies the scope rules of `hub.recognition.rules` (status, validity window, consent
    where required, a valid category of the direction's scope, tiers) to the current rows;
    directions not active on the day (the rulebook's `active_on`) count zero.
    """
    day = day or clock.now().date()
    snapshot = cached_reference(session)
    own = (None if user.hub_admin else
           user.administration.code if user.administration is not None else "")
    rows = session.execute(
        select(Operator.programme_id, Operator.categories, Operator.consent_share,
               Operator.valid_from, Operator.valid_until)
        .where(Operator.removed_at.is_(None), Operator.status == "valid")).all()
    by_programme: dict[int, list[Any]] = {}
    for row in rows:
        by_programme.setdefault(row[0], []).append(row)
    summaries: dict[str, ArrangementSummary] = {}
    for arrangement in session.scalars(select(Arrangement).options(
            selectinload(Arrangement.status_changes)).order_by(Arrangement.code)):
        summaries[arrangement.code] = ArrangementSummary(
            arrangement.code, arrangement.title, arrangement.status_on(day))
    for (recognising, recognised), rules in sorted(snapshot.directions.items()):
        programme = snapshot.programmes[recognised]
        if own is not None and own not in (snapshot.programmes[recognising].administration,
                                           programme.administration):
            continue
        for rule in rules:
            active = rule.active_on(day)
            total = 0
            if active:
                for _pid, categories, consent, valid_from, valid_until in by_programme.get(
                        programme.id, []):
                    if programme.consent_required and not consent:
                        continue
                    if (valid_from and day < valid_from) or (valid_until and day > valid_until):
                        continue
                    parts = component_statuses(programme, categories or [])
                    held = [c for c in rule.categories if all(
                        parts.get(p, ("", None))[0] == "valid"
                        for p in programme.parts.get(c, (c,)))]
                    if not held:
                        continue
                    tiers = {str(c.get("code")): c.get("tier") for c in categories or []}
                    if rule.tiers and not any(tiers.get(c) in rule.tiers for c in held):
                        continue
                    total += 1
            summary = summaries.setdefault(rule.arrangement, ArrangementSummary(
                rule.arrangement, rule.title, rule.status_on(day)))
            summary.directions.append(DirectionCount(
                rule.arrangement, rule.title, summary.status, recognising, recognised,
                list(rule.categories), rule.active_from, total))
    return [s for s in summaries.values() if s.directions]


@dataclass
class ClientRow:
    client_id: str
    name: str
    programme: str | None
    scopes: list[str]
    disabled: bool
    created_at: dt.datetime


def clients(session: Session, user: DashboardUser) -> list[ClientRow]:
    """The OAuth clients the user may see."""
    query = select(OAuthClient).order_by(OAuthClient.name)
    if not user.hub_admin:
        query = query.where(OAuthClient.administration_id == user.administration_id)
    return [ClientRow(c.client_id, c.name, c.programme.code if c.programme else None,
                      list(c.scopes or []), c.disabled_at is not None, c.created_at)
            for c in session.scalars(query)]


@dataclass
class WebhookRow:
    public_id: str
    client_id: str
    url: str
    events: list[str]
    status: str
    paused_reason: str | None
    consecutive_failures: int
    last_success_at: dt.datetime | None
    last_failure_at: dt.datetime | None
    deliveries: dict[str, int]


def webhooks(session: Session, user: DashboardUser) -> list[WebhookRow]:
    """Webhook subscriptions with their delivery health (pending, delivered, failed)."""
    query = select(WebhookSubscription).join(
        OAuthClient, OAuthClient.id == WebhookSubscription.client_pk)
    if not user.hub_admin:
        query = query.where(OAuthClient.administration_id == user.administration_id)
    subscriptions = list(session.scalars(query.options(
        selectinload(WebhookSubscription.client)).order_by(WebhookSubscription.id)))
    tallies: dict[int, dict[str, int]] = {s.id: {} for s in subscriptions}
    if subscriptions:
        for sub_id, status, number in session.execute(
                select(WebhookDelivery.subscription_id, WebhookDelivery.status, func.count())
                .where(WebhookDelivery.subscription_id.in_(list(tallies)))
                .group_by(WebhookDelivery.subscription_id, WebhookDelivery.status)):
            tallies[sub_id][str(status)] = int(number)
    return [WebhookRow(s.public_id, s.client.client_id, s.url, list(s.event_types or []),
                       s.status, s.paused_reason, s.consecutive_failures, s.last_success_at,
                       s.last_failure_at, tallies[s.id]) for s in subscriptions]


@dataclass
class AuditState:
    """What the user may see of the audit log: a hub administrator the whole chain (its
    head, and when asked a full re-verification); an administration's staff only the
    entries about their administration (`administration` says which)."""

    entries: int
    recent: list[dict[str, Any]]
    administration: str | None = None
    head_seq: int | None = None
    head_hash: str | None = None
    head_at: dt.datetime | None = None
    verified: bool | None = None
    checked: int | None = None
    problem: str | None = None


def audit_state(session: Session, user: DashboardUser, *, verify: bool = False,
                limit: int = 50) -> AuditState:
    """The audit log as `user` may see it."""
    if not user.hub_admin:
        code = user.administration.code if user.administration is not None else ""
        return AuditState(audit_service.count(session, code),
                          list(audit_service.recent(session, code, limit)), code)
    head = audit_service.head(session)
    state = AuditState(audit_service.count(session),
                       list(audit_service.recent(session, None, limit)),
                       None, head.seq, head.hash, head.recorded_at)
    if verify:
        result = audit_service.verify(session)
        state.verified, state.checked, state.problem = result.ok, result.checked, result.reason
    return state


USAGE_SERIES = ("recognised", "not_recognised", "unknown_trader", "ambiguous", "match",
                "no_match")


def usage_per_client(session: Session, visible: list[ClientRow], since: dt.date
                     ) -> list[tuple[str, dict[str, int]]]:
    """Look-ups per partner client since `since`, by outcome (verify and match), for the
    clients the user may see."""
    if not visible:
        return []
    names = {c.client_id: c.name for c in visible}
    totals: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(UsageCount.client_id, UsageCount.outcome, func.sum(UsageCount.count))
        .where(UsageCount.day >= since, UsageCount.client_id.in_(list(names)))
        .group_by(UsageCount.client_id, UsageCount.outcome))
    for client_id, outcome, total in rows:
        totals.setdefault(names[client_id], {})[outcome] = int(total or 0)
    return sorted(totals.items(), key=lambda item: -sum(item[1].values()))
