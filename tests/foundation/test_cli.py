"""The `aeohub` command: version, db upgrade/current, serve, and `flask --app hub`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from hub import __version__

BIN = Path(sys.executable).parent


def _run(args, env_extra=None, **kw):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        args, check=False, capture_output=True, text=True, env=env, timeout=60, **kw
    )


def test_version():
    result = _run([BIN / "aeohub", "--version"])
    assert result.returncode == 0
    assert result.stdout.strip() == f"aeohub {__version__}"


def test_db_upgrade_and_current_on_a_fresh_database(backend, tmp_path):
    from tests.conftest import _drop_pg_database, new_database_url

    url = new_database_url(backend, tmp_path)
    try:
        env = {"AEOHUB_DATABASE_URL": url}
        before = _run([BIN / "aeohub", "db", "current"], env)
        assert before.returncode == 0 and "empty database" in before.stdout
        up = _run([BIN / "aeohub", "db", "upgrade"], env)
        assert up.returncode == 0, up.stderr
        heads = _run([BIN / "aeohub", "db", "heads"], env).stdout.split()
        assert _run([BIN / "aeohub", "db", "current"], env).stdout.split() == heads
    finally:
        if backend == "postgresql":
            _drop_pg_database(url)


def test_flask_app_group_reaches_the_same_commands(tmp_path):
    result = _run([BIN / "flask", "--app", "hub", "db", "--help"],
                  {"AEOHUB_DATABASE_URL": f"sqlite:///{tmp_path}/f.db"})
    assert result.returncode == 0, result.stderr
    assert "upgrade" in result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_healthz(tmp_path):
    port = _free_port()
    env = {**os.environ, "AEOHUB_DATABASE_URL": f"sqlite:///{tmp_path}/s.db"}
    proc = subprocess.Popen([BIN / "aeohub", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
