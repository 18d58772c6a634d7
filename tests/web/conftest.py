"""Fixtures for the web tests: a seeded hub on the current backend and signed-in clients."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.web.seed import PASSWORD, Seeded, seed

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def seeded(app: Flask, tmp_path: Path) -> Seeded:
    return seed(app, tmp_path)


def csrf_of(client: FlaskClient, path: str = "/dashboard/login") -> str:
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/dashboard/login", data={
        "csrf_token": csrf_of(client), "username": username, "password": password})


@pytest.fixture
def eu_client(app: Flask, seeded: Seeded) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, "eu-staff").status_code == 302
    return client


@pytest.fixture
def admin_client(app: Flask, seeded: Seeded) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, "hub-admin").status_code == 302
    return client
