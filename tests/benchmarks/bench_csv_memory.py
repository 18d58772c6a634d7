"""Benchmark: the CSV connector reads a large registry file in bounded memory.

Generates a CSV in the node protocol's layout (``AEOHUB_BENCH_SCALE``: ``smoke`` = 20,000
rows, ``full`` = 1,000,000 rows), then, each in a fresh subprocess, reads it

- through `CsvSnapshotConnector` (batches of 2,000 canonical records, dropped once read),
- with a plain ``csv.reader`` loop (the baseline: the least any CSV reader must do),

and prints peak RSS and rows per second side by side. Timings are printed, never asserted;
peak RSS must stay under a generous bound (it would grow with the file if the connector
loaded it whole).

Run: ``pytest tests/benchmarks/bench_csv_memory.py -s`` (``AEOHUB_BENCH_SCALE=full`` for
the million rows).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROWS = {"smoke": 20_000, "full": 1_000_000}
RSS_BOUND_MB = 200
REPO = Path(__file__).resolve().parents[2]

COLUMNS = (
    "programme", "authorisation_number", "trader_id_scheme", "trader_id", "legal_name",
    "street", "city", "postcode", "region", "country", "status", "status_effective",
    "categories", "authorised_on", "valid_from", "valid_until", "issuing_authority",
    "identifiers", "consent_share", "consent_publish", "changed_at",
)

# Peak RSS of this process: VmHWM is reset by exec, unlike ru_maxrss, which a child
# started with fork+exec inherits from the (large) pytest process.
PEAK_RSS = """
def peak_rss_mb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

CONNECTOR_READ = PEAK_RSS + """
import json, sys, time
from connectors.base import ConnectorContext
from connectors.csv_snapshot import CsvSnapshotConnector
path = sys.argv[1]
conn = CsvSnapshotConnector({"path": path, "batch_size": 2000},
                            ConnectorContext(import_dir=None))
start = time.perf_counter()
rows = problems = 0
for batch in conn.read(None):
    rows += len(batch.records)
    problems += sum(1 for r in batch.records if r.problems)
elapsed = time.perf_counter() - start
print(json.dumps({"rows": rows, "problems": problems, "seconds": elapsed,
                  "peak_rss_mb": peak_rss_mb()}))
"""

BASELINE_READ = PEAK_RSS + """
import csv, json, sys, time
start = time.perf_counter()
rows = 0
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    reader = csv.reader(f)
    next(reader)
    for _row in reader:
        rows += 1
elapsed = time.perf_counter() - start
print(json.dumps({"rows": rows, "problems": 0, "seconds": elapsed,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def _write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in range(rows):
            writer.writerow((
                "EU-AEO", f"DEAEOF{i:07d}/19", "EORI", f"DE{100000000 + i}",
                f"Müller Logistik {i} GmbH", f"{i % 999 + 1} Hafenstraße", "Hamburg", "20457",
                "", "DE", "suspended" if i % 50 == 0 else "valid", "2019-03-01",
                "AEOC:valid:2019-03-01|AEOS:valid:2019-03-01", "2019-03-01", "2019-03-01", "",
                "DE Hauptzollamt Hamburg", f"MID:DEMULLOG{i % 9999}HAM:linked",
                "true", "false" if i % 3 else "true", "2024-05-01T10:00:00Z",
            ))


def _run(script: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], cwd=REPO, check=True,
        capture_output=True, text=True, timeout=1800,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.benchmark
def test_bench_csv_memory(bench_scale: str, tmp_path: Path) -> None:
    rows = ROWS[bench_scale]
    path = tmp_path / "registry.csv"
    _write_csv(path, rows)
    size_mb = path.stat().st_size / 2**20

    baseline = _run(BASELINE_READ, path)
    connector = _run(CONNECTOR_READ, path)

    print(f"\nCSV {rows:,} rows, {size_mb:.1f} MB ({bench_scale})")
    print(f"{'reader':<28}{'rows/s':>12}{'seconds':>10}{'peak RSS MB':>14}")
    for name, fig in (("csv.reader (baseline)", baseline), ("CsvSnapshotConnector", connector)):
        print(f"{name:<28}{fig['rows'] / max(fig['seconds'], 1e-9):>12,.0f}"
              f"{fig['seconds']:>10.2f}{fig['peak_rss_mb']:>14.1f}")
    ratio = connector["seconds"] / max(baseline["seconds"], 1e-9)
    extra = connector["peak_rss_mb"] - baseline["peak_rss_mb"]
    print(f"connector / baseline time: {ratio:.1f}x; extra peak RSS: {extra:.1f} MB")

    assert baseline["rows"] == rows
    assert connector["rows"] == rows
    assert connector["problems"] == 0
    assert connector["peak_rss_mb"] < RSS_BOUND_MB
