"""docs/connectors.md documents every setting, and its examples are the tested fixtures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from connectors.catalogue import BUILTIN_CONNECTORS, available_connectors, config_json_schema
from tests.connectors.examples import EXAMPLES, example

DOC = Path(__file__).resolve().parents[2] / "docs" / "connectors.md"


def test_every_setting_of_every_builtin_connector_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    connectors = available_connectors()
    for name in BUILTIN_CONNECTORS:
        assert f"## `{name}`" in text, name
        for setting in config_json_schema(connectors[name])["properties"]:
            assert f"`{setting}`" in text, f"{name}.{setting}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_documented_example_is_the_tested_fixture(name: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"<!-- example: {name} -->\n```json\n(.*?)\n```", text, re.S)
    assert found is not None, name
    assert json.loads(found.group(1)) == example(name)
