"""The `aeohub` command: version, db upgrade/current, serve, `flask --app hub`, and a
start that imports only what the command uses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import requests
from flask import Flask
from flask.testing import FlaskCliRunner

from hub import __version__, create_app, db
from hub.arrangements.service import load_reference_data
from hub.cli import COMMANDS, main, package_commands
from hub.db import Database
from tests.conftest import _drop_pg_database, new_database_url
from tests.recognition.test_recognition_cli import _seed
from tests.sync.feeds import eu_row, write_feed

BIN = Path(sys.executable).parent
HUB = Path(__file__).resolve().parents[2] / "hub"


def _run(args, env_extra=None, **kw):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        args, check=False, capture_output=True, text=True, env=env, timeout=60, **kw
    )


def test_version():
    result = _run([BIN / "aeohub", "--version"])
    assert result.returncode == 0
    assert result.stdout.strip() == f"aeohub {__version__}"


def test_db_upgrade_and_current_on_a_fresh_database(backend, tmp_path):
    url = new_database_url(backend, tmp_path)
    try:
        env = {"AEOHUB_DATABASE_URL": url}
        before = _run([BIN / "aeohub", "db", "current"], env)
        assert before.returncode == 0 and "empty database" in before.stdout
        up = _run([BIN / "aeohub", "db", "upgrade"], env)
        assert up.returncode == 0, up.stderr
        heads = _run([BIN / "aeohub", "db", "heads"], env).stdout.split()
        assert _run([BIN / "aeohub", "db", "current"], env).stdout.split() == heads
    finally:
        if backend == "postgresql":
            _drop_pg_database(url)


def test_flask_app_group_reaches_the_same_commands(tmp_path):
    result = _run([BIN / "flask", "--app", "hub", "db", "--help"],
                  {"AEOHUB_DATABASE_URL": f"sqlite:///{tmp_path}/f.db"})
    assert result.returncode == 0, result.stderr
    assert "upgrade" in result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_healthz(tmp_path):
    port = _free_port()
    env = {**os.environ, "AEOHUB_DATABASE_URL": f"sqlite:///{tmp_path}/s.db"}
    proc = subprocess.Popen([BIN / "aeohub", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


# --- Conventions every command follows: help, --json, one table of exit statuses ---------

def _leaf_commands(group: click.Group, path: tuple[str, ...] = ()
                   ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, (*path, name))
        else:
            yield (*path, name), command


def _app_commands(app: Flask) -> dict[str, click.Command]:
    ctx = click.Context(app.cli)
    return {name: command for name in app.cli.list_commands(ctx)
            if (command := app.cli.get_command(ctx, name)) is not None}


def test_every_command_and_option_has_help(app):
    missing = []
    groups = _app_commands(app)
    groups.update(main.commands)
    for path, command in _leaf_commands(click.Group(commands=groups)):
        if not (command.help or (command.callback and command.callback.__doc__)):
            missing.append(" ".join(path))
        missing += [f"{' '.join(path)} {param.opts[0]}" for param in command.params
                    if isinstance(param, click.Option) and not param.help]
    assert missing == []


def test_every_list_and_show_command_takes_json(app):
    missing = [" ".join(path) for path, command in _leaf_commands(
        click.Group(commands=_app_commands(app)))
        if path[-1] in {"list", "show", "runs", "diff", "current", "heads", "schemes"}
        or path in {("audit", "verify"), ("identifiers", "check")}
        if "--json" not in {opt for p in command.params for opt in getattr(p, "opts", [])}]
    assert missing == []


def _seeded_operator(database: Database) -> None:
    _seed(database)


def test_verify_exit_status_says_the_decision(runner, committed_db):
    _seeded_operator(committed_db)
    base = ["verify", "--programme", "US-CTPAT", "--scheme", "EORI", "--json"]
    recognised = runner.invoke(args=[*base, "--value", "DE123456789012345",
                                     "--date", "2024-06-01"])
    assert recognised.exit_code == 0, recognised.output
    assert json.loads(recognised.output)["decision"] == "recognised"
    # Before CBP recognised EU AEOs (July 2012) the same trader is not recognised.
    early = runner.invoke(args=[*base, "--value", "DE123456789012345", "--date", "2011-01-03"])
    assert early.exit_code == 3, early.output
    assert json.loads(early.output)["decision"] == "not_recognised"
    unknown = runner.invoke(args=[*base, "--value", "DE999999999999999"])
    assert unknown.exit_code == 4, unknown.output
    assert json.loads(unknown.output)["decision"] == "unknown_trader"
    text = runner.invoke(args=["verify", "--programme", "US-CTPAT", "--scheme", "EORI",
                               "--value", "DE999999999999999"])
    assert text.exit_code == 4 and text.output.startswith("unknown_trader")
    usage = runner.invoke(args=[*base, "--value", "X", "--flow", "sideways"])
    assert usage.exit_code == 2 and "'import', 'export'" in usage.output
    error = runner.invoke(args=["verify", "--programme", "NOPE", "--scheme", "EORI",
                                "--value", "DE1"])
    assert error.exit_code == 1


def test_audit_verify_json(runner, committed_db):
    result = runner.invoke(args=["audit", "verify", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True and data["broken_seq"] is None


def test_identifiers_check_json_and_exit_status(runner):
    valid = runner.invoke(args=["identifiers", "check", "CN_USCC", "91110000600037341L",
                                "--json"])
    assert valid.exit_code == 0, valid.output
    assert json.loads(valid.output) == {"scheme": "CN_USCC", "valid": True,
                                        "value": "91110000600037341L", "warnings": []}
    invalid = runner.invoke(args=["identifiers", "check", "CN_USCC", "91110000600037341X",
                                  "--json"])
    assert invalid.exit_code == 1
    assert json.loads(invalid.output)["valid"] is False
    unknown = runner.invoke(args=["identifiers", "check", "NOPE", "1", "--json"])
    assert unknown.exit_code == 2 and "known schemes" in unknown.output
    schemes = runner.invoke(args=["identifiers", "schemes", "--json"])
    assert "CN_USCC" in {s["scheme"] for s in json.loads(schemes.output)}


def test_users_list_json(runner, committed_db):
    created = runner.invoke(args=["users", "create", "ops", "--hub-admin", "--password-stdin"],
                            input="a long enough password\n")
    assert created.exit_code == 0, created.output
    listed = runner.invoke(args=["users", "list", "--json"])
    assert listed.exit_code == 0
    assert json.loads(listed.output) == [{"username": "ops", "hub_admin": True,
                                          "administration": None, "disabled": False}]


def test_db_current_and_heads_json(runner, committed_db):
    heads = json.loads(runner.invoke(args=["db", "heads", "--json"]).output)
    current = json.loads(runner.invoke(args=["db", "current", "--json"]).output)
    assert current == {"revision": heads[0], "heads": heads, "up_to_date": True}


def test_quarantine_commands_json_and_invalid_values(runner, committed_db):
    listed = runner.invoke(args=["quarantine", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output) == []
    bogus = runner.invoke(args=["quarantine", "list", "--status", "bogus"])
    assert bogus.exit_code == 2 and "'open'" in bogus.output
    missing = runner.invoke(args=["quarantine", "show", "999", "--json"])
    assert missing.exit_code == 1
    bad_fix = runner.invoke(args=["quarantine", "replay", "1", "--set", "no-equals"])
    assert bad_fix.exit_code == 2 and "field=value" in bad_fix.output


def test_sync_run_reports_records_read_on_one_line_before_the_result(app, tmp_path):
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    feed = write_feed(tmp_path / "eu.csv", [eu_row(n) for n in range(1, 4)])
    runner = app.test_cli_runner()
    added = runner.invoke(args=["connections", "add", "--name", "eu-csv", "--type",
                                "csv_snapshot", "--programme", "EU-AEO", "--config",
                                json.dumps({"path": str(feed), "programme": "EU-AEO"}),
                                "--schedule", "interval:1h"])
    assert added.exit_code == 0, added.output
    shown = runner.invoke(args=["connections", "show", "eu-csv", "--json"])
    assert json.loads(shown.output)["name"] == "eu-csv"
    result = runner.invoke(args=["sync", "run", "eu-csv"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == ["syncing eu-csv: 3 records read"]
    assert result.stdout.startswith("run ")


def test_env_file_is_loaded(tmp_path):
    env_file = tmp_path / "hub.env"
    env_file.write_text(f"AEOHUB_DATABASE_URL=sqlite:///{tmp_path}/e.db\n")
    env = {k: v for k, v in os.environ.items() if k != "AEOHUB_DATABASE_URL"}
    result = subprocess.run([BIN / "aeohub", "-e", str(env_file), "db", "current", "--json"],
                            check=False, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["revision"] is None
    assert (tmp_path / "e.db").exists()


def test_sim_serve_help_lists_the_fault_names():
    result = _run([BIN / "aeohub", "sim", "serve", "--help"])
    for name in ("latency_ms", "error_rate", "truncate", "broken_protocol", "no_trailer"):
        assert name in result.stdout


def test_arrangements_list_refuses_an_unknown_programme(runner, committed_db):
    with runner.app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    unknown = runner.invoke(args=["arrangements", "list", "--programme", "NOPE"])
    assert unknown.exit_code == 2 and "EU-AEO" in unknown.output
    known = runner.invoke(args=["arrangements", "list", "--programme", "EU-AEO", "--json"])
    assert known.exit_code == 0 and "EU-US" in {a["code"] for a in json.loads(known.output)}


@pytest.fixture
def core_runner(committed_db: Database, tmp_path: Path) -> Iterator[FlaskCliRunner]:
    """A CLI runner on the app `aeohub` runs its commands in: the core, no HTTP surface."""
    application = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                              "IMPORT_DIR": str(tmp_path)}, http=False)
    assert "api" not in application.blueprints
    yield application.test_cli_runner()
    application.extensions["aeohub.db"].dispose()


@pytest.mark.parametrize("args", [
    ["programmes", "list"], ["arrangements", "list"], ["connections", "list"],
    ["connectors", "list"], ["clients", "list"], ["webhooks", "list"], ["users", "list"],
    ["judgements", "list"], ["sync", "runs"], ["quarantine", "list"],
    ["identifiers", "schemes"], ["db", "heads"], ["db", "current"], ["audit", "verify"],
])
def test_list_commands_print_one_json_document(core_runner, args):
    with core_runner.app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    result = core_runner.invoke(args=[*args, "--json"])
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout), list | dict)


def test_an_unknown_connector_is_a_usage_error_listing_the_connectors(runner, committed_db):
    check = runner.invoke(args=["connectors", "check", "ftp", "--config", "{}"])
    assert check.exit_code == 2 and "csv_snapshot" in check.output
    add = runner.invoke(args=["connections", "add", "--name", "x", "--type", "ftp",
                              "--programme", "EU-AEO", "--config", "{}",
                              "--schedule", "interval:1h"])
    assert add.exit_code == 2 and "aeo_node" in add.output


# --- A start that imports only what the command uses ----------------------------------------

def test_the_table_of_commands_names_every_package_command():
    modules = {listed.module for listed in COMMANDS.values()}
    found = {f"hub.{'.'.join(path.relative_to(HUB).with_suffix('').parts)}"
             for path in [*HUB.rglob("cli.py"), *HUB.rglob("*_cli.py")] if path != HUB / "cli.py"}
    assert found <= modules
    registered = {name: module for module in modules for name in package_commands(module)}
    assert registered == {name: listed.module for name, listed in COMMANDS.items()}


def test_help_summaries_are_the_commands_own():
    differ = [(name, limit) for name, listed in COMMANDS.items()
              for limit in (30, 45, 72, 1000)
              if click.Command(name, help=listed.summary).get_short_help_str(limit)
              != package_commands(listed.module)[name].get_short_help_str(limit)]
    assert differ == []


#: Runs `aeohub` with the given arguments, then prints the hub modules it imported.
_PROBE = """
import json, sys
from hub.cli import main
try:
    main(sys.argv[1:], prog_name="aeohub")
