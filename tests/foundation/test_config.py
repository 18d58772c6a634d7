"""Configuration layering: defaults, profile, AEOHUB_* variables, explicit settings."""

from __future__ import annotations

import gc
import os
import runpy
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from config import default as default_config
from hub import create_app, gcpause
from hub.db import get_db
from hub.settings import ConfigurationError, check_config, load_config
from hub.sync.scheduler import HubScheduler

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_use_sqlite_in_the_instance_folder(tmp_path):
    settings = load_config(None, environ={}, instance_path=tmp_path)
    assert settings["ENV"] == "default"
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'aeohub.sqlite3'}"
    assert settings["SECRET_KEY"] == default_config.DEFAULT_SECRET_KEY


def test_profile_overrides_defaults_and_environment_overrides_profile(tmp_path):
    settings = load_config(
        "testing",
        environ={"AEOHUB_MAX_CONTENT_LENGTH": "2048", "AEOHUB_SECRET_KEY": "from-env"},
        instance_path=tmp_path,
    )
    assert settings["TESTING"] is True
    assert settings["MAX_CONTENT_LENGTH"] == 2048  # parsed as its declared type, an int
    assert settings["SECRET_KEY"] == "from-env"


def test_explicit_mapping_wins_and_can_name_the_profile(tmp_path):
    settings = load_config(
        {"ENV": "testing", "SECRET_KEY": "explicit"},
        environ={"AEOHUB_SECRET_KEY": "from-env", "AEOHUB_DATABASE_URL": "sqlite:///x.db"},
        instance_path=tmp_path,
    )
    assert settings["SECRET_KEY"] == "explicit"
    assert settings["DATABASE_URL"] == "sqlite:///x.db"


def test_env_selects_profile(tmp_path):
    settings = load_config(None, environ={"AEOHUB_ENV": "testing"}, instance_path=tmp_path)
    assert settings["ENV"] == "testing"


def test_unknown_profile_is_refused():
    with pytest.raises(ConfigurationError, match="unknown configuration profile 'staging'"):
        load_config("staging", environ={})


def _production_env(**changes: str) -> dict[str, str]:
    """A usable production environment (fresh keys), with `changes` applied."""
    env = {"AEOHUB_SECRET_KEY": "s" * 40, "AEOHUB_ENCRYPTION_KEY": Fernet.generate_key().decode(),
           "AEOHUB_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1/x",
           "AEOHUB_ISSUER": "https://hub.example.org",
           "AEOHUB_AUDIT_SIGNING_KEY": "A" * 43}
    env.update({f"AEOHUB_{k}": v for k, v in changes.items()})
    return {k: v for k, v in env.items() if v != "<unset>"}


def test_production_refuses_the_default_secret_key():
    env = _production_env(SECRET_KEY=default_config.DEFAULT_SECRET_KEY)
    with pytest.raises(ConfigurationError, match="default secret key"):
        load_config("production", environ=env)
    with pytest.raises(ConfigurationError, match="default secret key"):
        create_app({"ENV": "production", "DATABASE_URL": env["AEOHUB_DATABASE_URL"],
                    "ENCRYPTION_KEY": env["AEOHUB_ENCRYPTION_KEY"]})


def test_production_requires_a_database_url_and_an_encryption_key():
    with pytest.raises(ConfigurationError, match="AEOHUB_DATABASE_URL"):
        load_config("production", environ=_production_env(DATABASE_URL="<unset>"))
    with pytest.raises(ConfigurationError, match="AEOHUB_ENCRYPTION_KEY"):
        load_config("production", environ=_production_env(ENCRYPTION_KEY="<unset>"))


def test_production_starts_with_proper_settings(tmp_path):
    settings = load_config("production", environ=_production_env(
        DATABASE_URL=f"sqlite:///{tmp_path}/p.db"))
    assert settings["LOG_FORMAT"] == "json"


