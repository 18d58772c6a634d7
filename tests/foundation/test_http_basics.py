"""Health endpoints and the one error format (problem+json) on both backends."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from flask import Blueprint, Flask, Response, abort, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import Schema, fields
from sqlalchemy import text

from hub import create_app, jsonio
from hub.db import PING_IDLE_SECONDS, Database
from hub.errors import Conflict, NotFound

PROBLEM = "application/problem+json"


class _Body(Schema):
    name = fields.String(required=True)
    trader = fields.Nested(Schema.from_dict({"scheme": fields.String(required=True)}))


@pytest.fixture
def error_app(app):
    bp = Blueprint("error_probe", __name__)

    @bp.post("/api/probe/validate")
    def validate():
        return _Body().load(request.get_json())

    @bp.get("/api/probe/missing")
    def missing():
        raise NotFound("operator 42 does not exist")

    @bp.get("/api/probe/conflict")
    def conflict():
        raise Conflict("already exists", fields={"name": "taken"})

    @bp.get("/api/probe/crash")
    def crash():
        raise RuntimeError("secret internal detail /etc/passwd")

    @bp.post("/api/probe/upload")
    def upload():
        return {"size": len(request.get_data())}

    @bp.get("/api/probe/forbidden")
    def forbidden():
        abort(403)

    app.register_blueprint(bp)
    return app


def _problem(response, status):
    assert response.status_code == status
    assert response.mimetype == PROBLEM
    body = json.loads(response.data)
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    return body


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["X-Request-Id"]


def test_readyz_reports_the_database(client, backend):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == {"ok": True, "backend": backend}


def test_readyz_is_503_when_the_database_is_gone(tmp_path):
    app = create_app({"ENV": "testing",
                      "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"})
    response = app.test_client().get("/readyz")
    body = _problem(response, 503) if response.mimetype == PROBLEM else response.get_json()
    assert response.status_code == 503
    assert body["checks"]["database"]["ok"] is False


def test_404_under_api_is_problem_json(client):
    body = _problem(client.get("/api/v1/nothing-here"), 404)
    assert body["type"].endswith("/not-found")


def test_405_lists_allowed_methods(client):
    response = client.post("/healthz")
    _problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_validation_error_names_each_field(error_app):
    response = error_app.test_client().post("/api/probe/validate", json={"trader": {}})
    body = _problem(response, 400)
    fields_ = {e["field"] for e in body["errors"]}
    assert fields_ == {"name", "trader.scheme"}


def test_domain_errors_keep_their_status(error_app):
    client = error_app.test_client()
    assert _problem(client.get("/api/probe/missing"), 404)["detail"] == (
        "operator 42 does not exist")
    body = _problem(client.get("/api/probe/conflict"), 409)
    assert body["errors"] == [{"field": "name", "detail": "taken"}]
    _problem(client.get("/api/probe/forbidden"), 403)


def test_500_never_leaks_a_traceback(error_app, caplog):
    error_app.config["PROPAGATE_EXCEPTIONS"] = False
    response = error_app.test_client().get("/api/probe/crash")
    body = _problem(response, 500)
    raw = response.get_data(as_text=True)
    assert "Traceback" not in raw and "/etc/passwd" not in raw
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


def test_request_size_limit_is_413(error_app):
    client = error_app.test_client()
    limit = error_app.config["MAX_CONTENT_LENGTH"]
    assert client.post("/api/probe/upload", data=b"x" * 100).get_json() == {"size": 100}
    body = _problem(client.post("/api/probe/upload", data=b"x" * (limit + 1)), 413)
    assert str(limit) in body["detail"]


def test_request_id_is_echoed_when_sane(client):
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers[
        "X-Request-Id"] == "abc-123"
    assert client.get("/healthz", headers={"X-Request-Id": "bad id;drop"}).headers[
        "X-Request-Id"] != "bad id;drop"


def test_an_idle_pooled_connection_is_pinged_and_replaced_when_dead(backend, db_url):
    """PostgreSQL pools ping a connection only after it sat idle; a dead one is replaced."""
    if backend != "postgresql":
        pytest.skip("SQLite connections are files: nothing to ping")
    database = Database(db_url, pool_size=1, max_overflow=0)
    try:
        with database.engine.connect() as conn:
            pid = conn.exec_driver_sql("select pg_backend_pid()").scalar()
        assert isinstance(pid, int)
        with database.engine.connect() as conn:  # just used: handed out without a ping
            assert conn.exec_driver_sql("select pg_backend_pid()").scalar() == pid
        killer = Database(db_url)
        with killer.engine.begin() as conn:
            conn.exec_driver_sql(f"select pg_terminate_backend({pid})")
        killer.dispose()
        record = database.engine.pool._pool.queue[0]  # type: ignore[attr-defined]
        record.info["idle_since"] -= PING_IDLE_SECONDS + 1  # as if idle for a while
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("select 1").scalar() == 1
            assert conn.exec_driver_sql("select pg_backend_pid()").scalar() != pid
    finally:
        database.dispose()


def test_json_answers_are_written_by_orjson_as_flask_would():
    app = Flask(__name__)
    jsonio.init_app(app)
    standard = DefaultJSONProvider(app)
    standard.sort_keys = False
    value = {"b": 1, "a": [dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)],
             2: "Ruiz Química", "big": 2**70, "nested": ({"x": None},)}
    assert isinstance(app.json, jsonio.OrjsonProvider)
    assert json.loads(app.json.dumps(value)) == json.loads(standard.dumps(value))
    assert list(json.loads(app.json.dumps({"b": 1, "a": 2}))) == ["b", "a"]  # built order
    app.json.sort_keys = True
    assert list(json.loads(app.json.dumps({"b": 1, "a": 2}))) == ["a", "b"]
    with app.app_context():
        response = app.json.response({"name": "Ruiz Química"})
    assert isinstance(response, Response)
    assert response.mimetype == "application/json"
    assert response.get_data() == '{"name":"Ruiz Química"}\n'.encode()
    assert app.json.loads(b'{"a": [1, 2.5, "\\u00e9"]}') == {"a": [1, 2.5, "é"]}
    with pytest.raises(TypeError):
        app.json.dumps({"not json": object()})


def test_readers_read_outside_a_transaction(backend, db_url):
    """A reader's statements each stand alone (no BEGIN/ROLLBACK round trips); the
    ordinary session still opens a transaction."""
    database = Database(db_url)
    try:
        reader, session = database.read_sessionmaker(), database.sessionmaker()
        try:
            if backend == "postgresql":
                # now() is the transaction's start: it moves between standalone statements
                moments = [reader.execute(text("select now()")).scalar() for _ in range(2)]
                assert moments[0] != moments[1]
                fixed = [session.execute(text("select now()")).scalar() for _ in range(2)]
                assert fixed[0] == fixed[1]
            else:
                reader.execute(text("select 1"))
                driver = reader.connection().connection.driver_connection
                assert driver is not None and not driver.in_transaction
                session.execute(text("select 1"))
                driver = session.connection().connection.driver_connection
                assert driver is not None and driver.in_transaction
        finally:
            reader.close()
            session.close()
    finally:
        database.dispose()
