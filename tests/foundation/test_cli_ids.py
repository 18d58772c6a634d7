"""Row ids on the command line: a number no row can have (0, or beyond `MAX_ID`, the
database's integer) is a usage error naming the argument or option (exit status 2), never
a traceback from the driver; where a command takes a name or an id, such a number is
looked up as a name only and not found (exit status 1). Also what the command line and
the admin API pass on about a connection's programmes: a programme given twice is
refused by the service, whoever calls it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from hub import db
from hub.arrangements.service import load_reference_data
from hub.cli import COMMANDS, package_commands
from hub.db import MAX_ID, Database
from hub.ids import RowIdParam
from hub.sync import connections as conns
from hub.sync.models import Connection
from tests.auth.hubkit import bearer, make_client
from tests.sync.feeds import write_feed

#: Beyond SQLite's INTEGER (an OverflowError in the driver) and PostgreSQL's.
HUGE = "99999999999999999999"
#: Within SQLite's INTEGER, beyond PostgreSQL's (a DataError there).
PAST_MAX = str(MAX_ID + 1)


def _usage_error(result: Result, name: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert f"Invalid value for {name}" in result.output
    assert "Traceback" not in result.output


def _not_found(result: Result, detail: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert detail in result.output
    assert "Traceback" not in result.output


#: Every command that takes a row id, with where the id goes (`{id}`) and its name.
ID_COMMANDS = [
    (["crosswalk", "--operator", "{id}", "--declared-in", "US"], "'--operator'"),
    (["entities", "show", "{id}"], "'OPERATOR_ID'"),
    (["judgements", "add", "{id}", "1", "--verdict", "same", "--by", "x", "--reason", "y"],
     "'LEFT'"),
    (["judgements", "add", "1", "{id}", "--verdict", "same", "--by", "x", "--reason", "y"],
     "'RIGHT'"),
    (["judgements", "list", "--operator", "{id}"], "'--operator'"),
    (["sync", "diff", "{id}"], "'RUN_ID'"),
    (["sync", "confirm", "{id}"], "'RUN_ID'"),
    (["sync", "discard", "{id}"], "'RUN_ID'"),
    (["quarantine", "show", "{id}"], "'RECORD_ID'"),
    (["quarantine", "replay", "{id}"], "'RECORD_ID'"),
    (["quarantine", "dismiss", "{id}", "--note", "x"], "'RECORD_ID'"),
]

#: Every command that takes a connection by name or id.
NAME_OR_ID_COMMANDS = [
    ["connections", "show", "{id}"],
    ["connections", "edit", "{id}", "--staleness", "60"],
    ["connections", "disable", "{id}"],
    ["connections", "remove", "--yes", "{id}"],
    ["sync", "run", "{id}"],
    ["sync", "runs", "--connection", "{id}"],
    ["quarantine", "list", "--connection", "{id}"],
]


def _with(args: list[str], value: str) -> list[str]:
    return [value if arg == "{id}" else arg for arg in args]


@pytest.mark.parametrize("value", [HUGE, PAST_MAX, "0"])
@pytest.mark.parametrize(("args", "name"), ID_COMMANDS,
                         ids=[" ".join(args) for args, _name in ID_COMMANDS])
def test_a_number_no_row_can_have_is_a_usage_error(runner: FlaskCliRunner,
                                                   args: list[str], name: str,
                                                   value: str) -> None:
    _usage_error(runner.invoke(args=_with(args, value)), name)


@pytest.mark.parametrize("value", [HUGE, PAST_MAX, "0", "²"])
@pytest.mark.parametrize("args", NAME_OR_ID_COMMANDS,
                         ids=[" ".join(args) for args in NAME_OR_ID_COMMANDS])
def test_a_name_or_id_beyond_the_ids_is_an_unknown_name(runner: FlaskCliRunner,
                                                        args: list[str],
                                                        value: str) -> None:
    _not_found(runner.invoke(args=_with(args, value)), f"no connection {value!r}")


def test_ids_in_range_still_reach_the_service(runner: FlaskCliRunner) -> None:
    _not_found(runner.invoke(args=["sync", "diff", str(MAX_ID)]), f"no sync run {MAX_ID}")
    _not_found(runner.invoke(args=["quarantine", "show", "1"]), "")
    _not_found(runner.invoke(args=["judgements", "list", "--operator", str(MAX_ID)]),
               f"operator {MAX_ID} does not exist")
    # a key is not an id: it goes to the service as given
    _not_found(runner.invoke(args=["judgements", "list", "--operator", "NOPE:1"]),
               "programme NOPE does not exist")


def test_digits_of_another_script_are_no_operator(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["judgements", "list", "--operator", "²"])
    _usage_error(result, "'--operator'")
    assert "not an operator id or PROGRAMME:STABLE_KEY" in result.output


def _leaves(group: click.Group, path: tuple[str, ...] = ()
            ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaves(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_numeric_id_parameter_is_a_row_id() -> None:
    """A new command taking `type=int` for an id would bring the traceback back."""
    modules = {listed.module for listed in COMMANDS.values()}
    groups = {name: command for module in modules
              for name, command in package_commands(module).items()}
    wrong = [f"{' '.join(path)} {param.name}"
             for path, command in _leaves(click.Group(commands=groups))
             for param in command.params
             if param.name and (param.name.endswith("_id") or param.name == "operator")
             and isinstance(param.type, click.types._NumberParamTypeBase)
             and not isinstance(param.type, RowIdParam)]
    assert wrong == []


# --- A connection by name or id ------------------------------------------------------------

@pytest.fixture
def hub_app(app: Flask) -> Flask:
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    return app


def _add(app: Flask, name: str, feed: Path) -> int:
    write_feed(feed, [])
    with app.app_context():
        session = db.session()
        row = conns.add_connection(
            session, conns.SyncSettings.from_config(app.config), name=name,
            connector_type="csv_snapshot", programmes=["EU-AEO"],
            config={"path": str(feed), "programme": "EU-AEO"}, schedule="interval:1h")
        session.commit()
        return row.id


def test_a_connection_is_found_by_id_or_by_a_name_of_digits(hub_app: Flask,
                                                              tmp_path: Path) -> None:
    connection_id = _add(hub_app, HUGE, tmp_path / "eu.csv")
    runner = hub_app.test_cli_runner()
    for ref in (HUGE, str(connection_id), f"00{connection_id}"):
        shown = runner.invoke(args=["connections", "show", ref, "--json"])
        assert shown.exit_code == 0, (ref, shown.output)
        assert json.loads(shown.output)["id"] == connection_id
    _not_found(runner.invoke(args=["connections", "show", PAST_MAX]),
               f"no connection {PAST_MAX!r}")


# --- A connection's programmes, each once ---------------------------------------------------

def _count(app: Flask) -> int:
    with app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(Connection)) or 0)


def test_the_command_line_refuses_a_programme_given_twice(hub_app: Flask,
                                                          tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "eu.csv", [])
    result = hub_app.test_cli_runner().invoke(args=[
        "connections", "add", "--name", "eu", "--type", "csv_snapshot",
        "--programme", "EU-AEO", "--programme", "EU-AEO",
        "--config", json.dumps({"path": str(feed), "programme": "EU-AEO"}),
        "--schedule", "interval:1h"])
    _not_found(result, "programmes: EU-AEO given more than once")
    assert "  programmes: repeated: EU-AEO" in result.output
    assert _count(hub_app) == 0


def test_the_admin_api_refuses_a_programme_given_twice(hub_app: Flask,
                                                       committed_db: Database,
                                                       tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "eu.csv", [])
    headers = bearer(committed_db, make_client(committed_db, None, "admin"))
    answer = hub_app.test_client().post("/api/v1/admin/connections", headers=headers, json={
        "name": "eu", "type": "csv_snapshot", "programmes": ["EU-AEO", "EU-AEO"],
        "schedule": "interval:1h", "config": {"path": str(feed), "programme": "EU-AEO"}})
    assert answer.status_code == 400, answer.get_json()
    assert [e["field"] for e in answer.get_json()["errors"]] == ["programmes"]
    assert _count(hub_app) == 0
