"""`aeohub worker` (the delivery process), `aeohub webhooks list|resume|deliveries` and
`aeohub view-changes` (record the day's changes of partners' views now)."""

from __future__ import annotations

import json

import click
from flask import current_app
from sqlalchemy import select

from hub import clock, db
from hub.notify import service
from hub.notify.models import WebhookSubscription
from hub.notify.views import run_daily
from hub.notify.worker import DeliveryWorker


def register(cli: click.Group) -> None:
    cli.add_command(worker_command)
    cli.add_command(webhooks_group)
    cli.add_command(view_changes_command)


@click.command("view-changes")
def view_changes_command() -> None:
    """Record today's changes of partners' views now (the scheduler does it daily):
    operators entering or leaving a view because a direction started or stopped."""
    result = run_daily(db.get_db())
    if result is None:
        click.echo("another process recorded them at the same time")
        return
    click.echo(f"{result.pairs} programme pairs changed: {result.tombstones} operators "
               f"left views, {result.shared} entered")


@click.command("worker")
@click.option("--poll", default=0.5, show_default=True,
              help="Seconds between looks for new events and due deliveries.")
@click.option("--threads", default=8, show_default=True, help="Deliveries posted at once.")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
def worker_command(poll: float, threads: int, once: bool) -> None:
    """Run the webhook worker: derive events, sign and post deliveries, retry."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = DeliveryWorker(app, poll_seconds=poll, threads=threads)
    if once:
        try:
            worker.run_once()
        finally:
            worker.close()
        return
    click.echo(f"webhook worker started at {clock.now().isoformat()}", err=True)
    worker.run_forever()


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook subscriptions of every client (the hub operator's view)."""


@webhooks_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the subscriptions as a JSON array.")
def webhooks_list(as_json: bool) -> None:
    """Webhook subscriptions with their delivery state."""
    rows = [{**service.subscription_dict(s), "client": s.client.client_id}
            for s in service.all_subscriptions(db.session())]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        note = f"  ({row['paused_reason']})" if row["paused_reason"] else ""
        click.echo(f"{row['id']}  {row['status']:<8} {row['client']}  {row['url']}  "
                   f"{','.join(row['events'])}{note}")


@webhooks_group.command("resume")
@click.argument("subscription")
def webhooks_resume(subscription: str) -> None:
    """Resume a paused subscription; what waited is delivered in order."""
    session = db.session()
    sub = session.scalar(select(WebhookSubscription)
                         .where(WebhookSubscription.public_id == subscription))
    if sub is None:
        raise click.ClickException(f"no webhook subscription {subscription!r}")
    service.resume(session, sub, clock.now())
    click.echo(f"{sub.public_id} resumed")
