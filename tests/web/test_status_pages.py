"""Public pages through Flask's test client, on SQLite and PostgreSQL: the company status
look-up (published, unpublished, unknown), the MID helper, rate limits, error pages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub import create_app, db
from hub.db import Database
from hub.sync import engine
from hub.sync.connections import SyncSettings
from hub.web.status import company_status, find_published
from tests.web.seed import (
    LINKED_MID,
    NO_MID_EORI,
    PUBLISHED_EORI,
    UNKNOWN_EORI,
    UNLINKED_MID,
    UNPUBLISHED_AUTH,
    UNPUBLISHED_EORI,
    Seeded,
    eu_row,
    eu_rows,
    write_feed,
)


def lookup(client: FlaskClient, query: str) -> tuple[int, bytes]:
    response = client.get("/status", query_string={"q": query})
    assert "Set-Cookie" not in response.headers  # public pages never open a session
    return response.status_code, response.data


def test_home_is_an_accessible_form_without_cookies(client: FlaskClient) -> None:
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="en">' in page
    assert 'href="#main"' in page and 'id="main"' in page
    assert '<label for="q">' in page and 'id="q"' in page
    assert "Set-Cookie" not in response.headers
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    css = client.get("/static/web/style.css")
    assert css.status_code == 200 and b".skip-link" in css.data
    css.close()


@pytest.mark.parametrize("query", [PUBLISHED_EORI, "de 000000000000001", "DE AEOF 00001/19",
                                   "deaeof00001/19", LINKED_MID])
def test_published_operator_found_by_eori_authorisation_or_linked_mid(
        client: FlaskClient, seeded: Seeded, query: str) -> None:
    status, body = lookup(client, query)
    page = body.decode()
    assert status == 200
    assert "Muster Logistik 1 GmbH" in page
    assert "DEAEOF00001/19" in page and "EU-AEO" in page
    # categories with status and since when
    assert "AEOS" in page and "2019-03-01" in page
    # answer first: the United States recognises it since 2012-07-01, through its own
    # AEOS (not the arrangement's list), and the code to declare there is the linked MID
    us = _answer(page, "US")
    assert "Recognised since 2012-07-01" in us
    assert "Through its AEOS, for imports." in us
    assert f'>{LINKED_MID}</code>' in us and "CBP entry: manufacturer/shipper MID" in us
    assert 'data-copy="code-' in us
    # the answers come before the details, and the benefits are stated once
    assert page.index('class="answers"') < page.index("Details of the authorisation")
    assert page.count("priority treatment at customs clearance") == 1
    # the EU's own arrangement without dates (Andorra) is not shown
    assert "Andorra" not in page


def test_reasons_and_missing_code_warning(client: FlaskClient, seeded: Seeded) -> None:
    status, body = lookup(client, NO_MID_EORI)
    page = body.decode()
    assert status == 200 and "Muster Logistik 3 GmbH" in page
    us = _answer(page, "US")
    assert "Not recognised" in us
    assert "the operator holds AEOC" in us  # recognition's reason, verbatim
    assert "grants benefits on import flows" not in us  # the other flow is no obstacle
    # no code is offered where the authorisation is not recognised
    assert 'class="declare"' not in us


def _answer(page: str, administration: str) -> str:
    """The partner line of one administration on a company page."""
    start = page.index('id="answer-')
    start = page.index(f'-{administration}"', start)
    return page[start:page.index("</li>\n", page.index("answer-head", start))]


def test_a_known_future_start_is_shown_from_its_date(app: Flask, seeded: Seeded) -> None:
    with app.app_context():
        session = db.session()
        operator = find_published(session, PUBLISHED_EORI)[0]
        # EU-UK: signed 2020-12-30, the UK recognises EU AEOs from 2021-01-01
        signed = company_status(session, operator, dt.date(2020, 12, 31))
        uk = [(a.state, a.since) for a in signed.answers if a.administration == "UK"]
        assert uk == [("upcoming", dt.date(2021, 1, 1))]
        started = company_status(session, operator, dt.date(2021, 1, 1))
        assert [(a.state, a.since) for a in started.answers if a.administration == "UK"] == [
            ("recognised", dt.date(2021, 1, 1))]
        # before the signature, the United Kingdom is not listed at all; nor is Andorra,
        # whose arrangement has no dates, on any day
        early = company_status(session, operator, dt.date(2020, 12, 29))
        assert "UK" not in {a.administration for a in early.answers}
        assert "AD" not in {a.administration for a in started.answers}
        page = app.test_client().get("/status", query_string={"q": PUBLISHED_EORI}).data
        assert b"Andorra" not in page


def test_footer_favicon_privacy_and_print(committed_db: Database, tmp_path: Path) -> None:
    app = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                      "IMPORT_DIR": str(tmp_path), "HUB_ADMINISTRATOR": "Example Customs IT",
                      "SITE_CONTACT": "hub@example.org",
                      "SITE_PRIVACY_URL": "https://example.org/privacy"})
    try:
        client = app.test_client()
        for path in ("/", "/mid", "/dashboard/login", "/no-such-page"):
            page = client.get(path).get_data(as_text=True)
            assert "Run by Example Customs IT." in page, path
            assert 'href="mailto:hub@example.org"' in page, path
            assert 'href="https://example.org/privacy">Privacy notice' in page, path
            assert 'rel="icon"' in page, path
        icon = client.get("/favicon.ico", follow_redirects=True)
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
        icon.close()
        css = client.get("/static/web/style.css")
        assert b"@media print" in css.data
        css.close()
    finally:
        app.extensions["aeohub.db"].dispose()


def test_default_privacy_notice(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert 'href="/privacy">Privacy notice' in page
    notice = client.get("/privacy")
    assert notice.status_code == 200 and b"keyed digest" in notice.data


def test_one_neutral_answer_for_unknown_and_unpublished(
        client: FlaskClient, seeded: Seeded) -> None:
    answers = {query: lookup(client, query) for query in (
        UNPUBLISHED_EORI, UNPUBLISHED_AUTH, UNKNOWN_EORI, UNLINKED_MID, "XX-not-a-number!",
        "DEAEOF99999/19")}
    first = answers[UNKNOWN_EORI]
    assert first[0] == 200 and b"No published authorisation to show" in first[1]
    for query, answer in answers.items():
        assert answer == first, f"{query} answered differently"
    assert b"Muster Logistik 2" not in first[1] and b"Muster Logistik 4" not in first[1]


def test_empty_query_asks_for_a_number(client: FlaskClient) -> None:
    response = client.get("/status?q=+")
    assert response.status_code == 400
    assert b"Enter a number to look up" in response.data
    assert b'aria-invalid="true"' in response.data


def test_lookups_are_rate_limited_per_client(committed_db: Database, tmp_path: Path) -> None:
    app = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                      "IMPORT_DIR": str(tmp_path), "WEB_LOOKUP_LIMIT": 3,
                      "WEB_LOOKUP_WINDOW_SECONDS": 3600})
    try:
        client = app.test_client()
        for _ in range(3):
            assert lookup(client, UNKNOWN_EORI)[0] == 200
        limited = client.get("/status", query_string={"q": UNKNOWN_EORI})
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) > 0
        assert b"Too many look-ups" in limited.data and b'lang="en"' in limited.data
        # another client address has its own window
        other = client.get("/status", query_string={"q": UNKNOWN_EORI},
                           environ_base={"REMOTE_ADDR": "192.0.2.7"})
        assert other.status_code == 200
        # a second worker (another app on the same database) shares the count
        second = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                             "IMPORT_DIR": str(tmp_path), "WEB_LOOKUP_LIMIT": 3,
                             "WEB_LOOKUP_WINDOW_SECONDS": 3600})
        try:
            again = second.test_client().get("/status", query_string={"q": UNKNOWN_EORI})
            assert again.status_code == 429
        finally:
            second.extensions["aeohub.db"].dispose()
    finally:
        app.extensions["aeohub.db"].dispose()


def test_mid_helper_builds_and_explains(client: FlaskClient) -> None:
    response = client.get("/mid", query_string={
        "name": "DHL Express", "street": "236 Wendell Ford Blvd Ste 1304",
        "city": "Erlanger", "country": "US"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<code class="declare" id="mid-value">USDHLEXP1304ERL</code>' in page
    assert "largest number" in page  # each part explained
    assert "Only linked MIDs count" in page


def test_mid_helper_canada_needs_the_province(client: FlaskClient) -> None:
    without = client.get("/mid", query_string={
        "name": "Maple Works", "street": "10 King St", "city": "Toronto", "country": "CA"})
    assert without.status_code == 400
    page = without.get_data(as_text=True)
    assert 'role="alert"' in page and "province" in page
    # the hint names a code the list offers (XO), not the postal abbreviation
    assert "Ontario (XO)" in page.split('role="alert"')[1].split("</div>")[0]
    assert 'id="mid-province"' in page and 'aria-invalid="true"' in page
    with_province = client.get("/mid", query_string={
        "name": "Maple Works", "street": "10 King St", "city": "Toronto", "country": "CA",
        "province": "ON"})
    assert with_province.status_code == 200
    assert b">XOMAPWOR10TOR</code>" in with_province.data


def test_unknown_page_is_html_and_api_stays_problem_json(app: Flask,
                                                         client: FlaskClient) -> None:
    page = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert b"Page not found" in page.data
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.mimetype == "application/problem+json"


def test_a_suspended_authorisation_reads_without_contradiction(
        app: Flask, client: FlaskClient, seeded: Seeded) -> None:
    rows = eu_rows(20)
    rows[0] = eu_row(1, status="suspended", status_effective="2024-05-02")
    write_feed(seeded.eu_feed, rows)
    run = engine.run_sync(db.get_db(app), SyncSettings.from_config(app.config),
                          seeded.eu_connection)
    assert run is not None and run.status == "succeeded", run and run.held_reason
    status, body = lookup(client, PUBLISHED_EORI)
    page = body.decode()
    assert status == 200
    assert "suspended</span> since 2024-05-02" in page
    assert "partners grant no benefits until the suspension ends" in page
    us = _answer(page, "US")
    assert "Not recognised" in us and "suspended" in us
    # no line says a partner "recognises EU-AEO AEOs" next to "Not recognised"
    assert "recognises EU-AEO AEOs" not in page
    assert 'class="declare"' not in page.split('class="answers"')[1].split("</ul>")[0]


def test_the_eu_is_one_line(client: FlaskClient, seeded: Seeded) -> None:
    status, body = lookup(client, "GB000000000001")
    page = body.decode()
    assert status == 200 and "Thames Freight 1 Ltd" in page
    assert page.count('id="answer-') == page.count('class="answer ')
    eu = _answer(page, "EU")
    assert "European Union" in eu and "Recognised since 2021-01-01" in eu
    assert page.count('-EU"') == 1
    for member in ("Germany", "France", "Ireland"):
        assert member not in page
