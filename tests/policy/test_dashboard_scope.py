"""Dashboard scoping: an administration's staff see the arrangement directions involving
their administration's programmes and the audit entries about their administration only;
hub administrators see all."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from hub import db
from hub.audit import service as audit
from tests.web.conftest import admin_client, eu_client, seeded  # noqa: F401 - fixtures
from tests.web.seed import Seeded


def _audit_entries(app: Flask) -> None:
    with app.app_context():
        session = db.session()
        audit.record(session, "test.note", actor="test", subject="only-about-uk",
                     administrations=["UK"])
        audit.record(session, "test.note", actor="test", subject="only-about-eu",
                     administrations=["EU"])
        audit.record(session, "test.note", actor="test", subject="about-eu-and-us",
                     administrations=["EU", "US"])
        session.commit()


def test_staff_see_only_directions_of_their_programmes(
        eu_client: FlaskClient, admin_client: FlaskClient,  # noqa: F811 - fixtures
        seeded: Seeded) -> None:  # noqa: F811
    mine = eu_client.get("/dashboard/").get_data(as_text=True)
    every = admin_client.get("/dashboard/").get_data(as_text=True)
    # Directions involving EU-AEO, either way.
    for direction in ("US-CTPAT recognises EU-AEO", "EU-AEO recognises CN-AEO",
                      "CN-AEO recognises EU-AEO"):
        assert direction in mine and direction in every, direction
    # Directions between other administrations only.
    for direction in ("US-CTPAT recognises NZ-SES", "CN-AEO recognises KR-AEO",
                      "SG-STP recognises MY-AEO", "US-CTPAT recognises UK-AEO"):
        assert direction not in mine and direction in every, direction


def test_staff_see_only_audit_entries_about_their_administration(
        app: Flask, eu_client: FlaskClient, admin_client: FlaskClient,  # noqa: F811
        seeded: Seeded) -> None:  # noqa: F811
    _audit_entries(app)
    mine = eu_client.get("/dashboard/audit")
    assert mine.status_code == 200
    text = mine.get_data(as_text=True)
    assert "only-about-eu" in text and "about-eu-and-us" in text
    assert "only-about-uk" not in text
    # Nothing of the whole chain: its head and its verification are the administrators'.
    assert "Head hash" not in text and "The chain holds" not in text
    overview = eu_client.get("/dashboard/").get_data(as_text=True)
    assert "entries about EU" in overview and "chain head" not in overview
    every = admin_client.get("/dashboard/audit").get_data(as_text=True)
    assert "only-about-uk" in every and "only-about-eu" in every
    assert "The chain holds" in every and "Head hash" in every
