"""Public pages through Flask's test client, on SQLite and PostgreSQL: the company status
look-up (published, unpublished, unknown), the MID helper, rate limits, error pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub import create_app
from tests.web.seed import (
    LINKED_MID,
    NO_MID_EORI,
    PUBLISHED_EORI,
    UNKNOWN_EORI,
    UNLINKED_MID,
    UNPUBLISHED_AUTH,
    UNPUBLISHED_EORI,
    Seeded,
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
    # recognised by CBP under EU-US, with the direction, date and benefits
    assert "US-CTPAT (US) recognises EU-AEO AEOs" in page
    assert "EU-US" in page and "2012-07-01" in page and "priority treatment" in page
    # the exact code to declare in the US is the linked MID
    assert f'<code class="declare">{LINKED_MID}</code>' in page


def test_reasons_and_missing_code_warning(client: FlaskClient, seeded: Seeded) -> None:
    status, body = lookup(client, NO_MID_EORI)
    page = body.decode()
    assert status == 200 and "Muster Logistik 3 GmbH" in page
    assert "Not recognised" in page and "Why not" in page
    assert "the operator holds AEOC" in page  # recognition's reason, verbatim
    assert "No MID is linked to this EORI" in page  # the crosswalk's warning for the US


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


def test_lookups_are_rate_limited_per_client(committed_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
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
