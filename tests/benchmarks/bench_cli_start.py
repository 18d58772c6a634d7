"""How fast the `aeohub` command answers: `--help`, `--version` and `sync runs`.

Each command runs as a real process on a migrated SQLite database, with a warm bytecode
cache (as an installed hub has), beside two baselines measured in the same run: the bare
interpreter, and importing what every database command needs (Flask and SQLAlchemy's
ORM). Prints the median wall-clock time and the median CPU time (user + system) of each;
timings are printed, never asserted.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hub import __version__

BIN = Path(sys.executable).parent


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(args: list[str], env: dict[str, str], runs: int) -> tuple[float, float, str]:
    """Median wall and CPU seconds of `runs` runs of `args`, and the last run's output."""
    walls, cpus, output = [], [], ""
    for _ in range(runs):
        cpu = _cpu_of_children()
        started = time.perf_counter()
        result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60,
                                check=False)
        walls.append(time.perf_counter() - started)
        cpus.append(_cpu_of_children() - cpu)
        assert result.returncode == 0, result.stderr
        output = result.stdout
    return statistics.median(walls), statistics.median(cpus), output


def test_cli_start(tmp_path: Path, bench_scale: str) -> None:
    runs = 10 if bench_scale == "full" else 1
    env = {key: value for key, value in os.environ.items()
           if key != "PYTHONDONTWRITEBYTECODE"}
    env.update(AEOHUB_DATABASE_URL=f"sqlite:///{tmp_path}/hub.sqlite3",
               PYTHONPYCACHEPREFIX=str(tmp_path / "pycache"))
    aeohub = str(BIN / "aeohub")
    upgraded = subprocess.run([aeohub, "db", "upgrade"], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
    assert upgraded.returncode == 0, upgraded.stderr
    measured = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "import flask, sqlalchemy.orm (baseline)": [sys.executable, "-c",
                                                    "import flask, sqlalchemy.orm"],
        "aeohub --version": [aeohub, "--version"],
        "aeohub --help": [aeohub, "--help"],
        "aeohub sync runs": [aeohub, "sync", "runs"],
    }
    for args in measured.values():  # fill the bytecode cache
        _time(args, env, 1)
    figures = {name: _time(args, env, runs) for name, args in measured.items()}
    assert figures["aeohub --version"][2].strip() == f"aeohub {__version__}"
    assert "sync" in figures["aeohub --help"][2].split("Commands:")[1]
    print(f"\naeohub start ({bench_scale}: median of {runs} runs, SQLite)")
    print(f"  {'command':<42}{'wall':>10}{'CPU':>10}")
    for name, (wall, cpu, _output) in figures.items():
        print(f"  {name:<42}{wall:>8.3f} s{cpu:>8.3f} s")
