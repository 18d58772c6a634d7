"""The size rules' exceptions in ruff.toml may only shrink.

ruff enforces C901 and the PLR size rules everywhere but in the files ruff.toml lists.
This test fails when a listed exception is no longer needed (delete it) and when the list
gains an entry that today's list does not hold (split the function instead).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")
SIZE_RULES = ("C901", "PLR0911", "PLR0912", "PLR0913", "PLR0915", "PLR0917")

#: The exceptions as they were when the rules were switched on. Remove entries as the
#: code improves; never add one.
BASELINE = {
    "connectors/aeo_node/__init__.py": {"PLR0911"},
    "connectors/catalogue.py": {"C901", "PLR0912"},
    "connectors/tabular.py": {"PLR0917"},
    "connectors/xlsx_snapshot/__init__.py": {"PLR0911"},
    "hub/api/openapi.py": {"PLR0913", "PLR0917"},
    "hub/api/service.py": {"PLR0913"},
    "hub/arrangements/reference.py": {"C901", "PLR0912", "PLR0915"},
    "hub/audit/chain.py": {"PLR0911"},
    "hub/notify/delivery.py": {"PLR0917"},
    "hub/notify/views.py": {"PLR0917"},
    "hub/recognition/entities.py": {"C901", "PLR0912", "PLR0915"},
    "hub/recognition/matching.py": {"PLR0917"},
    "hub/recognition/scoring.py": {"PLR0912"},
    "hub/recognition/service.py": {"PLR0913", "PLR0917"},
    "hub/settings.py": {"C901", "PLR0911", "PLR0912"},
    "hub/sim/churn.py": {"C901", "PLR0911", "PLR0912"},
    "hub/sim/generator.py": {"C901", "PLR0912", "PLR0913", "PLR0915", "PLR0917"},
    "hub/sim/numbers.py": {"C901", "PLR0911", "PLR0912"},
    "hub/sim/server.py": {"PLR0913"},
    "hub/sync/connections.py": {"PLR0913"},
    "hub/sync/engine.py": {"PLR0917"},
    "hub/sync/validate.py": {"C901", "PLR0912", "PLR0915"},
    "tests/api/test_api_schemathesis.py": {"C901"},
    "tests/benchmarks/bench_match_quality.py": {"C901"},
}


def _settings() -> dict[str, Any]:
    return tomllib.loads((ROOT / "ruff.toml").read_text())


def listed() -> dict[str, set[str]]:
    """The size-rule exceptions ruff.toml grants to single files (globs are kept apart)."""
    out: dict[str, set[str]] = {}
    for pattern, codes in _settings()["lint"]["per-file-ignores"].items():
        size = {c for c in codes if c in SIZE_RULES}
        if size and "*" not in pattern:
            out[pattern] = size
    return out


def violations(paths: list[str]) -> dict[str, set[str]]:
    """What the size rules find in `paths` with no exception at all (the thresholds of
    ruff.toml, nothing else of it)."""
    lint = _settings()["lint"]
    options = [f"lint.mccabe.max-complexity={lint['mccabe']['max-complexity']}"]
    options += [f"lint.pylint.{key}={value}" for key, value in lint["pylint"].items()]
    command = [str(RUFF), "check", "--isolated", "--select", ",".join(SIZE_RULES),
               "--output-format", "json", "--exit-zero"]
    for option in options:
        command += ["--config", option]
    done = subprocess.run([*command, *paths], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    found: dict[str, set[str]] = {}
    for item in json.loads(done.stdout):
        path = Path(item["filename"]).resolve()
        name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
        found.setdefault(name, set()).add(item["code"])
    return found


def test_no_exception_is_added() -> None:
    grown = {path: codes - BASELINE.get(path, set()) for path, codes in listed().items()}
    assert not {p: c for p, c in grown.items() if c}, (
        "new size-rule exceptions in ruff.toml: split the function instead")


def test_every_listed_exception_is_still_needed() -> None:
    exceptions = listed()
    found = violations(sorted(exceptions))
    stale = {path: codes - found.get(path, set()) for path, codes in exceptions.items()}
    assert not {p: c for p, c in stale.items() if c}, (
        "these exceptions are no longer needed: delete them from ruff.toml and BASELINE")


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    """The isolated run does find what the rules forbid (else the test above proves
    nothing)."""
    branches = "\n".join(f"    if x == {n}:\n        return {n}" for n in range(20))
    sample = tmp_path / "sample.py"
    sample.write_text(f"def f(x):\n{branches}\n    return -1\n")
    found = violations([str(sample)])
    assert {"C901", "PLR0911", "PLR0912"} <= found[str(sample.resolve())]
