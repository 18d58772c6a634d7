"""Configuration layering: defaults, profile, AEOHUB_* variables, explicit settings."""

from __future__ import annotations

import pytest

from config import default as default_config
from hub import create_app
from hub.settings import ConfigurationError, load_config


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
    assert settings["MAX_CONTENT_LENGTH"] == 2048  # parsed as JSON, so an int
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


def test_production_refuses_the_default_secret_key():
    env = {"AEOHUB_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1/x",
           "AEOHUB_ENCRYPTION_KEY": "k"}
    with pytest.raises(ConfigurationError, match="default secret key"):
        load_config("production", environ=env)
    with pytest.raises(ConfigurationError, match="default secret key"):
        create_app({"ENV": "production", "DATABASE_URL": env["AEOHUB_DATABASE_URL"],
                    "ENCRYPTION_KEY": "k"})


def test_production_requires_a_database_url_and_an_encryption_key():
    with pytest.raises(ConfigurationError, match="AEOHUB_DATABASE_URL"):
        load_config("production", environ={"AEOHUB_SECRET_KEY": "s" * 40})
    with pytest.raises(ConfigurationError, match="AEOHUB_ENCRYPTION_KEY"):
        load_config("production", environ={"AEOHUB_SECRET_KEY": "s" * 40,
                                           "AEOHUB_DATABASE_URL": "postgresql://h/db"})


def test_production_starts_with_proper_settings(tmp_path):
    settings = load_config(
        "production",
        environ={"AEOHUB_SECRET_KEY": "s" * 40, "AEOHUB_ENCRYPTION_KEY": "k",
                 "AEOHUB_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
                 "AEOHUB_ISSUER": "https://hub.example"},
    )
    assert settings["LOG_FORMAT"] == "json"


def test_the_gunicorn_config_freezes_what_a_worker_loaded():
    import gc
    import runpy
    from pathlib import Path

    settings = runpy.run_path(str(Path(__file__).parents[2] / "config" / "gunicorn.conf.py"))
    assert settings["worker_class"] == "sync"
    try:
        settings["post_worker_init"](type("Worker", (), {"wsgi": None})())
        assert gc.get_freeze_count() > 0  # the objects alive now are out of the collector's way
    finally:
        gc.unfreeze()


def test_the_gunicorn_config_keeps_a_sync_workers_reader(app):
    import runpy
    from pathlib import Path

    from gunicorn.workers.gthread import ThreadWorker
    from gunicorn.workers.sync import SyncWorker

    from hub.db import get_db

    settings = runpy.run_path(str(Path(__file__).parents[2] / "config" / "gunicorn.conf.py"))
    threaded = ThreadWorker.__new__(ThreadWorker)
    threaded.wsgi = app
    settings["keep_reader"](threaded)
    assert get_db(app).keep_reader is False  # threads share the process: nothing kept
    sync = SyncWorker.__new__(SyncWorker)
    sync.wsgi = app
    settings["keep_reader"](sync)
    assert get_db(app).keep_reader is True


def test_the_collector_pause_is_scoped_and_leaves_a_callers_setting_alone():
    import gc

    import pytest

    from hub import gcpause

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
