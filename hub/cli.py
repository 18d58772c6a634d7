"""The `aeohub` command (also reachable as `flask --app hub`).

Commands are thin wrappers over service functions. `config check` and `keys generate`
belong to the group itself, so that they (and `--help`) work before the configuration
does; every other command needs the app, and an unusable configuration stops it with one
short message and exit status 1. Each domain package defines
`register(cli)` in its own `cli.py`; `COMMAND_MODULES` lists them. The group is a
`FlaskGroup`, so every command runs inside an app context with the configured database.
"""

from __future__ import annotations

import copy
import importlib
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from hub.settings import ConfigurationError, check_config

COMMAND_MODULES: list[str] = [
    "hub.migrate",
    "hub.arrangements.cli",
    "hub.recognition.cli",
    "hub.identifiers.cli",
    "hub.sync.cli",
    "hub.sync.connectors_cli",
    "hub.sync.node_cli",
    "hub.sim.cli",
    "hub.demo",
    "hub.auth.cli",
    "hub.audit.cli",
    "hub.web.cli",
    "hub.notify.cli",
]


def register_commands(group: click.Group) -> None:
    """Add every package's commands to `group` (the app's `cli`).

    Every command gets an app context, however it is invoked (`aeohub`, `flask --app
    hub`, or a test's CLI runner). The packages' own command objects are left as they are
    (copies are wrapped), so they still work in a plain click group.
    """
    staging = click.Group()
    staging.add_command(serve)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(staging)
    for command in staging.commands.values():
        group.add_command(_with_app_context(command))


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
    from werkzeug.serving import run_simple

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # Without a configured issuer, the hub's published URLs are this server's address.
    app.config["ISSUER"] = app.config.get("ISSUER") or f"http://{host}:{port}"
    click.echo(f"AEO Hub on http://{host}:{port}/ (database: {app.config['DATABASE_URL']})")
    run_simple(host, port, app, threaded=True, use_reloader=False)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from hub import __version__

    click.echo(f"aeohub {__version__}")
    ctx.exit()


def _create_app() -> object:
    from hub import create_app

    return create_app()


class HubGroup(FlaskGroup):
    """The `aeohub` group: a configuration that cannot be used is reported in one short
    message and exit status 1, never a traceback; `--help`, `config check` and `keys
    generate` work without a usable configuration (they are the group's own commands)."""

    def _app_problem(self, ctx: click.Context) -> ConfigurationError | None:
        from flask.cli import ScriptInfo

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
    import secrets

    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    from hub.audit.signing import b64url

    seed = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw,
                                                      NoEncryption())
    click.echo(f"AEOHUB_SECRET_KEY={secrets.token_urlsafe(48)}")
    click.echo(f"AEOHUB_ENCRYPTION_KEY={Fernet.generate_key().decode()}")
    click.echo(f"AEOHUB_AUDIT_SIGNING_KEY={b64url(seed)}")
    click.echo(f"AEOHUB_METRICS_TOKEN={secrets.token_urlsafe(32)}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
