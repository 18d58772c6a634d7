"""The dashboard for customs IT: sign-in, connections, runs, quarantine, arrangements.

Every POST carries the session's CSRF token (checked before any view runs). Views parse,
check what the user may see through `hub.web.dashboard`, call the sync services, and
redirect back with a message (post/redirect/get), so a reload never repeats an action.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from hub import clock, db
from hub.errors import HubError
from hub.sync import admin, engine
from hub.sync.connections import SyncSettings
from hub.web import charts, dashboard, pages, security, users

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
# `<id:...>` (`hub.ids`): every id in an address is checked against what a row can hold.
pages.register(bp)


@bp.before_request
def _csrf() -> None:
    security.check_csrf()


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": security.csrf_token}


def _user() -> Any:
    user = security.current_user()
    assert user is not None
    return user


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path, printable ASCII (a line break
    cannot go in a Location header), else the overview."""
    if (target and target.startswith("/dashboard") and target.isascii()
            and target.isprintable() and "\\" not in target):
        return target
    return url_for("dashboard.overview")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    error = None
    if request.method == "POST":
        # failed sign-ins are counted per address; successful ones are not
        limits = ("login", "WEB_LOGIN_LIMIT", "WEB_LOGIN_WINDOW_SECONDS", 10, 300)
        pages.limit_client(*limits, count=False)
        user = users.sign_in(db.session(), request.form.get("username", ""),
                             request.form.get("password", ""), request.remote_addr)
        if user is not None:
            security.sign_in(user)
            return redirect(_safe_next(request.form.get("next")))
        pages.limit_client(*limits)
        error = "The user name or password is not right."
    status = 401 if error else 200
    return render_template("dashboard/login.html", error=error,
                           next=request.values.get("next", "")), status


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    security.sign_out()
    return redirect(url_for("dashboard.login"))


@bp.post("/logout-everywhere")
@security.login_required
def logout_everywhere() -> ResponseReturnValue:
    """End every session of the signed-in user, on every device."""
    security.sign_out_everywhere(_user())
    return redirect(url_for("dashboard.login"))


@bp.get("/")
@security.login_required
def overview() -> ResponseReturnValue:
    user = _user()
    session = db.session()
    now = clock.now()
    connections = dashboard.visible_connections(session, user)
    ids = [c.id for c in connections]
    rows = dashboard.connection_rows(session, connections, now)
    recent = dashboard.runs(session, ids, limit=20)
    # Runs that read and changed nothing are the normal case; they are folded away so
    # that the runs that did something stand out.
    changed = [r for r in recent if not dashboard.changed_nothing(r)]
    quiet = [r for r in recent if dashboard.changed_nothing(r)]
    arrangements = dashboard.recognised_per_arrangement(session, user, now.date())
    freshness = charts.bar_chart(
        "Feed age per connection (time since the last successful sync)",
        [charts.Bar(r.connection.name, {"age": r.age_seconds or 0},
                    mark=float(r.connection.staleness_seconds)) for r in rows],
        ["age"], value_text=charts.human_duration, mark_label="stale beyond",
        description="; ".join(
            f"{r.connection.name}: {charts.human_duration(r.age_seconds)} "
            f"(stale beyond {charts.human_duration(r.connection.staleness_seconds)})"
            for r in rows) or "no connections")
    volumes = charts.bar_chart(
        "Records changed per run (of the last 20 runs, those that changed something)",
        [charts.Bar(f"run {r.id} · {r.connection.name}",
                    {k: v for k, v in dashboard.counts(r).items()
                     if k in dashboard.CHANGE_SERIES}) for r in changed],
        dashboard.CHANGE_SERIES)
    counted = [d for a in arrangements for d in a.directions if d.operators]
    recognised = charts.bar_chart(
        "Operators recognised per MRA direction today",
        [charts.Bar(f"{d.arrangement}: {d.recognising} ← {d.recognised}",
                    {"operators": d.operators})
         for d in sorted(counted, key=lambda d: -d.operators)],
        ["operators"],
        description=f"{len(counted)} directions recognise at least one operator on record")
    visible_clients = dashboard.clients(session, user)
    usage = charts.bar_chart(
        "Partner look-ups in the last 30 days, by outcome",
        [charts.Bar(name, outcomes) for name, outcomes in dashboard.usage_per_client(
            session, visible_clients, now.date() - dt.timedelta(days=30))],
        dashboard.USAGE_SERIES,
        description="verify decisions and match hits and misses per partner client")
    return render_template(
        "dashboard/overview.html", user=user, rows=rows, recent=changed, quiet=quiet,
        names={c.id: c.name for c in connections},
        usage_chart=usage, reasons=dashboard.quarantine_by_reason(session, ids),
        held=dashboard.runs(session, ids, status="needs_confirmation", limit=50),
        quarantined=dashboard.open_quarantine(session, ids, limit=20),
        arrangements=arrangements, clients=visible_clients,
        webhooks=dashboard.webhooks(session, user),
        audit=dashboard.audit_state(session, user, limit=0),
        counts=dashboard.counts,
        freshness_chart=freshness, volume_chart=volumes, recognised_chart=recognised)


