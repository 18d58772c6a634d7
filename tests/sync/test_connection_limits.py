"""A connection's limits are checked by the service, whoever calls it: guard shares from
0 to 1, counts that are whole and in range, a positive staleness, and schedule intervals
the scheduler can compute (at most `MAX_INTERVAL`)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from hub import db
from hub.errors import InvalidInput
from hub.sync import connections as conns
from hub.sync.models import Connection
from hub.sync.scheduler import latest_fire, trigger_for
from tests.sync.feeds import write_feed

LIMITS = ("max_removal_share", "max_change_share", "max_quarantine_share",
          "max_quarantined", "staleness_seconds")


def stored(app: Flask, connection_id: int) -> dict[str, Any]:
    with app.app_context():
        row = db.session().get(Connection, connection_id)
        assert row is not None
        return {"schedule": row.schedule, "snapshot_schedule": row.snapshot_schedule,
                **{name: getattr(row, name) for name in LIMITS}}


def count_connections(app: Flask) -> int:
    with app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(Connection)) or 0)


@pytest.mark.parametrize(("option", "value", "field"), [
    ("--max-removal-share", "-1", "max_removal_share"),
    ("--max-removal-share", "1.5", "max_removal_share"),
    ("--max-change-share", "-0.01", "max_change_share"),
    ("--max-quarantine-share", "2", "max_quarantine_share"),
    ("--max-quarantine-share", "nan", "max_quarantine_share"),
    ("--max-quarantined", "-3", "max_quarantined"),
    ("--max-quarantined", "99999999999", "max_quarantined"),
    ("--staleness", "0", "staleness_seconds"),
    ("--staleness", "-5", "staleness_seconds"),
])
def test_the_command_line_refuses_a_limit_out_of_range(hub_app: Flask, connection_id: int,
                                                       option: str, value: str,
                                                       field: str) -> None:
    before = stored(hub_app, connection_id)
    result = hub_app.test_cli_runner().invoke(
        args=["connections", "edit", "eu-csv", option, value])
    assert result.exit_code == 1, result.output
    assert f"Error: {field} {value}" in result.output
    assert f"  {field}: expected a " in result.output
    assert "Traceback" not in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)
    assert stored(hub_app, connection_id) == before


def test_every_wrong_limit_is_named_and_nothing_changes(hub_app: Flask,
                                                        connection_id: int) -> None:
    before = stored(hub_app, connection_id)
    with hub_app.app_context(), pytest.raises(InvalidInput) as caught:
        session = db.session()
        row = conns.get_connection(session, connection_id)
        # a valid change given with the wrong ones is not made either
        conns.edit_connection(session, conns.SyncSettings.from_config(hub_app.config), row,
                              schedule="interval:2h", max_removal_share=-1,
                              max_change_share=1.01, max_quarantine_share=0.2,
                              max_quarantined=-3, staleness_seconds=0)
    assert set(caught.value.fields) == {"max_removal_share", "max_change_share",
                                        "max_quarantined", "staleness_seconds"}
    assert "max_removal_share -1 is not a share from 0 to 1" in caught.value.detail
    assert stored(hub_app, connection_id) == before


def test_the_bounds_themselves_are_accepted(hub_app: Flask, connection_id: int) -> None:
    result = hub_app.test_cli_runner().invoke(args=[
        "connections", "edit", "eu-csv", "--max-removal-share", "0", "--max-change-share",
        "1", "--max-quarantine-share", "0.25", "--max-quarantined", "0", "--staleness", "1"])
    assert result.exit_code == 0, result.output
    limits = stored(hub_app, connection_id)
    assert [limits[name] for name in LIMITS] == [0.0, 1.0, 0.25, 0, 1]


def test_adding_checks_the_limits_and_keeps_those_given(hub_app: Flask, feed: Path) -> None:
    write_feed(feed, [])
    settings = conns.SyncSettings.from_config(hub_app.config)
    common: dict[str, Any] = {
        "name": "eu-csv", "connector_type": "csv_snapshot", "programmes": ["EU-AEO"],
        "config": {"path": str(feed), "programme": "EU-AEO"}, "schedule": "interval:1h"}
    with hub_app.app_context():
        session = db.session()
        for wrong in ({"max_removal_share": -1.0}, {"max_quarantined": -1},
                      {"staleness_seconds": 0}, {"staleness_seconds": -60}):
            with pytest.raises(InvalidInput) as caught:
                conns.add_connection(session, settings, **common, **wrong)
            assert set(caught.value.fields) == set(wrong)
        assert count_connections(hub_app) == 0
        row = conns.add_connection(session, settings, **common, max_removal_share=0.5,
                                   max_quarantined=0, staleness_seconds=600)
        session.commit()
        connection_id = row.id
    limits = stored(hub_app, connection_id)
    assert (limits["max_removal_share"], limits["max_quarantined"],
            limits["staleness_seconds"]) == (0.5, 0, 600)
    assert (limits["max_change_share"], limits["max_quarantine_share"]) == (0.10, 0.10)


@pytest.mark.parametrize("schedule", [
    "interval:99999999999d", "interval:367d", "interval:8785h",
    pytest.param("interval:" + "9" * 5000 + "s", id="interval:5000-digits"),
])
def test_an_interval_the_scheduler_cannot_use_is_refused(hub_app: Flask, feed: Path,
                                                          schedule: str) -> None:
    write_feed(feed, [])
    result = hub_app.test_cli_runner().invoke(args=[
        "connections", "add", "--name", "eu-csv", "--type", "csv_snapshot", "--programme",
        "EU-AEO", "--schedule", schedule, "--config",
        json.dumps({"path": str(feed), "programme": "EU-AEO"})])
    assert result.exit_code == 1, result.output
    assert "an interval may be at most 366 days (interval:366d)" in result.output
    assert "schedule: interval longer than 366 days" in result.output
    assert "Traceback" not in result.output
    assert count_connections(hub_app) == 0


def test_the_snapshot_schedule_has_the_same_bound(hub_app: Flask, connection_id: int) -> None:
    before = stored(hub_app, connection_id)
    result = hub_app.test_cli_runner().invoke(args=[
        "connections", "edit", "eu-csv", "--snapshot-schedule", "interval:99999999999d"])
    assert result.exit_code == 1, result.output
    assert "snapshot schedule 'interval:99999999999d': an interval may be at most 366 days" \
        in result.output
    assert "snapshot_schedule: interval longer than 366 days" in result.output
    assert stored(hub_app, connection_id) == before


def test_the_longest_interval_is_scheduled() -> None:
    assert conns.parse_schedule("interval:366d") == ("interval", 366 * 86400)
    assert conns.parse_schedule("interval:0001h") == ("interval", 3600)
    for wrong in ("interval:0d", "interval:²d", "interval:-1d"):
        with pytest.raises(InvalidInput, match="a positive number with a unit"):
            conns.parse_schedule(wrong)
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    trigger = trigger_for("interval:366d")
    slot = latest_fire(trigger, now)
    assert slot is not None and slot <= now
    following = trigger.get_next_fire_time(slot, now)
    assert following is not None and now < following <= now + conns.MAX_INTERVAL


def test_a_scope_names_assigned_country_codes(hub_app: Flask, connection_id: int) -> None:
    runner = hub_app.test_cli_runner()
    refused = runner.invoke(args=["connections", "edit", "eu-csv", "--scope", "DE",
                                  "--scope", "ZZ"])
    assert refused.exit_code == 1, refused.output
    assert "ZZ are not ISO 3166 alpha-2 country codes" in refused.output
    with hub_app.app_context():
        row = db.session().get(Connection, connection_id)
        assert row is not None and row.scope_countries == []
    accepted = runner.invoke(args=["connections", "edit", "eu-csv", "--scope", "de",
                                   "--scope", "XK"])
    assert accepted.exit_code == 0, accepted.output
    with hub_app.app_context():
        row = db.session().get(Connection, connection_id)
        assert row is not None and row.scope_countries == ["DE", "XK"]


def test_show_gives_the_guards_and_edit_needs_a_setting(hub_app: Flask,
                                                        connection_id: int) -> None:
    runner = hub_app.test_cli_runner()
    shown = runner.invoke(args=["connections", "show", "eu-csv"])
    assert shown.exit_code == 0, shown.output
    shown_values = dict(line.split(":", 1) for line in shown.output.splitlines())
    assert shown_values["max_removal_share"].strip() == "0.1"
    assert shown_values["max_quarantined"].strip() == "20"
    assert shown_values["staleness_seconds"].strip().isdigit()
    before = stored(hub_app, connection_id)
    nothing = runner.invoke(args=["connections", "edit", "eu-csv"])
    assert nothing.exit_code == 2 and "nothing to change" in nothing.output
    assert "updated" not in nothing.output and stored(hub_app, connection_id) == before


def test_a_cron_schedule_restricting_both_days_runs_on_either_as_crontab() -> None:
    """`0 2 1 * 1`: crontab runs on the 1st of every month and on every Monday."""
    trigger = trigger_for("cron:0 2 1 * 1")
    fires: list[dt.datetime] = []
    current = None
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)  # a Monday
    while len(fires) < 6:
        current = trigger.get_next_fire_time(current, now)
        assert current is not None
        fires.append(current)
        now = current + dt.timedelta(seconds=1)
    assert [f.strftime("%a %d %H:%M") for f in fires] == [
        "Mon 07 02:00", "Mon 14 02:00", "Mon 21 02:00", "Mon 28 02:00",
        "Fri 01 02:00", "Mon 04 02:00"]
    assert latest_fire(trigger, dt.datetime(2027, 1, 2, tzinfo=dt.UTC)) == dt.datetime(
        2027, 1, 1, 2, tzinfo=dt.UTC)
    only_mondays = trigger_for("cron:0 2 * * 1")  # one day field: as before
    assert only_mondays.get_next_fire_time(None, dt.datetime(
        2026, 12, 31, tzinfo=dt.UTC)) == dt.datetime(2027, 1, 4, 2, tzinfo=dt.UTC)


def test_the_backoff_doubles_caps_and_ends():
    """30 s after one failure, doubling, at most 6 h however long the node has been down
    (a hundred failures in a row once overflowed the doubling); none once it has passed,
    nor for a disabled connection."""
    failed_at = dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.UTC)
    connection = Connection(consecutive_failures=1, last_failure_at=failed_at, enabled=True)
    assert conns.backoff_until(connection, failed_at) == failed_at + dt.timedelta(seconds=30)
    assert conns.backoff_until(connection, failed_at + dt.timedelta(seconds=30)) is None
    connection.consecutive_failures = 3
    assert conns.backoff_until(connection, failed_at) == failed_at + dt.timedelta(minutes=2)
    connection.consecutive_failures = 100
    assert conns.backoff_until(connection, failed_at) == failed_at + dt.timedelta(hours=6)
    connection.enabled = False  # a disabled connection runs nothing: it does not back off
    assert conns.backoff_until(connection, failed_at) is None
    connection.enabled, connection.consecutive_failures = True, 0
    assert conns.backoff_until(connection, failed_at) is None
