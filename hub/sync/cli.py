"""`aeohub connections|sync|quarantine|scheduler` commands."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask import current_app
from sqlalchemy import select

from hub import db
from hub.db import utcnow
from hub.errors import HubError
from hub.sync import connections as conns
from hub.sync import engine, quarantine
from hub.sync.models import Connection, SyncRun


def register(cli: click.Group) -> None:
    cli.add_command(connections_group)
    cli.add_command(sync_group)
    cli.add_command(quarantine_group)
    cli.add_command(scheduler_command)


def _settings() -> conns.SyncSettings:
    return conns.SyncSettings.from_config(current_app.config)


def _fail(exc: HubError) -> click.ClickException:
    lines = [exc.detail] + [f"  {f}: {', '.join(m)}" for f, m in exc.fields.items()]
    return click.ClickException("\n".join(lines))


def _json_arg(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=name) from exc
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=name)
    return value


def connection_summary(connection: Connection) -> dict[str, Any]:
    age = conns.feed_age(connection)
    return {
        "id": connection.id, "name": connection.name, "type": connection.connector_type,
        "administration": connection.administration.code,
        "programmes": connection.programmes, "schedule": connection.schedule,
        "enabled": connection.enabled,
        "last_success_at": connection.last_success_at.isoformat()
        if connection.last_success_at else None,
        "feed_age_seconds": round(age) if age is not None else None,
        "stale": conns.is_stale(connection),
        "consecutive_failures": connection.consecutive_failures,
        "config": conns.shown_config(connection),
    }


@click.group("connections")
def connections_group() -> None:
    """Node connections: add, list, show, edit, disable, remove."""


@connections_group.command("add")
@click.option("--name", required=True)
@click.option("--type", "connector_type", required=True, help="Connector name (aeo_node, ...).")
@click.option("--programme", "programmes", multiple=True, required=True)
@click.option("--config", "config_text", required=True, help="Connector config as JSON.")
@click.option("--schedule", required=True, help="interval:1h or cron:'0 */6 * * *'.")
@click.option("--staleness", type=int, help="Seconds after which the feed is stale.")
def connections_add(name: str, connector_type: str, programmes: tuple[str, ...],
                    config_text: str, schedule: str, staleness: int | None) -> None:
    """Add a connection (the config is validated; secrets are stored encrypted)."""
    session = db.session()
    try:
        connection = conns.add_connection(
            session, _settings(), name=name, connector_type=connector_type,
            programmes=list(programmes), config=_json_arg(config_text, "--config"),
            schedule=schedule, staleness_seconds=staleness)
    except HubError as exc:
        raise _fail(exc) from exc
    session.commit()
    click.echo(f"connection {connection.id} {connection.name} added")


@connections_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def connections_list(as_json: bool) -> None:
    """Connections with their feed age; stale feeds are flagged."""
    rows = db.session().scalars(select(Connection).order_by(Connection.name)).all()
    summaries = [connection_summary(c) for c in rows]
    if as_json:
        click.echo(json.dumps(summaries))
        return
    for s in summaries:
        age = "never synced" if s["feed_age_seconds"] is None else f"{s['feed_age_seconds']}s old"
        flag = " STALE" if s["stale"] else ""
        off = " (disabled)" if not s["enabled"] else ""
        click.echo(f"{s['id']:>4} {s['name']:<24} {s['type']:<13} "
                   f"{','.join(s['programmes']):<14} {s['schedule']:<16} {age}{flag}{off}")


@connections_group.command("show")
@click.argument("connection")
def connections_show(connection: str) -> None:
    """One connection as JSON (secrets redacted)."""
    try:
        row = conns.get_connection(db.session(), connection)
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(json.dumps(connection_summary(row), indent=2))


@connections_group.command("edit")
@click.argument("connection")
@click.option("--config", "config_text", help="JSON merged into the config.")
@click.option("--schedule")
@click.option("--enable/--disable", "enabled", default=None)
@click.option("--staleness", type=int)
@click.option("--max-removal-share", type=float)
@click.option("--max-change-share", type=float)
def connections_edit(connection: str, config_text: str | None, schedule: str | None,
                     enabled: bool | None, staleness: int | None,
                     max_removal_share: float | None, max_change_share: float | None) -> None:
    """Change a connection."""
    session = db.session()
    try:
        row = conns.get_connection(session, connection)
        conns.edit_connection(session, _settings(), row,
                              config=_json_arg(config_text, "--config") if config_text else None,
                              schedule=schedule, enabled=enabled, staleness_seconds=staleness,
                              max_removal_share=max_removal_share,
                              max_change_share=max_change_share)
    except HubError as exc:
        raise _fail(exc) from exc
    session.commit()
    click.echo(f"connection {row.name} updated")


@connections_group.command("disable")
@click.argument("connection")
def connections_disable(connection: str) -> None:
    """Stop scheduling a connection (its data keeps serving)."""
    session = db.session()
    try:
        row = conns.get_connection(session, connection)
    except HubError as exc:
        raise _fail(exc) from exc
    conns.edit_connection(session, _settings(), row, enabled=False)
    session.commit()
    click.echo(f"connection {row.name} disabled")


@connections_group.command("remove")
@click.argument("connection")
@click.confirmation_option(prompt="Remove the connection and its run history?")
def connections_remove(connection: str) -> None:
    """Remove a connection (operators it synced stay in the registry)."""
    session = db.session()
    try:
        row = conns.get_connection(session, connection)
    except HubError as exc:
        raise _fail(exc) from exc
    conns.remove_connection(session, row)
    session.commit()
    click.echo(f"connection {connection} removed")


def run_summary(run: SyncRun) -> dict[str, Any]:
    counts = {name: int(run.counts.get(name, 0)) for name in engine.COUNT_NAMES}
    return {"id": run.id, "connection_id": run.connection_id, "trigger": run.trigger,
            "status": run.status, "dry_run": run.dry_run,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "held_reason": run.held_reason, "error": run.error, **counts}


@click.group("sync")
def sync_group() -> None:
    """Run syncs and review runs."""


@sync_group.command("run")
@click.argument("connection")
@click.option("--dry-run", is_flag=True, help="Apply nothing; report what would change.")
@click.option("--json", "as_json", is_flag=True, help="The run as JSON on the last line.")
def sync_run(connection: str, dry_run: bool, as_json: bool) -> None:
    """Sync CONNECTION now, with a progress bar."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        row = conns.get_connection(db.session(), connection)
    except HubError as exc:
        raise _fail(exc) from exc
    connection_id = row.id
    db.session().close()
    progressbar: Any = click.progressbar
    with progressbar(length=0, label=f"syncing {row.name}", show_pos=True,
                     file=sys.stderr) as bar:
        seen = {"read": 0}

        def progress(counts: dict[str, int]) -> None:
            bar.update(counts["read"] - seen["read"])
            seen["read"] = counts["read"]

        try:
            run = engine.run_sync(db.get_db(app), _settings(), connection_id, trigger="manual",
                                  dry_run=dry_run, progress=progress)
        except HubError as exc:
            raise _fail(exc) from exc
    assert run is not None
    summary = run_summary(run)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"run {run.id}: {run.status}" + (" (dry run)" if dry_run else ""))
        click.echo("  " + ", ".join(f"{n} {summary[n]}" for n in engine.COUNT_NAMES))
        if run.held_reason:
            click.echo(f"  held: {run.held_reason}; confirm with `aeohub sync confirm "
                       f"{run.id}` or discard with `aeohub sync discard {run.id}`")
        if run.error:
            click.echo(f"  error: {run.error}")
    if run.status == "failed":
        raise SystemExit(1)


