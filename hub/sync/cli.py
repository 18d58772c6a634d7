"""`aeohub connections|sync|quarantine` commands."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click
from flask import current_app
from sqlalchemy import select

from connectors.catalogue import available_connectors
from hub import db, exitcodes
from hub.db import MAX_ID
from hub.errors import HubError
from hub.ids import ROW_ID
from hub.sync import admin, engine, quarantine
from hub.sync import connections as conns
from hub.sync.models import Connection, SyncRun


def register(cli: click.Group) -> None:
    cli.add_command(connections_group)
    cli.add_command(sync_group)
    cli.add_command(quarantine_group)


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


@click.group("connections")
def connections_group() -> None:
    """Node connections: add, list, show, edit, disable, remove."""


@connections_group.command("add")
@click.option("--name", required=True, help="A unique name for people and logs.")
@click.option("--type", "connector_type", required=True, help="Connector name (aeo_node, ...).")
@click.option("--programme", "programmes", multiple=True, required=True,
              help="A programme the connection answers for (repeat for several).")
@click.option("--config", "config_text", required=True, help="Connector config as JSON.")
@click.option("--schedule", required=True, help="interval:1h or cron:'0 */6 * * *'.")
@click.option("--snapshot-schedule", help="When an incremental source is read whole, "
                                          "removals included (cron:'0 2 * * sun').")
@click.option("--staleness", type=int, help="Seconds after which the feed is stale.")
@click.option("--scope", "scope", multiple=True,
              help="A country of the programme this connection answers for (repeat; "
                   "default: the whole programme).")
def connections_add(name: str, connector_type: str, programmes: tuple[str, ...],
                    config_text: str, schedule: str, snapshot_schedule: str | None,
                    staleness: int | None, scope: tuple[str, ...]) -> None:
    """Add a connection (the config is validated; secrets are stored encrypted)."""
    if connector_type not in available_connectors():
        raise click.BadParameter(f"no connector named {connector_type!r}; available: "
                                 f"{', '.join(sorted(available_connectors()))}",
                                 param_hint="--type")
    session = db.session()
    try:
        connection = conns.add_connection(
            session, _settings(), name=name, connector_type=connector_type,
            programmes=list(programmes), config=_json_arg(config_text, "--config"),
            schedule=schedule, staleness_seconds=staleness, scope_countries=list(scope),
            snapshot_schedule=snapshot_schedule)
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(f"connection {connection.id} {connection.name} added")


@connections_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the connections as a JSON array.")
def connections_list(as_json: bool) -> None:
    """Connections with their feed age; stale feeds are flagged."""
    rows = db.session().scalars(select(Connection).order_by(Connection.name)).all()
    summaries = [admin.connection_summary(c) for c in rows]
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
@click.option("--json", "as_json", is_flag=True, help="Print the connection as JSON.")
def connections_show(connection: str, as_json: bool) -> None:
    """One connection, field by field (secrets redacted)."""
    try:
        row = conns.get_connection(db.session(), connection)
    except HubError as exc:
        raise _fail(exc) from exc
    summary = admin.connection_dict(row)  # as the admin API shows it, guards included
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        click.echo(f"{key + ':':<22} {shown}")


@connections_group.command("edit")
@click.argument("connection")
@click.option("--config", "config_text",
              help="JSON merged into the config (nested objects merge key by key).")
@click.option("--replace", "replace_config", is_flag=True,
              help="--config replaces the config instead (secrets not given are kept).")
@click.option("--schedule", help="interval:1h or cron:'0 */6 * * *'.")
@click.option("--snapshot-schedule", help="When an incremental source is read whole, "
                                          "removals included; 'none' stops it.")
@click.option("--enable/--disable", "enabled", default=None,
              help="Schedule the connection, or stop scheduling it.")
@click.option("--staleness", type=int, help="Seconds after which the feed is stale.")
@click.option("--max-removal-share", type=float,
              help="Hold a snapshot that would remove more than this share of operators.")
@click.option("--max-change-share", type=float,
              help="Hold a run that would change the status or consent of more than this "
                   "share.")
@click.option("--max-quarantine-share", type=float,
              help="Hold a snapshot whose quarantined share passes this (and the number).")
@click.option("--max-quarantined", type=int,
              help="Hold a snapshot whose quarantined records pass this (and the share).")
@click.option("--scope", "scope", multiple=True,
              help="The countries this connection answers for (replaces the scope).")
def connections_edit(connection: str, config_text: str | None, schedule: str | None,
                     snapshot_schedule: str | None, enabled: bool | None, staleness: int | None,
                     max_removal_share: float | None, max_change_share: float | None,
                     max_quarantine_share: float | None, max_quarantined: int | None,
                     scope: tuple[str, ...], replace_config: bool) -> None:
    """Change a connection; prints what the configuration's change was."""
    if config_text is None and not scope and all(value is None for value in (
            schedule, snapshot_schedule, enabled, staleness, max_removal_share,
            max_change_share, max_quarantine_share, max_quarantined)):
        raise click.UsageError("nothing to change: give at least one setting "
                               "(see --help)")
    session = db.session()
    settings = _settings()
    try:
        row = conns.get_connection(session, connection)
        before = conns.full_config(row, settings)
        conns.edit_connection(session, settings, row,
                              config=_json_arg(config_text, "--config") if config_text else None,
                              replace_config=replace_config,
                              schedule=schedule, enabled=enabled, staleness_seconds=staleness,
                              max_removal_share=max_removal_share,
                              max_change_share=max_change_share,
                              max_quarantine_share=max_quarantine_share,
                              max_quarantined=max_quarantined,
                              scope_countries=list(scope) if scope else None,
                              snapshot_schedule=snapshot_schedule)
        difference = conns.config_difference(
            before, conns.full_config(row, settings), conns.secret_names(row))
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(f"connection {row.name} updated")
    for line in difference:
        click.echo(f"  {line}")


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
    click.echo(f"connection {connection} removed")


