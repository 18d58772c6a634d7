"""`aeohub scheduler`: the process that runs syncs when they are due."""

from __future__ import annotations

import click
from flask import current_app

from hub import clock
from hub.sync.scheduler import HubScheduler


def register(cli: click.Group) -> None:
    cli.add_command(scheduler_command)


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
@click.option("--poll", default=2.0, show_default=True,
              help="Seconds between checks for changed connections and node notifications.")
def scheduler_command(once: bool, poll: float) -> None:
    """Run the scheduler (its own process; never inside web workers)."""
    scheduler = HubScheduler(current_app._get_current_object(), poll_seconds=poll)  # type: ignore[attr-defined]
    click.echo(f"scheduler started at {clock.now().isoformat()} ({scheduler.holder})")
    scheduler.run_forever(once=once)
