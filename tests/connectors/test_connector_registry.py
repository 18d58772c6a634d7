"""Plugin discovery, building connectors from config, config schemas, and the context rules."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.aeo_node import AeoNodeConnector
from connectors.base import (
    SECRET_MASK,
    AccessDenied,
    CheckResult,
    ConfigError,
    ConnectorContext,
    redact,
)
from connectors.catalogue import available_connectors, build_connector, config_json_schema
from connectors.csv_snapshot import CsvSnapshotConnector

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "thirdparty_connector"


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The third-party fixture distribution, pip-installed into a private directory."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "src"
    shutil.copytree(FIXTURE, source)  # build in a copy: no build/ or egg-info in the repo
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
        check=True, capture_output=True, timeout=240,
    )
    return target


@pytest.fixture
def with_plugin(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(plugin_dir))
    yield
    for name in [m for m in sys.modules if m.startswith("aeohub_acme_connector")]:
        del sys.modules[name]


def test_builtins_are_available() -> None:
    found = available_connectors()
    assert found["aeo_node"] is AeoNodeConnector
    assert found["csv_snapshot"] is CsvSnapshotConnector
    assert "xml_snapshot" in found


def test_third_party_plugin_is_discovered_and_broken_ones_skipped(
    with_plugin: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors")
    found = available_connectors()
    assert "acme_list" in found
    assert "acme_broken" not in found and "acme_not_a_connector" not in found
    assert {"aeo_node", "csv_snapshot", "xml_snapshot"} <= set(found)  # builtins unharmed
    messages = [r.getMessage() for r in caplog.records if r.name == "connectors"]
    assert any("'acme_broken'" in m and "failed to import" in m
               and "aeohub_acme_missing_dependency" in m for m in messages)
    assert any("'acme_not_a_connector'" in m and "not a Connector subclass" in m
               for m in messages)

    conn = build_connector("acme_list", {"programme": "XX-AEO", "trader_ids": ["A1", "B2"],
                                         "api_key": "plugin-secret"})
    [batch] = list(conn.read(None))
    assert [r.trader_id for r in batch.records] == ["A1", "B2"]
    assert batch.complete
    assert "plugin-secret" not in repr(conn)
    schema = config_json_schema(found["acme_list"])
    assert schema["properties"]["api_key"]["secret"] is True
    assert schema["required"] == ["programme", "trader_ids"]


def test_build_connector_validates_config_first() -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_connector("aeo_node", {"base_url": "not a url", "page_size": 0})
    assert excinfo.value.fields["base_url"] == ["Not a valid URL."]
    assert "page_size" in excinfo.value.fields
    assert "base_url" in str(excinfo.value)


def test_config_error_never_echoes_a_secret() -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_connector("aeo_node", {"base_url": "http://x.example", "token": 12345678901})
    assert "token" in excinfo.value.fields
    assert "12345678901" not in str(excinfo.value)
    assert "12345678901" not in repr(excinfo.value.fields)


def test_unknown_config_fields_are_named() -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_connector("csv_snapshot", {"path": "a.csv", "delimeter": ";"})
    assert excinfo.value.fields == {"delimeter": ["Unknown field."]}


def test_unknown_connector() -> None:
    with pytest.raises(ConfigError, match="no connector named 'ftp'") as excinfo:
        build_connector("ftp", {})
    assert "connector" in excinfo.value.fields


def test_build_connector_passes_the_context(tmp_path: Path) -> None:
    ctx = ConnectorContext(import_dir=tmp_path)
    conn = build_connector("csv_snapshot", {"path": str(tmp_path / "a.csv")}, ctx)
    assert conn.context is ctx
    assert conn.config["delimiter"] == ","  # defaults filled in


def test_config_json_schema_describes_fields() -> None:
    schema = config_json_schema(AeoNodeConnector)
    props = schema["properties"]
    assert schema["required"] == ["base_url"]
    assert props["base_url"]["format"] == "uri"
    assert props["token"]["secret"] is True
    assert props["page_size"] == {
        "type": "integer", "minimum": 1, "maximum": 5000, "default": 500,
        "description": "Records per request / per batch",
    }
    assert props["mode"]["enum"] == ["incremental", "snapshot"]
    assert props["rate_limit"]["type"] == ["number", "null"]
    csv_props = config_json_schema(CsvSnapshotConnector)["properties"]
    assert csv_props["date_formats"]["default"] == ["%Y-%m-%d"]
    assert csv_props["date_formats"]["items"]["type"] == "string"


def test_redact() -> None:
    config = {"base_url": "http://x", "token": "abc", "programme": None}
    assert redact(config, AeoNodeConnector.config_schema) == {
        "base_url": "http://x", "token": SECRET_MASK, "programme": None,
    }
    assert redact({"token": None}, AeoNodeConnector.config_schema) == {"token": None}


def test_check_result_ok() -> None:
    assert CheckResult(reachable=True).ok
    assert not CheckResult(reachable=True, authenticated=False).ok
    assert not CheckResult(reachable=True, format_ok=False).ok
    assert not CheckResult(reachable=False).ok


# -- ConnectorContext -------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "https://AEO.Customs.Example/aeo/v1/info",
    "http://aeo.customs.example./x",
    "http://127.0.0.1:8080/x",
])
def test_check_url_allows_listed_hosts_case_insensitively(url: str) -> None:
    ctx = ConnectorContext(allowed_hosts=frozenset({"aeo.customs.EXAMPLE", "127.0.0.1"}))
    assert ctx.check_url(url) == url


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://aeo.customs.example/x", "scheme 'ftp'"),
    ("file:///etc/passwd", "scheme 'file'"),
    ("http://evil.example/x", "'evil.example' is not among"),
    ("http://aeo.customs.example.evil.example/x", "is not among"),
    ("http:///nohost", "names no host"),
])
def test_check_url_refuses(url: str, reason: str) -> None:
    ctx = ConnectorContext(allowed_hosts=frozenset({"aeo.customs.example"}))
    with pytest.raises(AccessDenied, match=reason):
        ctx.check_url(url)


def test_check_url_host_and_port_entries() -> None:
    ctx = ConnectorContext(allowed_hosts=frozenset({"files.example:8443"}))
    assert ctx.check_url("https://files.example:8443/a")
    with pytest.raises(AccessDenied):
        ctx.check_url("https://files.example/a")


def test_check_url_without_restriction_still_needs_http() -> None:
    ctx = ConnectorContext()
    assert ctx.check_url("http://anything.example/")
    with pytest.raises(AccessDenied):
        ctx.check_url("gopher://anything.example/")


def test_check_path(tmp_path: Path) -> None:
    root = tmp_path / "imports"
    (root / "sub").mkdir(parents=True)
    ctx = ConnectorContext(import_dir=root)
    assert ctx.check_path(root / "sub" / "a.csv") == (root / "sub" / "a.csv").resolve()
    with pytest.raises(AccessDenied):
        ctx.check_path(root / ".." / "a.csv")
    with pytest.raises(AccessDenied):
        ctx.check_path("/etc/passwd")
    (root / "escape").symlink_to(tmp_path)
    with pytest.raises(AccessDenied):
        ctx.check_path(root / "escape" / "a.csv")
    # a sibling directory whose name merely starts with the import dir's name
    (tmp_path / "imports-evil").mkdir()
    with pytest.raises(AccessDenied):
        ctx.check_path(tmp_path / "imports-evil" / "a.csv")
