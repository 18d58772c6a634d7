"""A client's name and rate limit are checked by the service, whoever calls it (the
command line has no schema in front of it): a name of 1 to 200 characters, a rate limit
from 1 to 10^9 (a client of 0 would be refused on every request), and a rotated secret's
overlap of at most 366 days, as the admin API's schemas allow."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from hub.auth import service
from hub.auth.models import OAuthClient
from hub.db import get_db
from hub.errors import InvalidInput
from tests.auth.hubkit import make_client

HUGE = "99999999999999999999"


def _count(app: Flask) -> int:
    with get_db(app).session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(OAuthClient)) or 0)


def _create(app: Flask, **fields: Any) -> service.CreatedClient:
    arguments: dict[str, Any] = {"name": "risk engine", "programme": "EU-AEO",
                                 "scopes": "verify", **fields}
    with get_db(app).session_scope(write=True) as session:
        return service.create_client(session, **arguments)


@pytest.mark.parametrize(("fields", "wrong"), [
    ({"rate_limit": 0}, {"rate_limit"}),
    ({"rate_limit": -5}, {"rate_limit"}),
    ({"rate_limit": 10**9 + 1}, {"rate_limit"}),
    ({"rate_limit": int(HUGE)}, {"rate_limit"}),
    ({"rate_limit": True}, {"rate_limit"}),
    ({"name": ""}, {"name"}),
    ({"name": "x" * 201}, {"name"}),
    ({"name": "", "rate_limit": 0}, {"name", "rate_limit"}),
])
def test_the_service_refuses_a_name_or_rate_limit_out_of_range(
        ref_app: Flask, fields: dict[str, Any], wrong: set[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        _create(ref_app, **fields)
    assert set(caught.value.fields) == wrong
    for name in wrong:
        assert caught.value.detail.count(f"{name} ") == 1
    assert _count(ref_app) == 0


def test_the_bounds_themselves_are_accepted(ref_app: Flask) -> None:
    for fields in ({"rate_limit": 1, "name": "x"}, {"rate_limit": 10**9, "name": "x" * 200},
                   {"rate_limit": None}):
        _create(ref_app, **fields)
    with get_db(ref_app).session_scope() as session:
        assert sorted(session.scalars(select(OAuthClient.rate_limit)),
                      key=lambda v: v or 0) == [None, 1, 10**9]


@pytest.mark.parametrize(("args", "message"), [
    (["--rate-limit", "0"], "rate_limit 0 is not a whole number from 1 to 1000000000"),
    (["--rate-limit", "-5"], "rate_limit -5 is not a whole number from 1 to 1000000000"),
    (["--rate-limit", HUGE], f"rate_limit {HUGE} is not a whole number"),
    (["--name", ""], "name '' is not 1 to 200 characters"),
])
def test_the_command_line_says_which_field_is_wrong(ref_app: Flask, args: list[str],
                                                    message: str) -> None:
    result = ref_app.test_cli_runner().invoke(args=[
        "clients", "create", "--name", "risk engine", "--programme", "EU-AEO",
        "--scopes", "verify", *args])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert f"Error: {message}" in result.output
    assert "Traceback" not in result.output
    assert _count(ref_app) == 0


def test_a_rotated_secret_overlaps_at_most_366_days(ref_app: Flask) -> None:
    creds = make_client(get_db(ref_app), "EU-AEO", "verify")
    runner = ref_app.test_cli_runner()
    for overlap in (str(366 * 86400 + 1), HUGE):
        result = runner.invoke(args=["clients", "rotate-secret", creds.client_id,
                                     "--overlap", overlap])
        assert result.exit_code == 1, result.output
        assert f"Error: overlap_seconds {overlap} is more than 31622400" in result.output
        assert "Traceback" not in result.output
    with get_db(ref_app).session_scope() as session:
        assert session.scalar(select(OAuthClient.secret_rotated_at)) is None
    accepted = runner.invoke(args=["clients", "rotate-secret", creds.client_id,
                                   "--overlap", str(366 * 86400)])
    assert accepted.exit_code == 0, accepted.output
