"""The hygiene is installed on the real app (api.app.create_app), not only on the test app."""

import httpx
import pytest

from api.app import create_app
from tests.api.conftest import serve

pytestmark = pytest.mark.integration


@pytest.fixture
def full(api_settings):
    with serve(create_app(api_settings)) as url, httpx.Client(base_url=url, timeout=10) as c:
        yield c


def test_the_full_app_has_headers_limits_and_clean_errors(full, influxd):
    resp = full.get("/v1/latest")
    assert resp.status_code == 200
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["etag"].startswith('W/"')
    assert full.get("/v1/catalog").json()["@type"] == "dcat:Catalog"
    assert full.get("/v1/latest", headers={"X-Big": "A" * 12_000}).status_code == 431
    assert full.get("/v1/latest", headers={"X-Big": "A" * 100_000}).status_code in (400, 431)  # h11 or us
    assert full.get("/v1/latest?" + "&".join(f"p{i}=1" for i in range(5_000))).status_code in (400, 414)
    influxd.stop()
    down = full.get("/v1/latest")
    assert down.status_code == 503 and influxd.url not in down.text
