"""`aeohub scheduler`: the process that runs syncs when they are due."""

from __future__ import annotations

import click
from flask import current_app
from sqlalchemy import select

from hub import clock, exitcodes
from hub.sync.connections import backoff_until
from hub.sync.models import Connection
from hub.sync.scheduler import HubScheduler


def register(cli: click.Group) -> None:
    cli.add_command(scheduler_command)


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
@click.option("--poll", default=2.0, show_default=True,
              help="Seconds between checks for changed connections and node notifications.")
def scheduler_command(once: bool, poll: float) -> None:
    """Run the scheduler (its own process; never inside web workers). With --once, the
    exit status is 1 when a run failed, else 3 when one was held, else 0; a connection
    backing off from failures is named with the time its backoff ends."""
    scheduler = HubScheduler(current_app._get_current_object(), poll_seconds=poll)  # type: ignore[attr-defined]
    click.echo(f"scheduler started at {clock.now().isoformat()} ({scheduler.holder})")
    if not once:
        scheduler.run_forever()
        return
    runs = scheduler.run_once()
    for run in runs:
        why = run.error or run.held_reason
        click.echo(f"run {run.id} of connection {run.connection_id}: {run.status}"
                   + (f" ({why})" if why else ""))
    with scheduler.database.session_scope() as session:
        for connection in session.scalars(select(Connection).where(
                Connection.id.in_(scheduler.triggers)).order_by(Connection.id)):
            if (until := backoff_until(connection)) is not None:
                click.echo(f"connection {connection.id} ({connection.name}) backs off after "
                           f"{connection.consecutive_failures} failure(s) in a row, until "
                           f"{until.isoformat()}")
    if status := exitcodes.of_runs(run.status for run in runs):
        raise SystemExit(status)
