"""Security headers and Cache-Control on every kind of answer."""

import httpx

from api.http.security_headers import HSTS, STRICT_CSP
from tests.api.conftest import open_data_app, serve
from tests.api.http.conftest import add_test_routes, hygiene_settings


def test_json_answers_carry_the_security_headers(hygiene):
    resp = hygiene.get("/v1/catalog")
    assert resp.status_code == 200
    h = resp.headers
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["x-frame-options"] == "DENY"
    assert h["content-security-policy"] == STRICT_CSP
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert "strict-transport-security" not in h  # plain http: HSTS would be meaningless


def test_open_data_is_briefly_cacheable_but_errors_and_credentials_are_not(hygiene):
    assert hygiene.get("/v1/catalog").headers["cache-control"].startswith("public")
    assert hygiene.get("/v1/catalog", headers={"Authorization": "Bearer x"}).headers["cache-control"] == "no-store"
    assert hygiene.get("/v1/nothing").headers["cache-control"] == "no-store"
    assert hygiene.post("/test/echo", json={"name": "a"}).headers["cache-control"] == "no-store"


def test_refusals_by_the_middleware_carry_the_headers_too(hygiene):
    resp = hygiene.get("/v1/catalog", headers={"X-Big": "A" * 12_000})  # under h11's 16 KiB buffer: ours
    assert resp.status_code == 431
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["cache-control"] == "no-store"


def test_the_docs_page_gets_a_policy_that_lets_it_load(hygiene):
    csp = hygiene.get("/docs").headers["content-security-policy"]
    assert "script-src" in csp and "cdn.jsdelivr.net" in csp and "frame-ancestors 'none'" in csp


def test_hsts_when_served_as_https(tmp_path, registry_file):
    settings = hygiene_settings(tmp_path, registry_file, public_url="https://data.example.nl")
    with serve(open_data_app(settings, add_test_routes)) as url:
        resp = httpx.get(url + "/v1/catalog")
    assert resp.headers["strict-transport-security"] == HSTS
