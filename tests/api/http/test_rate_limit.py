"""Rate limiting of anonymous clients: token buckets, 429 with Retry-After, operators held to more."""

import httpx
import pytest

from api.http.rate_limit import AUTHENTICATED_FACTOR, TokenBuckets, client_key
from tests.api.conftest import open_data_app, serve
from tests.api.http.conftest import hygiene_settings


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_bucket_allows_a_minutes_burst_then_refills_at_the_rate():
    clock = Clock()
    buckets = TokenBuckets(60, clock=clock)
    assert all(buckets.take("a") == 0.0 for _ in range(60))
    assert buckets.take("a") == pytest.approx(1.0)  # one token a second
    assert buckets.take("b") == 0.0  # other clients have their own bucket
    clock.now += 0.5
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    clock.now += 3600
    assert sum(buckets.take("a") == 0.0 for _ in range(100)) == 60  # never more than the capacity


def test_buckets_are_bounded_and_drop_the_least_recently_seen():
    clock = Clock()
    buckets = TokenBuckets(1, max_clients=3, clock=clock)
    for key in "abc":
        buckets.take(key)
    buckets.take("a")  # a seen again: b is now the oldest
    buckets.take("d")
    assert len(buckets) == 3
    assert buckets.take("a") > 0  # a kept its empty bucket
    assert buckets.take("b") == 0.0  # b was dropped and starts afresh


def test_client_keys_group_ipv6_by_64():
    assert client_key({"client": ("192.0.2.7", 1)}) == "192.0.2.7"
    assert client_key({"client": ("2001:db8:1:2:aaaa::1", 1)}) == client_key({"client": ("2001:db8:1:2:bbbb::9", 1)})
    assert client_key({"client": ("2001:db8:1:3::1", 1)}) != client_key({"client": ("2001:db8:1:2::1", 1)})
    assert client_key({"client": ("::ffff:192.0.2.7", 1)}) == "192.0.2.7"


@pytest.fixture
def limited(tmp_path, registry_file):
    app = open_data_app(hygiene_settings(tmp_path, registry_file, anonymous_rate_limit=5))
    with serve(app) as url:
        yield url


def test_an_anonymous_client_over_its_limit_gets_429_with_retry_after(limited):
    with httpx.Client(base_url=limited) as c:
        assert [c.get("/v1/catalog").status_code for _ in range(5)] == [200] * 5
        resp = c.get("/v1/catalog")
    assert resp.status_code == 429
    assert int(resp.headers["retry-after"]) >= 1
    assert "rate limit" in resp.json()["detail"]
    assert len(resp.content) < 200


def test_each_client_address_has_its_own_bucket(limited):
    with httpx.Client(base_url=limited) as c:
        for _ in range(6):
            c.get("/v1/catalog")
        assert c.get("/v1/catalog").status_code == 429
    other = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=limited, transport=other) as c:
        assert c.get("/v1/catalog").status_code == 200


def test_requests_with_credentials_are_held_to_a_much_higher_ceiling(limited):
    with httpx.Client(base_url=limited, headers={"Authorization": "Bearer op"}) as c:
        codes = [c.get("/v1/catalog").status_code for _ in range(5 * AUTHENTICATED_FACTOR + 1)]
    assert codes[:-1] == [200] * (5 * AUTHENTICATED_FACTOR)
    assert codes[-1] == 429  # a forged header is no way around the limit


def test_health_checks_are_not_limited(limited):
    with httpx.Client(base_url=limited) as c:
        codes = {c.get("/healthz").status_code for _ in range(10)}
    assert 429 not in codes
