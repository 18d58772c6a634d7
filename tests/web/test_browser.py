"""The web pages in a real browser: Debian's Chromium, headless, driven by Playwright
against a live server on loopback with a seeded SQLite hub.

Every page visited is checked with axe-core (no violation of any impact) and at a
375-pixel-wide viewport (no horizontal scrolling), and a screenshot of it is kept in
`tests/artifacts/`. Chromium and axe-core are installed by `make browser-deps`; without
them the tests are skipped, except under CI (`CI=true`), where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

from hub import create_app
from hub.db import Database
from hub.migrate import upgrade
from tests.serving import serving
from tests.web.seed import (
    LINKED_MID,
    PASSWORD,
    PUBLISHED_AUTH,
    UNKNOWN_EORI,
    UNPUBLISHED_EORI,
    Seeded,
    seed,
)

CHROMIUM = Path(os.environ.get("AEOHUB_TEST_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).parent / "node" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 900}
PHONE_WIDTH = 375


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"Chromium is not installed at {CHROMIUM} (run `make browser-deps`)"
    if not AXE.exists():
        return f"axe-core is not installed at {AXE} (run `make browser-deps`)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def browser_ready() -> None:
    problem = _missing()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run: {problem}; CI never skips them")
    pytest.skip(problem)


@dataclass
class Live:
    url: str
    seeded: Seeded


@pytest.fixture(scope="module")
def live(browser_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A seeded hub on SQLite served by a threaded werkzeug server on 127.0.0.1."""
    directory = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{directory / 'hub.sqlite3'}"
    database = Database(url)
    upgrade(database)
    database.dispose()
    app = create_app({"ENV": "testing", "DATABASE_URL": url, "IMPORT_DIR": str(directory),
                      "WEB_LOOKUP_LIMIT": 10_000})
    seeded = seed(app, directory)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    try:
        with serving(server):
            yield Live(f"http://127.0.0.1:{server.server_port}", seeded)
    finally:
        app.extensions["aeohub.db"].dispose()


@pytest.fixture(scope="module")
def browser(browser_ready: None) -> Iterator[Any]:
    # An optional dependency, imported here: browser_ready made sure it is installed.
    sync_api = pytest.importorskip("playwright.sync_api")
    playwright = sync_api.sync_playwright().start()
    try:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    # bypass_csp lets the test inject axe-core; the pages themselves need no script.
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True, base_url=live.url)
    tab = context.new_page()
    try:
        yield tab
    finally:
        tab.close()
        context.close()


