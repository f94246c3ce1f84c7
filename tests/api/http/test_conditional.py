"""ETag / Last-Modified and 304 on the open endpoints."""

from api.http.conditional import etag_matches, not_modified_since, weak_etag


def test_weak_etags_compare_weakly():
    tag = weak_etag(b"body")
    assert tag.startswith('W/"')
    assert etag_matches(tag, tag)
    assert etag_matches(f'"other", {tag[2:]}', tag)  # a strong form of the same tag matches weakly
    assert etag_matches("*", tag)
    assert not etag_matches('W/"other"', tag)
    assert weak_etag(b"body") != weak_etag(b"Body")


def test_if_modified_since_compares_dates():
    assert not_modified_since("Wed, 02 Dec 2026 10:00:00 GMT", "Wed, 02 Dec 2026 09:59:59 GMT")
    assert not not_modified_since("Wed, 02 Dec 2026 10:00:00 GMT", "Wed, 02 Dec 2026 10:00:01 GMT")
    assert not not_modified_since("garbage", "Wed, 02 Dec 2026 10:00:01 GMT")


def test_a_get_gets_an_etag_and_a_matching_if_none_match_gets_304(hygiene):
    first = hygiene.get("/v1/catalog")
    etag = first.headers["etag"]
    again = hygiene.get("/v1/catalog", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"].startswith("public")
    assert "content-type" not in again.headers
    changed = hygiene.get("/v1/catalog", headers={"If-None-Match": 'W/"stale"'})
    assert changed.status_code == 200
    assert changed.content == first.content


def test_errors_and_writes_get_no_etag(hygiene):
    assert "etag" not in hygiene.get("/v1/nothing").headers
    assert "etag" not in hygiene.post("/test/echo", json={"name": "a"}).headers
