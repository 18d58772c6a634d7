"""OAuth errors have one shape: a failed client authentication is `401 invalid_client`
whatever the method (a wrong secret or a bad assertion), with its request_id."""

from __future__ import annotations

from tests.auth.hubkit import make_client

ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def test_a_bad_secret_and_a_bad_assertion_get_the_same_answer(ref_app, committed_db):
    creds = make_client(committed_db, "US-CTPAT", "verify")
    client = ref_app.test_client()
    grant = {"grant_type": "client_credentials"}
    answers = [
        client.post("/oauth/token", data=grant, auth=(creds.client_id, "wrong")),
        client.post("/oauth/token", data={**grant, "client_id": creds.client_id,
                                          "client_assertion_type": ASSERTION,
                                          "client_assertion": "not.a.jwt"}),
        client.post("/oauth/token", data={**grant, "client_assertion_type": ASSERTION,
                                          "client_assertion": "e30.e30.e30"}),
    ]
    for answer in answers:
        body = answer.get_json()
        assert (answer.status_code, body["error"]) == (401, "invalid_client"), body
        assert body["request_id"]
    assert len({a.get_json()["detail"] for a in answers}) == 1