def audit(page: Any, name: str) -> None:
    """axe-core finds no violation at all; no horizontal scroll at 375 px;
    screenshots of both widths kept as artifacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate(AXE.read_text(encoding="utf-8"))
    results = page.evaluate("async () => await axe.run(document, "
                            "{resultTypes: ['violations']})")
    bad = [f"{v['id']} ({v['impact']}): {v['help']} at "
           f"{[n['target'] for n in v['nodes']][:3]}" for v in results["violations"]]
    assert not bad, f"axe-core on {name}:\n" + "\n".join(bad)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE_WIDTH, f"{name} scrolls sideways at 375 px ({width} px wide)"
        page.screenshot(path=str(ARTIFACTS / f"{name}-375.png"), full_page=True)
    finally:
        page.set_viewport_size(DESKTOP)


def look_up(page: Any, query: str) -> None:
    page.goto("/")
    page.get_by_label("Authorisation number, EORI or linked MID").fill(query)
    page.get_by_role("button", name="Look up").click()
    page.wait_for_load_state()


def sign_in(page: Any, username: str) -> None:
    page.goto("/dashboard/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/dashboard/$"))


def test_home_and_published_status(page: Any) -> None:
    page.goto("/")
    assert page.evaluate("document.documentElement.lang") == "en"
    audit(page, "home")
    look_up(page, PUBLISHED_AUTH)
    assert page.get_by_role("heading", level=1).inner_text() == "Muster Logistik 1 GmbH"
    body = page.locator("main").inner_text()
    assert "Recognised since 2012-07-01" in body and LINKED_MID in body
    audit(page, "status-published")
    page.get_by_role("link", name="Skip to main content").focus()
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"


def test_unpublished_and_unknown_get_the_same_answer(page: Any) -> None:
    answers = []
    for query in (UNPUBLISHED_EORI, UNKNOWN_EORI):
        look_up(page, query)
        answers.append(page.content())
    assert answers[0] == answers[1]
    assert "No published authorisation to show" in answers[0]
    audit(page, "status-neutral")
    page.goto("/status?q=")
    audit(page, "status-empty")


def test_mid_helper(page: Any) -> None:
    page.goto("/mid")
    audit(page, "mid-empty")
    page.get_by_label("Manufacturer name").fill("DHL Express")
    page.get_by_label("Street line").fill("236 Wendell Ford Blvd Ste 1304")
    page.get_by_label("City").fill("Erlanger")
    page.get_by_label("Country (ISO code, two letters)").fill("US")
    page.get_by_role("button", name="Build the MID").click()
    page.wait_for_load_state()
    assert page.locator("#mid-value").inner_text() == "USDHLEXP1304ERL"
    assert "Only linked MIDs count" in page.locator("main").inner_text()
    audit(page, "mid-result")
    page.get_by_label("Country (ISO code, two letters)").fill("CA")
    page.get_by_role("button", name="Build the MID").click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").is_visible()
    assert page.locator("#mid-province").get_attribute("aria-invalid") == "true"
    audit(page, "mid-error")


def test_staff_sign_in_and_cannot_reach_another_administration(page: Any,
                                                                live: Live) -> None:
    page.goto("/dashboard/login")
    audit(page, "login")
    page.get_by_label("User name").fill("eu-staff")
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("The user name or password")
    audit(page, "login-error")
    sign_in(page, "eu-staff")
    main = page.locator("main").inner_text()
    assert "eu-csv" in main and "uk-csv" not in main
    assert page.locator("svg.chart").count() == 4
    audit(page, "dashboard-staff")
    page.get_by_role("link", name="eu-csv").first.click()
    assert page.get_by_role("heading", level=1).inner_text() == "Connection eu-csv"
    assert page.locator("svg.chart polyline").count() == 1
    audit(page, "connection")
    response = page.goto(f"/dashboard/connections/{live.seeded.uk_connection}")
    assert response is not None and response.status == 404
    assert "uk-csv" not in page.content()
    audit(page, "not-found")


def test_hub_admin_sees_all(page: Any, live: Live) -> None:
    sign_in(page, "hub-admin")
    main = page.locator("main").inner_text()
    assert "eu-csv" in main and "uk-csv" in main
    audit(page, "dashboard-admin")
    response = page.goto(f"/dashboard/connections/{live.seeded.uk_connection}")
    assert response is not None and response.status == 200
    page.goto("/dashboard/audit")
    assert page.get_by_role("heading", level=1).inner_text() == "Audit chain"
    audit(page, "audit")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/dashboard/login$"))


def test_quarantine_replay(page: Any, live: Live) -> None:
    # Before the held run is confirmed: its snapshot no longer holds the quarantined row,
    # so confirming it resolves the entry.
    sign_in(page, "eu-staff")
    page.goto(f"/dashboard/connections/{live.seeded.eu_connection}")
    record_id = live.seeded.quarantined
    card = page.locator(f"#quarantine-{record_id}")
    card.get_by_label("Corrections").fill("status=suspended\nstatus_effective=2024-06-01")
    card.get_by_role("button", name=f"Replay record {record_id}").click()
    page.wait_for_load_state()
    assert "passed validation and was applied" in page.get_by_role("status").inner_text()
    assert page.locator(f"#quarantine-{record_id}").count() == 0
    audit(page, "quarantine-replayed")


def test_confirm_held_run(page: Any, live: Live) -> None:
    sign_in(page, "eu-staff")
    run_id = live.seeded.held_run
    held = page.locator(f"#held-{run_id}")
    assert "removed" in held.inner_text() or held.is_visible()
    held.get_by_role("button", name=f"Confirm run {run_id}").click()
    page.wait_for_load_state()
    status = page.get_by_role("status")
    assert f"Run {run_id} was applied: it is now succeeded." in status.inner_text()
    assert page.locator(f"#held-{run_id}").count() == 0
    audit(page, "held-run-confirmed")


# --- Layout at a glance: 1280x800 and 375x667 -------------------------------------------

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 375, "height": 667}}

#: Tables whose content is cut off: their box scrolls sideways (a table that needs more
#: room than it has), or they stick out of the page.
CLIPPED_TABLES = """() => [...document.querySelectorAll('table')].filter(t => {
  const box = t.closest('.table-wrap') || t.parentElement;
  return box.scrollWidth > box.clientWidth + 1 ||
         t.getBoundingClientRect().right > document.documentElement.clientWidth + 1;
}).map(t => (t.querySelector('caption') || t).textContent.trim().slice(0, 60))"""


def layout(page: Any, name: str, size: str, *, tables: bool = True) -> None:
    """No horizontal scrolling, no clipped table, axe-core clean; a screenshot."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    viewport = SIZES[size]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{name} scrolls sideways at {viewport['width']} px"
    if tables:
        assert page.evaluate(CLIPPED_TABLES) == [], f"{name}: clipped tables at {size}"
    page.evaluate(AXE.read_text(encoding="utf-8"))
    results = page.evaluate("async () => await axe.run(document, "
                            "{resultTypes: ['violations']})")
    found = [f"{v['id']} ({v['impact']}): {v['help']}" for v in results["violations"]]
    assert found == [], f"axe-core on {name} at {size}:\n" + "\n".join(found)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{viewport['width']}x{viewport['height']}.png"),
                    full_page=True)


