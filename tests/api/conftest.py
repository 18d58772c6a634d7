"""Fixtures of the API tests: the app with reference data loaded."""

from __future__ import annotations

import pytest
from flask import Flask

from hub.auth import policy
from tests.auth.hubkit import load_reference


@pytest.fixture
def ref_app(app: Flask) -> Flask:
    load_reference(app.extensions["aeohub.db"])
    policy.clear_cache()
    return app