def test_every_problem_is_reported_at_once():
    env = _production_env(SECRET_KEY="x", ENCRYPTION_KEY="notafernetkey",
                          AUDIT_SIGNING_KEY="<unset>", ISSUER="http://hub.example.org",
                          DATABASE_URL="mysql://h/db", WEBHOOK_HOSTS_ALLOWED="ok.example,a b",
                          TOKEN_LIFETIME_SECONDS="15 minutes", TRUSTED_PROXIES="-1")
    with pytest.raises(ConfigurationError) as raised:
        load_config("production", environ=env)
    problems = raised.value.problems
    for name in ("SECRET_KEY", "ENCRYPTION_KEY", "AUDIT_SIGNING_KEY", "ISSUER", "DATABASE_URL",
                 "WEBHOOK_HOSTS_ALLOWED", "TOKEN_LIFETIME_SECONDS", "TRUSTED_PROXIES"):
        assert sum(p.startswith(f"AEOHUB_{name}:") for p in problems) == 1, (name, problems)
    assert len(problems) == 8
    assert "https" in next(p for p in problems if "ISSUER" in p)


def test_settings_are_parsed_by_their_declared_type(tmp_path):
    settings = load_config("testing", instance_path=tmp_path, environ={
        "AEOHUB_SECRET_KEY": "12345678901234567890123456789012345",
        "AEOHUB_DATABASE_ECHO": "no", "AEOHUB_USAGE_FLUSH_SECONDS": "2",
        "AEOHUB_NODE_HOSTS_ALLOWED": "nodes.example, 10.0.0.0/8",
        "AEOHUB_ISSUER": "", "AEOHUB_WEBHOOK_HOSTS_ALLOWED": '["hooks.example"]'})
    assert settings["SECRET_KEY"] == "12345678901234567890123456789012345"  # not an int
    assert settings["DATABASE_ECHO"] is False
    assert settings["USAGE_FLUSH_SECONDS"] == 2.0
    assert isinstance(settings["USAGE_FLUSH_SECONDS"], float)
    assert settings["NODE_HOSTS_ALLOWED"] == ["nodes.example", "10.0.0.0/8"]
    assert settings["ISSUER"] is None
    assert settings["WEBHOOK_HOSTS_ALLOWED"] == ["hooks.example"]
    with pytest.raises(ConfigurationError, match="AEOHUB_DATABASE_ECHO: expected true or false"):
        load_config("testing", instance_path=tmp_path, environ={"AEOHUB_DATABASE_ECHO": "2"})


def test_an_unknown_variable_is_a_warning_naming_the_nearest_setting(tmp_path):
    checked = check_config("testing", instance_path=tmp_path, environ={
        "AEOHUB_SECRET_KY": "x" * 40, "AEOHUB_TEST_DATABASE_URL": "ignored",
        "AEOHUB_ZZZ_QQQ": "1"})
    assert checked.warnings == [
        "AEOHUB_SECRET_KY is not a setting and is ignored; did you mean AEOHUB_SECRET_KEY?",
        "AEOHUB_ZZZ_QQQ is not a setting and is ignored"]
    assert checked.settings["SECRET_KEY"] != "x" * 40


def _aeohub(args: list[str], env: dict[str, str], tmp_path: Path
            ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AEOHUB_")}
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, env={**clean, **env, "HOME": str(tmp_path)},
                          timeout=60, check=False)


def test_the_command_line_reports_problems_in_one_message_without_traceback(tmp_path):
    bad = {"AEOHUB_ENV": "production", **_production_env(SECRET_KEY="x",
                                                         ENCRYPTION_KEY="notafernetkey")}
    for args in (["config", "check"], ["serve"], ["clients", "list"]):
        result = _aeohub(args, bad, tmp_path)
        assert result.returncode == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert "AEOHUB_SECRET_KEY" in result.stderr and "AEOHUB_ENCRYPTION_KEY" in result.stderr
        assert len(result.stderr.splitlines()) <= 4
    helped = _aeohub(["--help"], bad, tmp_path)
    assert helped.returncode == 0
    assert "Traceback" not in helped.stderr
    assert "config" in helped.stdout and "keys" in helped.stdout