@bp.get("/connections/<id:connection_id>")
@security.login_required
def connection(connection_id: int) -> ResponseReturnValue:
    user = _user()
    session = db.session()
    row = dashboard.visible_connection(session, user, connection_id)
    now = clock.now()
    info = dashboard.connection_rows(session, [row], now)[0]
    recent = dashboard.runs(session, [row.id], limit=30)
    freshness = charts.line_chart(
        f"Feed age of {row.name} over time",
        [(when, hours * 3600) for when, hours in dashboard.freshness_series(
            session, row, now=now)],
        threshold=float(row.staleness_seconds), value_text=charts.human_duration,
        threshold_label=f"stale beyond {charts.human_duration(row.staleness_seconds)}")
    changed = [r for r in recent if not dashboard.changed_nothing(r)]
    volumes = charts.bar_chart(
        f"Records per run of {row.name} (runs that changed something)",
        [charts.Bar(f"run {r.id} ({r.status})",
                    {k: v for k, v in dashboard.counts(r).items()
                     if k in dashboard.CHANGE_SERIES}) for r in changed[:15]],
        dashboard.CHANGE_SERIES)
    return render_template(
        "dashboard/connection.html", user=user, info=info, connection=row, runs=changed,
        quiet=[r for r in recent if dashboard.changed_nothing(r)], names={row.id: row.name},
        reasons=dashboard.quarantine_by_reason(session, [row.id]),
        quarantined=dashboard.open_quarantine(session, [row.id], limit=100),
        counts=dashboard.counts, freshness_chart=freshness, volume_chart=volumes)


@bp.get("/audit")
@security.login_required
def audit() -> ResponseReturnValue:
    """The audit entries the user may see; for a hub administrator, the whole chain
    recomputed on request (it reads every entry)."""
    user = _user()
    session = db.session()
    state = dashboard.audit_state(session, user, verify=user.hub_admin)
    # Entries name connections by id (`connection:8`); the page shows their names.
    names = {f"connection:{c.id}": c.name for c in dashboard.visible_connections(session, user)}
    return render_template("dashboard/audit.html", user=user, audit=state, names=names)


def _back(connection_id: int) -> ResponseReturnValue:
    target = request.form.get("back")
    if target == "overview":
        return redirect(url_for("dashboard.overview"))
    return redirect(url_for("dashboard.connection", connection_id=connection_id))


@bp.get("/runs/<id:run_id>/difference")
@security.login_required
def run_difference(run_id: int) -> ResponseReturnValue:
    """What a run changed, or (held and dry runs) would change, one kind at a time."""
    session = db.session()
    run = dashboard.visible_run(session, _user(), run_id)
    kind = request.args.get("kind", "remove")
    if kind not in admin.DIFFERENCE_KINDS:
        kind = "remove"
    after = (request.args.get("after") or "")[:80] or None
    try:
        page = admin.difference(session, run, kind, after=after, limit=100)
    except HubError as exc:  # no longer known (or never kept): said, not shown as none
        page = {"kind": kind, "items": [], "next_after": None, "applied": admin.applied(run),
                "error": exc.detail}
    return render_template("dashboard/difference.html", user=_user(), run=run, page=page,
                           summary=admin.run_summary(run), counts_text=admin.counts_text,
                           kinds=admin.DIFFERENCE_KINDS)


@bp.post("/runs/<id:run_id>/<any(confirm, discard):action>")
@security.login_required
def run_action(run_id: int, action: str) -> ResponseReturnValue:
    session = db.session()
    run = dashboard.visible_run(session, _user(), run_id)
    connection_id = run.connection_id
    session.close()  # the engine works in its own transactions
    try:
        if action == "confirm":
            done = engine.confirm(db.get_db(), SyncSettings.from_config(current_app.config),
                                  run_id)
            flash(f"Run {run_id} was applied: it is now {done.status}.", "success")
        else:
            engine.discard(db.get_db(), run_id)
            flash(f"Run {run_id} was discarded; nothing from it was applied.", "success")
    except HubError as exc:
        flash(f"Run {run_id} could not be {action}ed: {exc.detail}", "error")
    return _back(connection_id)


def _corrections(text: str) -> dict[str, str]:
    corrections: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"{line.strip()!r} is not field=value")
            corrections[name.strip()] = value.strip()
    return corrections


@bp.post("/quarantine/<id:record_id>/<any(replay, dismiss):action>")
@security.login_required
def quarantine_action(record_id: int, action: str) -> ResponseReturnValue:
    user = _user()
    session = db.session()
    connection_id = dashboard.visible_record(session, user, record_id).connection_id
    try:
        if action == "replay":
            dashboard.replay(session, user, record_id,
                             _corrections(request.form.get("corrections", "")))
            message = f"Record {record_id} passed validation and was applied."
        else:
            dashboard.dismiss(session, user, record_id, request.form.get("note") or None)
            message = f"Record {record_id} was dismissed."
        flash(message, "success")
    except (HubError, ValueError) as exc:
        detail = exc.detail if isinstance(exc, HubError) else str(exc)
        flash(f"Record {record_id} could not be {action}ed: {detail}", "error")
    return _back(connection_id)
