"""``aeohub identifiers`` commands, run through a throwaway click group."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from hub.identifiers import SCHEMES
from hub.identifiers.cli import register


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    def root() -> None:
        """Throwaway root group standing in for aeohub."""

    register(root)
    return root


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_register_adds_the_identifiers_group(cli: click.Group) -> None:
    assert "identifiers" in cli.commands
    group = cli.commands["identifiers"]
    assert isinstance(group, click.Group)
    assert set(group.commands) == {"check", "schemes", "mid"}


def test_check_valid_prints_normalised_value(cli: click.Group, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["identifiers", "check", "EU_AEO", "DE AEOF 00025/08"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "DEAEOF00025/08\n"


def test_check_scheme_is_case_insensitive(cli: click.Group, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["identifiers", "check", "jp_cn", "5835678256246"])
    assert result.exit_code == 0
    assert result.stdout.strip() == "5835678256246"


def test_check_valid_with_warning(cli: click.Group, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["identifiers", "check", "EORI", "GB12345"])
    assert result.exit_code == 0
    assert result.stdout == "GB12345\n"
    assert "warning: EORI [country_format]" in result.stderr


def test_check_invalid_exits_1_naming_scheme_and_rule(
    cli: click.Group, runner: CliRunner
) -> None:
    result = runner.invoke(cli, ["identifiers", "check", "JP_CN", "2835678256246"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "JP_CN" in result.stderr
    assert "check_digit" in result.stderr


def test_check_unknown_scheme_exits_2_listing_schemes(
    cli: click.Group, runner: CliRunner
) -> None:
    result = runner.invoke(cli, ["identifiers", "check", "NOPE", "123"])
    assert result.exit_code == 2
    assert "unknown scheme 'NOPE'" in result.stderr
    for code in SCHEMES:
        assert code in result.stderr


def test_schemes_lists_codes_and_descriptions(cli: click.Group, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["identifiers", "schemes"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(SCHEMES)
    for line, (code, scheme) in zip(lines, SCHEMES.items(), strict=True):
        assert line.startswith(code + " ")
        assert line.endswith(scheme.description)


def test_mid_prints_mid_alone_on_last_line(cli: click.Group, runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        ["identifiers", "mid", "--name", "DHL Express", "--street",
         "236 Wendell Ford Blvd Ste 1304", "--city", "Erlanger", "--country", "US"],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "USDHLEXP1304ERL"
    assert any(line.startswith("street") and "1304" in line for line in lines[:-1])


def test_mid_json_explains_parts(cli: click.Group, runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        ["identifiers", "mid", "--name", "Acme", "--street", "12 Bay St", "--city",
         "Toronto", "--country", "CA", "--province", "ON", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mid"] == "XOACM12TOR"
    assert set(data["parts"]) == {"country", "name", "street", "city"}
    assert data["parts"]["country"]["value"] == "XO"
    assert "Ontario" in data["parts"]["country"]["explanation"]
    assert all(part["explanation"] for part in data["parts"].values())


def test_mid_canada_without_province_exits_1(cli: click.Group, runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        ["identifiers", "mid", "--name", "Acme", "--street", "12 Bay St", "--city",
         "Toronto", "--country", "CA"],
    )
    assert result.exit_code == 1
    assert "province_required" in result.stderr
    assert "province" in result.stderr.replace("province_required", "")
    assert result.stdout == ""


def test_mid_requires_name(cli: click.Group, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["identifiers", "mid", "--street", "1", "--city", "X",
                                 "--country", "US"])
    assert result.exit_code == 2
    assert "--name" in result.stderr
