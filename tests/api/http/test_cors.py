"""CORS: open data readable from any origin, without credentials; writes are not offered cross-origin."""


def test_a_simple_get_from_another_origin_is_allowed_without_credentials(hygiene):
    resp = hygiene.get("/v1/catalog", headers={"Origin": "https://kaart.example.org"})
    assert resp.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in resp.headers
    assert "ETag" in resp.headers["access-control-expose-headers"]


def test_preflight_for_get_is_answered(hygiene):
    resp = hygiene.options("/v1/latest", headers={
        "Origin": "https://kaart.example.org", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "If-None-Match"})
    assert resp.status_code == 200
    assert set(resp.headers["access-control-allow-methods"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert resp.headers["access-control-allow-origin"] == "*"


def test_preflight_for_a_write_or_credentials_header_is_refused(hygiene):
    post = hygiene.options("/test/echo", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert post.status_code == 400
    auth = hygiene.options("/v1/latest", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization"})
    assert auth.status_code == 400