except SystemExit as exc:
    code = exc.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"hub", "authlib"})),
      file=sys.stderr)
sys.exit(code)
"""


def _imports(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str],
                                                             set[str]]:
    result = _run([sys.executable, "-c", _PROBE, *args], env)
    return result, set(json.loads(result.stderr.splitlines()[-1]))


def _serving(modules: set[str]) -> list[str]:
    """The modules among `modules` that only serving requests needs."""
    return sorted(m for m in modules
                  if m.rsplit(".", 1)[-1].endswith("routes") or m.startswith("authlib"))


def test_help_lists_every_command_without_importing_them(tmp_path):
    result, modules = _imports(["--help"], {"AEOHUB_DATABASE_URL": f"sqlite:///{tmp_path}/h.db"})
    assert result.returncode == 0, result.stderr
    shown = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines()
              if line.startswith("  ") and not line.startswith("   ")}
    assert set(COMMANDS) <= shown
    assert modules & {listed.module for listed in COMMANDS.values()} == set()
    assert _serving(modules) == []


def test_a_command_imports_its_own_package_and_no_routes(tmp_path):
    env = {"AEOHUB_DATABASE_URL": f"sqlite:///{tmp_path}/r.db"}
    upgraded, modules = _imports(["db", "upgrade"], env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "hub.migrate" in modules and "hub.sync.cli" not in modules
    assert _serving(modules) == []
    runs, modules = _imports(["sync", "runs", "--json"], env)
    assert runs.returncode == 0, runs.stderr
    assert json.loads(runs.stdout) == []
    assert "hub.sync.cli" in modules
    assert {"hub.migrate", "hub.sync.scheduler"} & modules == set()
    assert _serving(modules) == []
    # The command closed its connections: SQLite folded its write-ahead log into the file.
    assert not (tmp_path / "r.db-wal").exists()
