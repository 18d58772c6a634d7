"""The `aeohub` command (also reachable as `flask --app hub`).

Commands are thin wrappers over service functions. `config check` and `keys generate`
belong to the group itself, so that they (and `--help`) work before the configuration
does; every other command needs the app, and an unusable configuration stops it with one
short message and exit status 1. Each domain package defines `register(cli)` in its own
`cli.py`; `COMMANDS` names each command's module, which is imported only when the command
runs, and its summary, which `--help` lists (a test keeps it equal to the command's own).
The group is a `FlaskGroup`, so every command runs inside an app context with the
configured database: the app's core (`create_app(http=False)`), since a command serves no
requests (`serve` and `demo` add the rest, `hub.init_http`).
"""

from __future__ import annotations

import copy
import gc
import importlib
import secrets
import sys
from functools import partial
from typing import NamedTuple

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, ScriptInfo, with_appcontext
from werkzeug.serving import run_simple

from hub import __version__, create_app, init_http
from hub.settings import ConfigurationError, check_config


class Listed(NamedTuple):
    """Where a command is defined (its module's `register(cli)` adds it) and its summary."""

    module: str
    summary: str


COMMANDS: dict[str, Listed] = {
    "db": Listed("hub.migrate", "Database schema: upgrade, current revision, new revisions."),
    "reference": Listed("hub.arrangements.cli", "Reference data: programmes and arrangements "
                        "from config/reference."),
    "programmes": Listed("hub.arrangements.cli", "AEO programmes."),
    "arrangements": Listed("hub.arrangements.cli", "Mutual-recognition arrangements."),
    "verify": Listed("hub.recognition.cli", "Is a trader recognised by PROGRAMME on a date, "
                     "and why (not)?"),
    "match": Listed("hub.recognition.cli", "Scored, explained candidates for a trader "
                    "reference."),
    "crosswalk": Listed("hub.recognition.cli", "The code(s) to declare in an administration "
                        "for an operator."),
    "entities": Listed("hub.recognition.cli", "Companies linked across programmes."),
    "judgements": Listed("hub.recognition.cli", "Human judgements: are two operators the same "
                         "company?"),
    "identifiers": Listed("hub.identifiers.cli", "Validate and normalise operator identifiers "
                          "(EORI, EU AEO, MID, USCC, ...)."),
    "connections": Listed("hub.sync.cli", "Node connections: add, list, show, edit, disable, "
                          "remove."),
    "sync": Listed("hub.sync.cli", "Run syncs and review runs."),
    "quarantine": Listed("hub.sync.cli", "Records refused by syncs."),
    "scheduler": Listed("hub.sync.scheduler_cli", "Run the scheduler (its own process; never "
                        "inside web workers)."),
    "connectors": Listed("hub.sync.connectors_cli", "Connector plugins (entry-point group "
                         "aeohub.connectors)."),
    "node": Listed("hub.sync.node_cli", "Tools for the administrations' nodes."),
    "sim": Listed("hub.sim.cli", "Synthetic AEO registries and node simulators (demo, tests, "
                  "benchmarks)."),
    "demo": Listed("hub.demo", "The whole hub on loopback: simulated nodes, syncs, scheduler, "
                   "web app and API."),
    "clients": Listed("hub.auth.cli", "Manage partner OAuth clients."),
    "audit": Listed("hub.audit.cli", "The hash-chained audit log: verify it, export it, show "
                    "the signed head."),
    "users": Listed("hub.web.cli", "Dashboard users: create, list, disable and enable, "
                    "change passwords, end sessions."),
    "worker": Listed("hub.notify.cli", "Run the webhook worker: derive events, sign and post "
                     "deliveries, retry."),
    "webhooks": Listed("hub.notify.cli", "Webhook subscriptions of every client (the hub "
                       "operator's view)."),
    "view-changes": Listed("hub.notify.cli", "Record today's changes of partners' views now "
                           "(the scheduler does it daily): operators entering or leaving a "
                           "view because a direction started or stopped."),
}


def package_commands(module: str) -> dict[str, click.Command]:
    """The commands `module`'s `register(cli)` adds, as they are (without app context)."""
    staging = click.Group()
    importlib.import_module(module).register(staging)
    return dict(staging.commands)


