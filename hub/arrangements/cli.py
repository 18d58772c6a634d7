"""`aeohub reference load`, `aeohub programmes list`, `aeohub arrangements ...`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from hub import db
from hub.arrangements import service
from hub.arrangements.reference import ReferenceDataError, load_reference
from hub.errors import HubError
from hub.registry.models import Programme


def register(cli: click.Group) -> None:
    cli.add_command(reference_group)
    cli.add_command(programmes_group)
    cli.add_command(arrangements_group)


def _date(value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from exc


@click.group("reference")
def reference_group() -> None:
    """Reference data: programmes and arrangements from config/reference."""


@reference_group.command("load")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Folder holding programmes.yaml and arrangements.yaml.")
def reference_load(directory: Path | None) -> None:
    """Validate the reference files and load them (idempotent)."""
    try:
        data = load_reference(directory)
    except ReferenceDataError as exc:
        raise click.ClickException(str(exc)) from exc
    session = db.session()
    report = service.load_reference_data(session, data)
    if not report.changed:
        click.echo(f"reference data unchanged ({len(data.programmes)} programmes, "
                   f"{len(data.arrangements)} arrangements)")
        return
    for entity, count in sorted(report.created.items()):
        click.echo(f"created {count} {entity}(s)")
    for entity, count in sorted(report.updated.items()):
        click.echo(f"updated {count} {entity}(s)")
    for line in report.changes:
        click.echo(f"  {line}")


@click.group("programmes")
def programmes_group() -> None:
    """AEO programmes."""


@programmes_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def programmes_list(as_json: bool) -> None:
    """List programmes with their administration and categories."""
    rows = db.session().scalars(select(Programme).order_by(Programme.code)).all()
    if as_json:
        click.echo(json.dumps([{"code": p.code, "name": p.name,
                                "administration": p.administration.code,
                                "categories": p.category_codes(),
                                "stable_key": p.stable_key_scheme,
                                "consent_required": p.consent_required} for p in rows]))
        return
    for p in rows:
        click.echo(f"{p.code:<12} {p.administration.code:<4} {p.name} "
                   f"[{', '.join(p.category_codes())}] key={p.stable_key_scheme}"
                   f"{' consent' if p.consent_required else ''}")


@click.group("arrangements")
def arrangements_group() -> None:
    """Mutual-recognition arrangements."""


@arrangements_group.command("list")
@click.option("--programme", help="Only arrangements this programme is party to.")
@click.option("--date", "day", help="Status and active directions on this date (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def arrangements_list(programme: str | None, day: str | None, as_json: bool) -> None:
    """List arrangements, their status on a date and their active directions."""
    on = _date(day)
    if programme:
        known = list(db.session().scalars(select(Programme.code).order_by(Programme.code)))
        if programme not in known:
            raise click.BadParameter(f"unknown programme {programme!r}; known: "
                                     f"{', '.join(known)}", param_hint="--programme")
    rows = service.list_arrangements(db.session(), programme=programme)
    out: list[dict[str, Any]] = []
    for a in rows:
        directions = [
            {"recognising": d.recognising.code, "recognised": d.recognised.code,
             "categories": d.categories, "flows": d.flows,
             "active_from": d.active_from.isoformat() if d.active_from else None,
             "active": d.active_on(on)}
            for d in a.directions
        ]
        out.append({"code": a.code, "title": a.title, "status": a.status_on(on),
                    "parties": [p.programme.code for p in a.parties],
                    "directions": directions})
    if as_json:
        click.echo(json.dumps(out))
        return
    for item in out:
        click.echo(f"{item['code']:<18} {item['status'] or 'not yet signed':<11} "
                   f"{item['title']}")
        for d in item["directions"]:
            mark = "active" if d["active"] else "inactive"
            click.echo(f"    {d['recognising']} recognises {d['recognised']} "
                       f"{','.join(d['categories'])} ({'/'.join(d['flows'])}) from "
                       f"{d['active_from'] or '?'} [{mark}]")


def _status_command(action: str) -> click.Command:
    @click.command(action, help=f"{action.capitalize()} arrangement CODE from --date.")
    @click.argument("code")
    @click.option("--date", "day", required=True, help="Effective date (YYYY-MM-DD).")
    @click.option("--note", help="Why (kept with the change).")
    def command(code: str, day: str, note: str | None) -> None:
        session = db.session()
        try:
            change = service.change_status(session, code, action, _date(day), note=note)
        except HubError as exc:
            raise click.ClickException(exc.detail) from exc
        click.echo(f"{code}: {change.status} from {change.effective_date.isoformat()}")

    return command


for _action in ("suspend", "resume", "terminate"):
    arrangements_group.add_command(_status_command(_action))
