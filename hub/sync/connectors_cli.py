"""`aeohub connectors list|check`: the installed connector plugins, and a probe of one."""

from __future__ import annotations

import json
from dataclasses import asdict

import click
from flask import current_app

from connectors.base import ConfigError, redact
from connectors.registry import available_connectors, build_connector, config_json_schema
from hub.sync.connections import SyncSettings


def register(cli: click.Group) -> None:
    cli.add_command(connectors_group)


@click.group("connectors")
def connectors_group() -> None:
    """Connector plugins (entry-point group aeohub.connectors)."""


@connectors_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Each connector with its config schema.")
def connectors_list(as_json: bool) -> None:
    """Installed connectors; a broken plugin is logged and left out."""
    found = available_connectors()
    if as_json:
        click.echo(json.dumps({name: config_json_schema(cls) for name, cls in found.items()}))
        return
    for name, cls in sorted(found.items()):
        schema = config_json_schema(cls)
        fields = ", ".join(
            f"{key}{'*' if key in schema['required'] else ''}"
            f"{' (secret)' if spec.get('secret') else ''}"
            for key, spec in schema["properties"].items())
        click.echo(f"{name:<14} {cls.title}\n{'':<14} config: {fields}")


@connectors_group.command("check")
@click.argument("connector_type")
@click.option("--config", "config_text", required=True, help="Connector config as JSON.")
@click.option("--json", "as_json", is_flag=True)
def connectors_check(connector_type: str, config_text: str, as_json: bool) -> None:
    """Probe a source with CONNECTOR_TYPE: reachable, authenticated, format as expected."""
    try:
        config = json.loads(config_text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--config") from exc
    settings = SyncSettings.from_config(current_app.config)
    from connectors.base import ConnectorContext

    context = ConnectorContext(allowed_hosts=settings.extra_hosts or None,
                               import_dir=settings.import_dir)
    try:
        connector = build_connector(connector_type, config, context)
    except ConfigError as exc:
        lines = [str(exc)] + [f"  {f}: {', '.join(m)}" for f, m in exc.fields.items()]
        raise click.ClickException("\n".join(lines)) from exc
    result = connector.check()
    shown = {**asdict(result), "config": redact(connector.config, connector.config_schema)}
    if as_json:
        click.echo(json.dumps(shown, default=str))
    else:
        click.echo(f"reachable: {result.reachable}, authenticated: {result.authenticated}, "
                   f"format as expected: {result.format_ok}")
        if result.reason:
            click.echo(f"reason: {result.reason}")
    if not result.ok:
        raise SystemExit(1)