class AppCommands(AppGroup):
    """The app's commands (`app.cli`): `serve`, and each package's command, loaded from its
    module (`COMMANDS`) when it is first asked for.

    Every command gets an app context, however it is invoked (`aeohub`, `flask --app
    hub`, or a test's CLI runner). The packages' own command objects are left as they are
    (copies are wrapped), so they still work in a plain click group.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            for found, command in package_commands(COMMANDS[name].module).items():
                self.commands.setdefault(found, _with_app_context(command))
        return self.commands.get(name)


def install_commands(app: Flask) -> None:
    """Give `app` its `aeohub` commands (`app.cli`)."""
    commands = AppCommands(name=app.cli.name)
    commands.add_command(_with_app_context(serve))
    app.cli = commands


def _with_app_context(command: click.Command) -> click.Command:
    wrapped = copy.copy(command)
    if command.callback is not None:
        wrapped.callback = with_appcontext(command.callback)
    if isinstance(command, click.Group) and isinstance(wrapped, click.Group):
        wrapped.commands = {name: _with_app_context(sub)
                            for name, sub in command.commands.items()}
    return wrapped


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
def serve(host: str, port: int) -> None:
    """Serve the web app and API (threaded; use gunicorn in production)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    init_http(app)
    # Without a configured issuer, the hub's published URLs are this server's address.
    app.config["ISSUER"] = app.config.get("ISSUER") or f"http://{host}:{port}"
    click.echo(f"AEO Hub on http://{host}:{port}/ (database: {app.config['DATABASE_URL']})")
    run_simple(host, port, app, threaded=True, use_reloader=False)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"aeohub {__version__}")
    ctx.exit()


def _create_app() -> Flask:
    app = create_app(http=False)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.find_root().call_on_close(partial(_finish, app))
    return app


def _finish(app: Flask) -> None:
    """End a command's process cheaply: close the database's connections (SQLite folds
    its write-ahead log back into the file as the last one closes), then freeze every
    remaining object, so that the garbage collection at the interpreter's exit does not
    walk all that start-up made (a quarter of a short command's time) only to free memory
    that the exit frees anyway."""
    # SQLAlchemy is heavy: hub.cli stays light for --help; create_app imported it already.
    from hub.db import get_db  # noqa: PLC0415

    get_db(app).dispose()
    gc.freeze()


class HubGroup(FlaskGroup):
    """The `aeohub` group: a configuration that cannot be used is reported in one short
    message and exit status 1, never a traceback; `--help`, `config check` and `keys
    generate` work without a usable configuration (they are the group's own commands)."""

    def _app_problem(self, ctx: click.Context) -> ConfigurationError | None:
        try:
            ctx.ensure_object(ScriptInfo).load_app()
        except ConfigurationError as exc:
            return exc
        return None

    def list_commands(self, ctx: click.Context) -> list[str]:
        problem = self._app_problem(ctx)
        if problem is not None:
            click.echo(f"{problem.report()}\n(only the commands below work until it is "
                       "fixed)", err=True)
            return sorted(click.Group.list_commands(self, ctx))
        return list(super().list_commands(ctx))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        own = click.Group.get_command(self, ctx, name)
        if own is not None:
            return own
        problem = self._app_problem(ctx)
        if problem is not None and not ctx.resilient_parsing:
            click.echo(problem.report(), err=True)
            ctx.exit(1)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands as click does, a package's command by its summary in
        `COMMANDS` (listing does not import every package)."""
        listed: dict[str, click.Command] = {}
        for name in self.list_commands(ctx):
            command = (click.Command(name, help=COMMANDS[name].summary)
                       if name in COMMANDS and name not in self.commands
                       else self.get_command(ctx, name))
            if command is not None:
                listed[name] = command
        click.Group(commands=listed).format_commands(ctx, formatter)


@click.group(
    cls=HubGroup,
    create_app=_create_app,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
def main() -> None:
    """AEO Hub: share AEO registries under mutual-recognition arrangements."""


@main.group("config", cls=click.Group)
def config_group() -> None:
    """The hub's configuration."""


@config_group.command("check")
def config_check() -> None:
    """Check the configuration (profile, settings, AEOHUB_* variables) as the hub does at
    start-up: every problem at once, exit status 1 if there is any."""
    try:
        checked = check_config()
    except ConfigurationError as exc:
        click.echo(exc.report(), err=True)
        sys.exit(1)
    for warning in checked.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"configuration OK (profile {checked.settings['ENV']})")


@main.group("keys", cls=click.Group)
def keys_group() -> None:
    """Keys for the configuration."""


@keys_group.command("generate")
def keys_generate() -> None:
    """Print fresh keys: the secret key, the Fernet key that encrypts connection secrets,
    the audit chain's signing key and a metrics token (as environment variables)."""
    # Only this command needs cryptography and hub.audit (which imports SQLAlchemy): both
    # heavy, and hub.cli stays light for --help.
    from cryptography.fernet import Fernet  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    from hub.audit.signing import b64url  # noqa: PLC0415

    seed = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw,
                                                      NoEncryption())
    click.echo(f"AEOHUB_SECRET_KEY={secrets.token_urlsafe(48)}")
    click.echo(f"AEOHUB_ENCRYPTION_KEY={Fernet.generate_key().decode()}")
    click.echo(f"AEOHUB_AUDIT_SIGNING_KEY={b64url(seed)}")
    click.echo(f"AEOHUB_METRICS_TOKEN={secrets.token_urlsafe(32)}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
