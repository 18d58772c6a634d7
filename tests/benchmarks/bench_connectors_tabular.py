"""Benchmark: the Excel and SQL connectors beside the CSV connector, in one run.

One registry in the node protocol's layout is written as a CSV file, as an Excel
workbook and as a PostgreSQL table read through a view (``AEOHUB_BENCH_SCALE``: ``smoke``
= 20,000 rows, 5,000 of them in the workbook; ``full`` = 600,000 rows, 100,000 in the
workbook). Each connector then reads it in a fresh subprocess, batches of 2,000 records
dropped once read, and the benchmark prints rows per second and peak RSS side by side,
with the CSV connector's figure on the same rows as the baseline. Timings are printed,
never asserted; every row must be read without a problem, and peak RSS must stay under
a bound that a connector holding the whole source would break (the workbook: 300 MB).

Run: ``AEOHUB_WITH_BENCHMARKS=1 pytest tests/benchmarks/bench_connectors_tabular.py -s``
(``AEOHUB_BENCH_SCALE=full`` for the full size).
"""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import create_engine, text

from tests.benchmarks.bench_csv_memory import COLUMNS, PEAK_RSS, _write_csv
from tests.conftest import _check_postgres, _create_pg_database, _drop_pg_database

ROWS = {"smoke": 20_000, "full": 600_000}
WORKBOOK_ROWS = {"smoke": 5_000, "full": 100_000}
RSS_BOUND_MB = 300
REPO = Path(__file__).resolve().parents[2]

READ = PEAK_RSS + """
import json, sys, time
from connectors.base import ConnectorContext
from connectors.catalogue import build_connector
name, config = sys.argv[1], json.loads(sys.argv[2])
conn = build_connector(name, config, ConnectorContext())
start = time.perf_counter()
rows = problems = 0
first_problem = None
for batch in conn.read(None):
    for record in batch.records:
        rows += 1
        if record.problems:
            problems += 1
            first_problem = first_problem or record.problems[0]
elapsed = time.perf_counter() - start
print(json.dumps({"rows": rows, "problems": problems, "first_problem": first_problem,
                  "seconds": elapsed, "peak_rss_mb": peak_rss_mb()}))
"""


def _read(name: str, config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", READ, name, json.dumps(config)], cwd=REPO, check=True,
        capture_output=True, text=True, timeout=3600,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _rows(path: Path, limit: int) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        return list(itertools.islice(reader, limit))


def _write_workbook(path: Path, source: Path, rows: int) -> None:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Register")
    sheet.append(list(COLUMNS))
    for row in _rows(source, rows):
        sheet.append(row)
    workbook.save(path)


def _load_view(url: str, source: Path) -> None:
    engine = create_engine(url)
    columns = ", ".join(f"{c} TEXT" for c in COLUMNS)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE registry ({columns})"))
        conn.execute(text("CREATE VIEW registry_v AS SELECT * FROM registry"))
        driver = conn.connection.driver_connection
        assert driver is not None
        cursor = driver.cursor()
        with cursor.copy("COPY registry FROM STDIN WITH (FORMAT csv, HEADER true)") as copy, \
                source.open("rb") as f:
            while chunk := f.read(1 << 20):
                copy.write(chunk)
    engine.dispose()


def _line(name: str, fig: dict[str, Any]) -> str:
    return (f"{name:<34}{fig['rows']:>10,}{fig['rows'] / max(fig['seconds'], 1e-9):>12,.0f}"
            f"{fig['seconds']:>10.2f}{fig['peak_rss_mb']:>14.1f}")


@pytest.mark.benchmark
def test_bench_connectors_tabular(bench_scale: str, tmp_path: Path) -> None:
    problem = _check_postgres()
    if problem:
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    rows, workbook_rows = ROWS[bench_scale], WORKBOOK_ROWS[bench_scale]
    csv_path = tmp_path / "registry.csv"
    _write_csv(csv_path, rows)
    small_csv = tmp_path / "registry-small.csv"
    _write_csv(small_csv, workbook_rows)
    workbook = tmp_path / "registry.xlsx"
    _write_workbook(workbook, csv_path, workbook_rows)
    url = _create_pg_database()
    try:
        _load_view(url, csv_path)
        figures = {
            "csv_snapshot": _read("csv_snapshot", {"path": str(csv_path)}),
            "csv_snapshot (workbook's rows)": _read("csv_snapshot", {"path": str(small_csv)}),
            "xlsx_snapshot": _read("xlsx_snapshot", {"path": str(workbook)}),
            "sql_query (PostgreSQL view)": _read("sql_query", {"url": url,
                                                              "view": "registry_v"}),
        }
    finally:
        _drop_pg_database(url)

    print(f"\nconnectors ({bench_scale}); the CSV connector is the baseline")
    print(f"{'connector':<34}{'rows':>10}{'rows/s':>12}{'seconds':>10}{'peak RSS MB':>14}")
    for name, fig in figures.items():
        print(_line(name, fig))
    csv_rate = rows / max(figures["csv_snapshot"]["seconds"], 1e-9)
    for name in ("xlsx_snapshot", "sql_query (PostgreSQL view)"):
        fig = figures[name]
        print(f"{name}: {fig['rows'] / max(fig['seconds'], 1e-9) / csv_rate:.2f}x the CSV "
              "connector's rows/s")

    expected = {"csv_snapshot": rows, "csv_snapshot (workbook's rows)": workbook_rows,
                "xlsx_snapshot": workbook_rows, "sql_query (PostgreSQL view)": rows}
    for name, fig in figures.items():
        assert fig["rows"] == expected[name], name
        assert fig["problems"] == 0, (name, fig["first_problem"])
        assert fig["peak_rss_mb"] < RSS_BOUND_MB, name
