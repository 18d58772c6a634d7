"""``aeohub node conformance URL``: check a live node against the node protocol."""

from __future__ import annotations

import json

import click

from connectors.aeo_node.conformance import check_node


@click.group("node")
def node_group() -> None:
    """Tools for the administrations' nodes."""


@node_group.command("conformance")
@click.argument("url")
@click.option("--token", envvar="AEOHUB_NODE_TOKEN", default=None,
              help="Bearer token for the node (or set AEOHUB_NODE_TOKEN).")
@click.option("--programme", default=None, help="Programme code to check (default: all).")
@click.option("--page-limit", default=100, show_default=True, type=click.IntRange(1, 5000),
              help="Page size used to walk the feed.")
@click.option("--max-pages", default=500, show_default=True, type=click.IntRange(1),
              help="Stop walking the feed after this many pages.")
@click.option("--timeout", default=10.0, show_default=True, type=float,
              help="Seconds to wait for each answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def conformance(
    ctx: click.Context, *, url: str, token: str | None, programme: str | None, page_limit: int,
    max_pages: int, timeout: float, as_json: bool,
) -> None:
    """Check the node at URL against aeo-node/1; exit status 1 if it is not conformant."""
    report = check_node(url, token=token, programme=programme, timeout=timeout,
                        page_limit=page_limit, max_pages=max_pages)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(report.render())
    ctx.exit(0 if report.conformant else 1)


def register(cli: click.Group) -> None:
    """Add the ``node`` command group to the ``aeohub`` command."""
    cli.add_command(node_group)
