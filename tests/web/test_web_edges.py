"""Edges an exploratory tester found in the web pages: absolute URLs taken from the Host
header, ids beyond a database row's reach, and a MID typed with spaces."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from hub.arrangements.service import load_reference_data
from hub.db import MAX_ID
from hub.errors import InvalidInput
from hub.identifiers import IdentifierError, normalise, normalise_reference
from hub.web import users
from tests.web.conftest import csrf_of, sign_in
from tests.web.seed import LINKED_MID, PUBLISHED_EORI, UNLINKED_MID, Seeded

ISSUER = "https://aeohub.example.org"
EVIL = "evil.example"
#: Just beyond a row id, beyond a BIGINT, and beyond anything SQLite stores.
HUGE_IDS = [MAX_ID + 1, 2**63, 10**20 - 1]


def test_the_printed_live_link_comes_from_the_issuer_not_the_host_header(
        app: Flask, client: FlaskClient, seeded: Seeded) -> None:
    app.config["ISSUER"] = ISSUER + "/"
    response = client.get("/status", query_string={"q": PUBLISHED_EORI},
                          headers={"Host": EVIL})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"Check it live at {ISSUER}/status?q={PUBLISHED_EORI}<" in page
    assert EVIL not in page


def test_a_redirect_to_the_slashed_address_is_relative(client: FlaskClient) -> None:
    response = client.get("/dashboard", query_string={"next": "x"}, headers={"Host": EVIL})
    assert response.status_code == 308
    assert response.headers["Location"] == "/dashboard/?next=x"


@pytest.mark.parametrize("huge", HUGE_IDS)
@pytest.mark.parametrize("path", ["/dashboard/connections/{}",
                                  "/dashboard/runs/{}/difference"])
def test_ids_beyond_a_row_are_no_page(admin_client: FlaskClient, path: str,
                                      huge: int) -> None:
    response = admin_client.get(path.format(huge))
    assert response.status_code == 404
    assert b"There is no page at this address." in response.data


@pytest.mark.parametrize("path", ["/dashboard/runs/{}/confirm", "/dashboard/runs/{}/discard",
                                  "/dashboard/quarantine/{}/replay",
                                  "/dashboard/quarantine/{}/dismiss"])
def test_actions_on_ids_beyond_a_row_are_no_page(admin_client: FlaskClient,
                                                 path: str) -> None:
    token = csrf_of(admin_client, "/dashboard/")
    for huge in HUGE_IDS:
        response = admin_client.post(path.format(huge), data={"csrf_token": token})
        assert response.status_code == 404, (path, huge)


def test_ids_within_reach_still_lead_to_their_page(admin_client: FlaskClient,
                                                   seeded: Seeded) -> None:
    assert admin_client.get(
        f"/dashboard/connections/{seeded.eu_connection}").status_code == 200
    assert admin_client.get(f"/dashboard/runs/{seeded.held_run}/difference").status_code == 200
    assert admin_client.get(f"/dashboard/connections/{MAX_ID}").status_code == 404


def test_an_id_in_other_digits_is_no_address(client: FlaskClient, admin_client: FlaskClient,
                                             seeded: Seeded) -> None:
    """Full-width or Arabic-Indic digits would read as the same number: one row, many
    addresses. Only ASCII digits name a row, in the pages and the API alike."""
    def written(number: int, zero: int) -> str:
        return "".join(chr(zero + int(d)) for d in str(number))

    for zero in (0xFF10, 0x0660):  # FULLWIDTH DIGIT ZERO, ARABIC-INDIC DIGIT ZERO
        digits = written(seeded.eu_connection, zero)
        assert admin_client.get(f"/dashboard/connections/{digits}").status_code == 404
        # the API's route matches (then asks for a token) only for ASCII digits
        assert client.get(f"/api/v1/operators/{digits}").status_code == 404
    assert client.get("/api/v1/operators/1").status_code == 401


@pytest.mark.parametrize("query", [
    f"{LINKED_MID[:8]} {LINKED_MID[8:]}", " ".join(LINKED_MID.lower()),
    f"{LINKED_MID[:4]}\u3000{LINKED_MID[4:]}"])
def test_a_linked_mid_typed_with_spaces_is_found(client: FlaskClient, seeded: Seeded,
                                                 query: str) -> None:
    response = client.get("/status", query_string={"q": query})
    assert response.status_code == 200
    assert "Muster Logistik 1 GmbH" in response.get_data(as_text=True)
    unlinked = client.get("/status", query_string={
        "q": f"{UNLINKED_MID[:8]} {UNLINKED_MID[8:]}"})
    neutral = client.get("/status", query_string={"q": "nothing at all"})
    assert unlinked.data == neutral.data


def test_a_reference_drops_whitespace_for_every_scheme_while_stored_forms_stay_strict(
        ) -> None:
    assert normalise_reference("MID", "usdhl exp1304 erl") == "USDHLEXP1304ERL"
    assert normalise_reference("EU_AEO", "DE AEOF 00025/08") == "DEAEOF00025/08"
    assert normalise_reference("EORI", " ie 2025292w ") == "IE2025292W"
    with pytest.raises(IdentifierError):
        normalise("MID", "US DHLEXP1304ERL")  # a feed's MID with a space is refused
    with pytest.raises(IdentifierError):
        normalise_reference("MID", "US-DHL")


NUL = "a\x00b"


@pytest.mark.parametrize("where", ["status", "mid", "difference", "dismiss", "sign-in"])
def test_a_nul_character_in_a_page_request_is_a_400(app: Flask, seeded: Seeded,
                                                    where: str) -> None:
    """No field of the hub can hold NUL (PostgreSQL's text cannot): the public status
    search, a difference's paging key and a dismissal note each answered 500 there."""
    client = app.test_client()
    token = csrf_of(client)
    if where not in ("status", "mid", "sign-in"):
        assert sign_in(client, "eu-staff").status_code == 302
        token = csrf_of(client, "/dashboard/")
    answer = {
        "status": lambda: client.get(f"/status?q={NUL}"),
        "mid": lambda: client.get(f"/mid?name={NUL}&country=DE"),
        "difference": lambda: client.get(
            f"/dashboard/runs/{seeded.held_run}/difference?after={NUL}"),
        "dismiss": lambda: client.post(f"/dashboard/quarantine/{seeded.quarantined}/dismiss",
                                       data={"csrf_token": token, "note": NUL}),
        "sign-in": lambda: client.post("/dashboard/login", data={
            "csrf_token": token, "username": "eu\x00staff", "password": "x"}),
    }[where]()
    assert answer.status_code == 400
    assert b"holds a NUL character" in answer.data


def test_a_user_name_no_user_can_have_is_not_looked_up(session: Session) -> None:
    load_reference_data(session)
    users.create_user(session, "eu-four", "a long enough password", administration="EU")
    for name in ("eu\x00four", "eu-four\x07", "eu four", ""):
        assert users.authenticate(session, name, "a long enough password") is None
        with pytest.raises(InvalidInput) as refused:
            users.create_user(session, name, "a long enough password", administration="EU")
        assert refused.value.fields == {
            "username": ["1 to 120 printable characters without spaces"]}
    assert users.authenticate(session, "EU-FOUR", "a long enough password") is not None
