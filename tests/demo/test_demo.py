"""`aeohub demo` as a new user runs it: it comes up, the printed curl lines work as
printed, Ctrl-C stops it cleanly, and a second run starts again without errors."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.waiting import wait_until

BIN = Path(sys.executable).parent
TOPOLOGY = Path(__file__).with_name("small.yaml")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(tmp_path: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "AEOHUB_DATABASE_URL": f"sqlite:///{tmp_path}/demo.sqlite3",
           "AEOHUB_IMPORT_DIR": str(tmp_path)}
    return subprocess.Popen([BIN / "aeohub", "demo", "--port", str(port), "--topology",
                             str(TOPOLOGY), *extra], env=env, cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_ready(proc: subprocess.Popen[str], timeout: float = 120) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("the demo ended early:\n" + "".join(lines))
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            return lines
    raise AssertionError("the demo was not ready in time:\n" + "".join(lines))


def _notified_runs(tmp_path: Path) -> int:
    """Runs a node's notification started and that finished well, in the demo's database."""
    with closing(sqlite3.connect(tmp_path / "demo.sqlite3", timeout=10)) as connection:
        return int(connection.execute(
            "SELECT count(*) FROM sync_run WHERE \"trigger\" = 'notify' "
            "AND status = 'succeeded'").fetchone()[0])


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise
    return out


@pytest.mark.slow
def test_demo_comes_up_and_the_curl_lines_work(tmp_path):
    port = _free_port()
    proc = _start(tmp_path, port)
    try:
        lines = _wait_ready(proc)
        text = "".join(lines)
        assert "from 12 administrations" in text
        commands = [ln.strip() for ln in lines if ln.strip().startswith(("TOKEN=", "curl "))]
        assert len(commands) == 2
        result = subprocess.run(["bash", "-c", "\n".join(commands)], capture_output=True,
                                text=True, timeout=60, check=True)
        answer = json.loads(result.stdout)
        decision = answer.get("decision", answer)
        assert decision["decision"] == "recognised", result.stdout
        assert any(a["code"] == "EU-US" for a in decision["arrangements"])
        # Churn changes a node, which notifies; the scheduler's run of it succeeds.
        assert wait_until(lambda: _notified_runs(tmp_path) > 0, timeout=60)
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "stopped at" in out

    # A second run starts again without errors, from the same database.
    proc = _start(tmp_path, port)
    try:
        lines = _wait_ready(proc)
        assert "reference data unchanged" in "".join(lines)
    finally:
        out = _stop(proc)
    assert proc.returncode == 0 and "Traceback" not in out, out
    assert re.search(r"demo ready in \d+ s", "".join(lines))
