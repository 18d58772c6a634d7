"""The documented example connections (tests/connectors/fixtures), ready to use.

Each example is a data file and a JSON file holding the connector, the programmes and the
configuration exactly as docs/connectors.md shows them; `install` copies the data file
into an import directory, where the configuration's relative path finds it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"

#: example name -> data file
EXAMPLES = {
    "eu_public_list": "eu_public_list.csv",
    "de_zoll_latin1": "de_zoll_latin1.csv",
    "nl_registry": "nl_registry.xml",
    "workbook": "workbook.xlsx",
    "sql_view": "sql_view.sql",
}


def example(name: str) -> dict[str, Any]:
    """The example's connector, programmes and configuration."""
    data = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def install(name: str, import_dir: Path) -> dict[str, Any]:
    """Copy the example's data file into ``import_dir``; return the example."""
    shutil.copyfile(FIXTURES / EXAMPLES[name], import_dir / EXAMPLES[name])
    return example(name)
