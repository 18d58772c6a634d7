"""Schema migrations with Alembic (scripts in `hub/migrations`).

`upgrade(database)` brings a database to the newest revision; `aeohub db upgrade`,
`db current`, `db heads` and `db revision --autogenerate` wrap Alembic's commands. The
application never calls `create_all()`: the schema is what the migrations say.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app

from hub.db import Database, get_db

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database: Database) -> Config:
    """An Alembic config pointing at the hub's scripts and `database`'s engine."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    cfg.attributes["engine"] = database.engine
    return cfg


def upgrade(database: Database, revision: str = "head") -> None:
    command.upgrade(alembic_config(database), revision)


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revisions(database: Database) -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config(database)).get_heads())


def register(cli: click.Group) -> None:
    cli.add_command(db_group)


@click.group("db")
def db_group() -> None:
    """Database schema: upgrade, current revision, new revisions."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    database = get_db(current_app)
    upgrade(database, revision)
    click.echo(f"database at revision {current_revision(database)} ({database.dialect})")


@db_group.command("current")
@click.option("--json", "as_json", is_flag=True,
              help="Print the revision, the heads and whether it is up to date as JSON.")
def db_current(as_json: bool) -> None:
    """Print the revision the database is at."""
    database = get_db(current_app)
    revision = current_revision(database)
    if as_json:
        heads = head_revisions(database)
        click.echo(json.dumps({"revision": revision, "heads": heads,
                               "up_to_date": revision is not None and revision in heads}))
        return
    click.echo(revision or "(empty database: run `aeohub db upgrade`)")


@db_group.command("heads")
@click.option("--json", "as_json", is_flag=True, help="Print the heads as a JSON array.")
def db_heads(as_json: bool) -> None:
    """Print the newest revision(s) of the migration scripts."""
    heads = head_revisions(get_db(current_app))
    if as_json:
        click.echo(json.dumps(heads))
        return
    for head in heads:
        click.echo(head)


@db_group.command("revision")
@click.option("-m", "--message", required=True, help="What the revision changes.")
@click.option("--autogenerate/--empty", default=True, help="Compare models with the database.")
def db_revision(message: str, autogenerate: bool) -> None:
    """Create a migration script (compare against an upgraded database)."""
    out = io.StringIO()
    with redirect_stdout(out):
        command.revision(
            alembic_config(get_db(current_app)), message=message, autogenerate=autogenerate
        )
    click.echo(out.getvalue().strip())