@sync_group.command("runs")
@click.option("--connection")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def sync_runs(connection: str | None, limit: int, as_json: bool) -> None:
    """Recent runs."""
    session = db.session()
    query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
    if connection:
        query = query.where(SyncRun.connection_id == conns.get_connection(session, connection).id)
    runs = [run_summary(r) for r in session.scalars(query)]
    if as_json:
        click.echo(json.dumps(runs))
        return
    for r in runs:
        click.echo(f"{r['id']:>5} conn {r['connection_id']:<3} {r['trigger']:<8} "
                   f"{r['status']:<19} read {r['read']} created {r['created']} updated "
                   f"{r['updated']} unchanged {r['unchanged']} removed {r['removed']} "
                   f"quarantined {r['quarantined']}")


@sync_group.command("confirm")
@click.argument("run_id", type=int)
def sync_confirm(run_id: int) -> None:
    """Apply a held run."""
    try:
        run = engine.confirm(db.get_db(), _settings(), run_id)
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(f"run {run.id}: {run.status}")


@sync_group.command("discard")
@click.argument("run_id", type=int)
def sync_discard(run_id: int) -> None:
    """Drop a held run without applying it."""
    try:
        run = engine.discard(db.get_db(), run_id)
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(f"run {run.id}: {run.status}")


@click.group("quarantine")
def quarantine_group() -> None:
    """Records refused by syncs."""


@quarantine_group.command("list")
@click.option("--connection")
@click.option("--status", default="open", show_default=True)
def quarantine_list(connection: str | None, status: str) -> None:
    session = db.session()
    conn_id = conns.get_connection(session, connection).id if connection else None
    for row in quarantine.list_open(session, conn_id, status=status):
        reasons = "; ".join(f"{r['field']}: {r['reason']}" for r in row.reasons)
        click.echo(f"{row.id:>5} {row.programme or '?':<10} {row.stable_key or '?':<20} "
                   f"{row.position or ''} {reasons}")


@quarantine_group.command("show")
@click.argument("record_id", type=int)
def quarantine_show(record_id: int) -> None:
    try:
        row = quarantine.get(db.session(), record_id)
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(json.dumps({"id": row.id, "status": row.status, "programme": row.programme,
                           "stable_key": row.stable_key, "position": row.position,
                           "reasons": row.reasons, "record": row.record}, indent=2,
                          default=str))


@quarantine_group.command("replay")
@click.argument("record_id", type=int)
@click.option("--set", "corrections", multiple=True, help="field=value correction.")
def quarantine_replay(record_id: int, corrections: tuple[str, ...]) -> None:
    """Validate again (with corrections) and apply when it passes."""
    fixes = dict(c.split("=", 1) for c in corrections)
    session = db.session()
    try:
        row = quarantine.replay(session, record_id, fixes)
    except HubError as exc:
        raise _fail(exc) from exc
    session.commit()
    click.echo(f"record {row.id} replayed")


@quarantine_group.command("dismiss")
@click.argument("record_id", type=int)
@click.option("--note")
def quarantine_dismiss(record_id: int, note: str | None) -> None:
    session = db.session()
    try:
        row = quarantine.dismiss(session, record_id, note=note)
    except HubError as exc:
        raise _fail(exc) from exc
    session.commit()
    click.echo(f"record {row.id} dismissed")


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
@click.option("--poll", default=2.0, show_default=True,
              help="Seconds between checks for changed connections and node notifications.")
def scheduler_command(once: bool, poll: float) -> None:
    """Run the scheduler (its own process; never inside web workers)."""
    from hub.sync.scheduler import HubScheduler

    scheduler = HubScheduler(current_app._get_current_object(), poll_seconds=poll)  # type: ignore[attr-defined]
    click.echo(f"scheduler started at {utcnow().isoformat()} ({scheduler.holder})")
    scheduler.run_forever(once=once)