@click.group("sync")
def sync_group() -> None:
    """Run syncs and review runs."""


@sync_group.command("run")
@click.argument("connection")
@click.option("--dry-run", is_flag=True,
              help="Stage and show the difference; apply nothing (see `sync diff`).")
@click.option("--snapshot", is_flag=True,
              help="Read an incremental source whole and remove what it no longer lists.")
@click.option("--json", "as_json", is_flag=True, help="The run as JSON on the last line.")
def sync_run(connection: str, dry_run: bool, snapshot: bool, as_json: bool) -> None:
    """Sync CONNECTION now, with a progress bar.

    Exit status: 0 succeeded, 3 held for confirmation, 4 busy (another process holds
    the connection), 1 failed, 2 usage.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        row = conns.get_connection(db.session(), connection)
    except HubError as exc:
        raise _fail(exc) from exc
    connection_id, name = row.id, row.name
    db.session().close()
    # A feed does not say how many records it holds, so a spinner with the count read so
    # far replaces a progress bar (whose total would be a guess).
    spinner = _Spinner(f"syncing {name}")
    try:
        run = engine.run_sync(db.get_db(app), _settings(), connection_id, trigger="manual",
                              dry_run=dry_run, progress=spinner.update, snapshot=snapshot)
    except engine.LeaseBusy as exc:
        spinner.finish(read=False)
        _busy(name, exc.detail, as_json)
    except HubError as exc:
        spinner.finish()
        raise _fail(exc) from exc
    if run is None:
        spinner.finish(read=False)
        _busy(name, "this schedule slot was already run", as_json)
    spinner.finish()
    summary = admin.run_summary(run)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"run {run.id}: {run.status}" + (" (dry run)" if dry_run else ""))
        click.echo("  " + admin.counts_text(summary))
        if run.status == "needs_confirmation":
            click.echo(f"  held: {run.held_reason}\n  see `aeohub sync diff {run.id}`, then "
                       f"`aeohub sync confirm {run.id}` or `aeohub sync discard {run.id}`")
        elif run.held_reason:
            click.echo(f"  applying it would be held: {run.held_reason}")
        if run.error:
            click.echo(f"  error: {run.error}")
        if summary["unread"]:
            click.echo(f"  columns with data that no setting reads: "
                       f"{', '.join(summary['unread'])}")
    if status := exitcodes.of_runs([run.status]):
        raise SystemExit(status)


def _busy(name: str, detail: str, as_json: bool) -> NoReturn:
    """Exit 4 (busy), saying why; with --json, the same as JSON on standard output."""
    click.echo(f"busy: {detail}", err=True)
    if as_json:
        click.echo(json.dumps({"connection": name, "status": "busy", "detail": detail}))
    raise SystemExit(exitcodes.BUSY)


class _Spinner:
    """A spinner and the number of records read, on standard error; on a terminal it
    redraws one line, elsewhere only the final count is written (one line, before the
    result)."""

    FRAMES = "|/-\\"

    def __init__(self, label: str) -> None:
        self.label = label
        self.read = 0
        self.ticks = 0
        self.live = sys.stderr.isatty()

    def update(self, counts: dict[str, int]) -> None:
        self.read = counts["read"]
        self.ticks += 1
        if self.live:
            frame = self.FRAMES[self.ticks % len(self.FRAMES)]
            click.echo(f"\r{frame} {self.label}: {self.read} records read", nl=False, err=True)

    def finish(self, *, read: bool = True) -> None:
        """The final count (`read`), or only the spinner's line cleared (nothing ran)."""
        if read:
            click.echo(("\r" if self.live else "") + f"{self.label}: {self.read} records "
                       "read", err=True)
        elif self.live:
            click.echo("\r\033[K", nl=False, err=True)


