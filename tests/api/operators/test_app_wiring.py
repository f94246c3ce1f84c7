"""The operators' part inside the whole app (api.app.create_app): routes, auth and audit log are wired."""

from __future__ import annotations

import pytest

from api.app import create_app
from tests.api.operators.conftest import Served, serve

pytestmark = pytest.mark.integration


def test_the_full_app_serves_the_operator_routes_behind_auth(op_settings):
    app = create_app(op_settings)
    with serve(app) as url:
        served = Served(url, op_settings, app)
        with served.client() as c:
            assert c.get("/v1/operator/me").status_code == 401
        with served.client("ada") as c:
            assert c.get("/v1/operator/me").json() == {"name": "ada", "role": "admin"}
            assert c.get("/v1/operator/audit", params={"verify": "true"}).json()["chain"]["intact"] is True
        with served.client() as c:
            schema = c.get("/openapi.json").json()
    assert "/v1/operator/commands" in schema["paths"]
    schemes = schema["components"]["securitySchemes"]
    assert {s["scheme"] for s in schemes.values()} == {"basic", "bearer"}


def test_the_audit_log_survives_a_restart_of_the_app(op_settings):
    for _ in range(2):
        app = create_app(op_settings)
        with serve(app) as url, Served(url, op_settings, app).client("otto") as c:
            c.get("/v1/operator/me")
    app = create_app(op_settings)
    with serve(app) as url, Served(url, op_settings, app).client("ada") as c:
        body = c.get("/v1/operator/audit", params={"action": "me", "verify": "true"}).json()
    assert [e["who"] for e in body["entries"]] == ["otto", "otto"]
    assert body["chain"]["intact"] is True
