"""The held-run difference page: what a held run would remove, page by page, for the
staff of its administration only."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.web.conftest import sign_in
from tests.web.seed import Seeded


def test_a_held_run_lists_what_it_would_remove(eu_client: FlaskClient, seeded: Seeded
                                               ) -> None:
    connection = eu_client.get(f"/dashboard/connections/{seeded.eu_connection}")
    link = f"/dashboard/runs/{seeded.held_run}/difference?kind=remove"
    assert link.replace("&", "&amp;") in connection.get_data(as_text=True)
    page = eu_client.get(link)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Would remove:" in text and "would remove" in text
    assert text.count("<th scope=\"row\">") >= 1
    odd = eu_client.get(f"/dashboard/runs/{seeded.held_run}/difference?kind=bogus")
    assert odd.status_code == 200  # an unknown kind shows the removals


def test_another_administrations_run_is_not_found(app: Flask, seeded: Seeded) -> None:
    client = app.test_client()
    assert sign_in(client, "uk-staff").status_code == 302
    response = client.get(f"/dashboard/runs/{seeded.held_run}/difference")
    assert response.status_code == 404