@sync_group.command("runs")
@click.option("--connection", help="Only this connection's runs (name or id).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000),
              help="How many runs, newest first.")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def sync_runs(connection: str | None, limit: int, as_json: bool) -> None:
    """Recent runs with their counts (held and dry runs: what they would do)."""
    session = db.session()
    query = (select(SyncRun, Connection.name).join(Connection)
             .order_by(SyncRun.id.desc()).limit(limit))
    if connection:
        try:
            conn_id = conns.get_connection(session, connection).id
        except HubError as exc:
            raise _fail(exc) from exc
        query = query.where(SyncRun.connection_id == conn_id)
    runs = [admin.run_dict(r, n) for r, n in session.execute(query)]  # as the API gives it
    if as_json:
        click.echo(json.dumps(runs))
        return
    for r in runs:
        click.echo(f"{r['id']:>5} {r['connection']:<20} {r['trigger']:<8} "
                   f"{r['status']:<19} {admin.counts_text(r)}")


@sync_group.command("diff")
@click.argument("run_id", type=ROW_ID)
@click.option("--kind", type=click.Choice(admin.DIFFERENCE_KINDS), multiple=True,
              help="What to list (default: all).")
@click.option("--after", help="Continue after this key (the previous page's last).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000),
              help="Rows per kind.")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def sync_diff(run_id: int, kind: tuple[str, ...], after: str | None, limit: int,
              as_json: bool) -> None:
    """The operators a run created, updated or removed (a held or dry run: would), and
    the records it rejected."""
    session = db.session()
    run = session.get(SyncRun, run_id)
    if run is None:
        raise click.ClickException(f"no sync run {run_id}")
    pages: list[dict[str, Any]] = []
    for name in kind or admin.DIFFERENCE_KINDS:
        try:
            pages.append(admin.difference(session, run, name, after=after, limit=limit))
        except HubError as exc:  # not known for this run: said, for this kind only
            pages.append({"kind": name, "error": exc.detail})
    if as_json:
        click.echo(json.dumps(pages))
        return
    for page in pages:
        if "error" in page:
            click.echo(f"{page['kind']}: {page['error']}")
            continue
        verb = page["kind"] if page["applied"] or page["kind"] == "rejected" \
            else f"would {page['kind']}"
        click.echo(f"{verb}: {len(page['items'])}"
                   + (f" (more after {page['next_after']})" if page["next_after"] else ""))
        for item in page["items"]:
            if page["kind"] == "rejected":
                reason = item["reason"]
                click.echo(f"  {item['key']:<32} {item['position'] or '':<12} "
                           f"{reason.get('field')}: {reason.get('reason')}")
            else:
                click.echo(f"  {item['stable_key']:<24} {item.get('country') or '':<3} "
                           f"{item.get('status') or '':<10} {item.get('legal_name') or ''}")