@pytest.mark.parametrize("size", list(SIZES))
def test_company_page_answers_first(browser: Any, live: Live, size: str) -> None:
    context = browser.new_context(viewport=SIZES[size], bypass_csp=True, base_url=live.url)
    page = context.new_page()
    try:
        page.goto(f"/status?q={PUBLISHED_AUTH}")
        code = page.locator("code.declare", has_text=LINKED_MID)
        assert code.count() == 1
        top = code.bounding_box()
        assert top is not None
        screens = 1 if size == "desktop" else 2
        assert top["y"] + top["height"] <= SIZES[size]["height"] * screens, (
            f"the US code is at {top['y']:.0f} px, beyond {screens} screen(s)")
        # The first code to declare is on the first screen at every size.
        first = page.locator("code.declare").first.bounding_box()
        assert first is not None and first["y"] < SIZES[size]["height"]
        # The copy button works where the clipboard does (it is shown by the script).
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        copy = page.get_by_role("button", name="Copy the code for United States")
        assert copy.is_visible()
        copy.click()
        assert page.evaluate("navigator.clipboard.readText()") == LINKED_MID
        layout(page, "company", size)
        page.emulate_media(media="print")
        assert page.locator("form.lookup").is_hidden()
        assert "Check it live at" in page.locator("main").inner_text()
        page.emulate_media(media="screen")
    finally:
        context.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_dashboard_fits(browser: Any, live: Live, size: str) -> None:
    context = browser.new_context(viewport=SIZES[size], bypass_csp=True, base_url=live.url)
    page = context.new_page()
    try:
        sign_in(page, "hub-admin")
        # At 375 px wide tables scroll inside their own box (never the page).
        layout(page, "dashboard", size, tables=size == "desktop")
        page.goto(f"/dashboard/connections/{live.seeded.eu_connection}")
        layout(page, "dashboard-connection", size, tables=size == "desktop")
    finally:
        context.close()


def test_privacy_notice(page: Any) -> None:
    page.goto("/privacy")
    assert page.get_by_role("heading", level=1).inner_text() == "Privacy notice"
    audit(page, "privacy")