def test_generated_keys_make_a_production_configuration_that_checks(tmp_path):
    generated = _aeohub(["keys", "generate"], {"AEOHUB_ENV": "production"}, tmp_path)
    assert generated.returncode == 0, generated.stderr
    keys = dict(line.split("=", 1) for line in generated.stdout.splitlines())
    assert set(keys) == {"AEOHUB_SECRET_KEY", "AEOHUB_ENCRYPTION_KEY",
                         "AEOHUB_AUDIT_SIGNING_KEY", "AEOHUB_METRICS_TOKEN"}
    again = _aeohub(["keys", "generate"], {}, tmp_path).stdout
    assert not set(keys.values()) & {line.split("=", 1)[1] for line in again.splitlines()}
    env = {**keys, "AEOHUB_ENV": "production", "AEOHUB_ISSUER": "https://hub.example.org",
           "AEOHUB_DATABASE_URL": f"sqlite:///{tmp_path}/p.db", "AEOHUB_SECRT_KEY": "typo"}
    checked = _aeohub(["config", "check"], env, tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "configuration OK (profile production)" in checked.stdout
    assert "did you mean AEOHUB_SECRET_KEY?" in checked.stderr


def test_gunicorn_refuses_an_unusable_configuration_before_starting(tmp_path):
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AEOHUB_")}
    result = subprocess.run(
        [gunicorn, "-c", str(ROOT / "config" / "gunicorn.conf.py"), "-b", "127.0.0.1:0",
         "hub:create_app()"], cwd=ROOT, text=True, capture_output=True, timeout=60,
        env={**clean, "AEOHUB_ENV": "production", **_production_env(SECRET_KEY="x")},
        check=False)
    assert result.returncode == 1
    assert "AEOHUB_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_gunicorn_config_freezes_what_a_worker_loaded():
    settings = runpy.run_path(str(Path(__file__).parents[2] / "config" / "gunicorn.conf.py"))
    assert settings["worker_class"] == "sync"
    try:
        settings["post_worker_init"](type("Worker", (), {"wsgi": None})())
        assert gc.get_freeze_count() > 0  # the objects alive now are out of the collector's way
    finally:
        gc.unfreeze()


def test_the_gunicorn_config_keeps_a_sync_workers_reader(app):
    settings = runpy.run_path(str(Path(__file__).parents[2] / "config" / "gunicorn.conf.py"))
    threaded = ThreadWorker.__new__(ThreadWorker)
    threaded.wsgi = app
    settings["keep_reader"](threaded)
    assert get_db(app).keep_reader is False  # threads share the process: nothing kept
    sync = SyncWorker.__new__(SyncWorker)
    sync.wsgi = app
    settings["keep_reader"](sync)
    assert get_db(app).keep_reader is True


def test_each_item_is_made_and_worked_on_paused_and_every_loop_end_resumes():
    made = []

    def items():
        for n in range(3):
            made.append(gc.isenabled())
            yield n

    worked = [gc.isenabled() for _ in gcpause.each(items())]
    assert made == worked == [False] * 3 and gc.isenabled()
    for n in gcpause.each(items()):
        if n == 1:
            break
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        for _ in gcpause.each(items()):
            raise RuntimeError
    assert gc.isenabled()


def test_the_collector_pause_is_scoped_and_leaves_a_callers_setting_alone():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gcpause.paused():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()
    with gcpause.paused(when=False):
        assert gc.isenabled()
    gc.disable()
    try:
        with gcpause.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # paused by the caller: still paused afterwards
    finally:
        gc.enable()


@pytest.mark.parametrize("workers", ["0", "65", "-1"])
def test_the_scheduler_workers_are_checked(tmp_path, workers):
    with pytest.raises(ConfigurationError, match="AEOHUB_SCHEDULER_WORKERS: must"):
        load_config("testing", instance_path=tmp_path,
                    environ={"AEOHUB_SCHEDULER_WORKERS": workers})


def test_the_scheduler_runs_as_many_syncs_at_once_as_it_has_workers(tmp_path):
    """Three tasks that each wait for the other two finish only in a pool of three."""
    app = create_app({"ENV": "testing", "DATABASE_URL": f"sqlite:///{tmp_path}/hub.db",
                      "SCHEDULER_WORKERS": 3})
    scheduler = HubScheduler(app)
    meeting = threading.Barrier(3, timeout=10)
    try:
        futures = [scheduler.pool.submit(meeting.wait) for _ in range(3)]
        assert sorted(f.result(timeout=15) for f in futures) == [0, 1, 2]
    finally:
        scheduler.pool.shutdown(wait=True)
        get_db(app).dispose()