@sync_group.command("confirm")
@click.argument("run_id", type=ROW_ID)
def sync_confirm(run_id: int) -> None:
    """Apply a held run."""
    try:
        run = engine.confirm(db.get_db(), _settings(), run_id)
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(f"run {run.id}: {run.status}")


@sync_group.command("discard")
@click.argument("run_id", type=ROW_ID)
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
@click.option("--connection", help="Only this connection's records (name or id).")
@click.option("--status", default="open", show_default=True,
              type=click.Choice(quarantine.STATUSES), help="Which records.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000),
              help="At most this many records.")
@click.option("--after", type=click.IntRange(0, MAX_ID),
              help="Continue after this record id (the notice at the end gives it).")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def quarantine_list(connection: str | None, status: str, limit: int, after: int | None,
                    as_json: bool) -> None:
    """Records refused by syncs, one entry per record and reason, with how often seen.
    When more remain, the last line (on standard error) says how to go on."""
    session = db.session()
    try:
        conn_id = conns.get_connection(session, connection).id if connection else None
    except HubError as exc:
        raise _fail(exc) from exc
    page, next_after = quarantine.list_page(session, connection_id=conn_id, status=status,
                                            after=after, limit=limit)
    if as_json:
        click.echo(json.dumps([admin.quarantine_dict(row, name) for row, name in page]))
    else:
        for row, _name in page:
            # one line per record, whatever line breaks a value held
            reasons = " ".join("; ".join(f"{r['field']}: {r['reason']}"
                                         for r in row.reasons).split())
            click.echo(f"{row.id:>5} {row.programme or '?':<10} {row.stable_key or '?':<20} "
                       f"x{row.seen_count:<3} {row.position or ''} {reasons}")
    if next_after is not None:
        click.echo(f"more records: --after {next_after}", err=True)


@quarantine_group.command("show")
@click.argument("record_id", type=ROW_ID)
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON.")
def quarantine_show(record_id: int, as_json: bool) -> None:
    """One quarantined record: its reasons and the record as read."""
    try:
        row = quarantine.get(db.session(), record_id)
    except HubError as exc:
        raise _fail(exc) from exc
    data = {"id": row.id, "status": row.status, "programme": row.programme,
            "stable_key": row.stable_key, "position": row.position,
            "reasons": row.reasons, "record": row.record}
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(f"record {row.id} ({row.status}): {row.programme or '?'} "
               f"{row.stable_key or '?'} at {row.position or '?'}")
    for reason in row.reasons:
        click.echo(f"  {reason.get('field')}: {reason.get('reason')}")
    click.echo(json.dumps(row.record, indent=2, default=str))


@quarantine_group.command("replay")
@click.argument("record_id", type=ROW_ID)
@click.option("--set", "corrections", multiple=True,
              help="field=value correction (repeat for several).")
def quarantine_replay(record_id: int, corrections: tuple[str, ...]) -> None:
    """Validate again (with corrections) and apply when it passes."""
    malformed = [c for c in corrections if "=" not in c]
    if malformed:
        raise click.BadParameter(f"{malformed[0]!r} is not field=value", param_hint="--set")
    fixes = dict(c.split("=", 1) for c in corrections)
    session = db.session()
    try:
        row = quarantine.replay(session, record_id, fixes)
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(f"record {row.id} replayed")


@quarantine_group.command("dismiss")
@click.argument("record_id", type=ROW_ID)
@click.option("--note", help="Why it is dismissed (kept with the entry).")
def quarantine_dismiss(record_id: int, note: str | None) -> None:
    """Set a record aside: it stays dismissed until the record changes."""
    session = db.session()
    try:
        row = quarantine.dismiss(session, record_id, note=note)
    except HubError as exc:
        raise _fail(exc) from exc
    click.echo(f"record {row.id} dismissed")
