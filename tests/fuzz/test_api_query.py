"""Query strings to the real FastAPI app (SensorThings $filter, $orderby, $select, $top, $skip, $expand, and
the open-data routes' parameters) and the $filter/$orderby parser itself.

The app is create_app with a real influxd holding a few readings, called in-process (httpx's
ASGITransport on one event loop, lifespan run: the whole ASGI stack, middleware and error handlers,
without a socket). Inputs are
grammar-aware OData expressions (properties, literals of every type, functions, operators, nesting)
mutated with nasty tokens, plus random text. Invariants: every answer is below 500 (or 501 naming the
feature not implemented, the contract's answer to NotImplementedFeature); a 4xx body is JSON with a
message; an error body never echoes more than 200 characters of the input and never shows a
traceback, the InfluxDB address or a server path. The parser raises only QueryError or
NotImplementedFeature, with a message.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from api.app import create_app
from api.settings import ApiSettings
from api.sta.query.ast import NotImplementedFeature, QueryError
from api.sta.query.functions import FUNCTIONS, UNSUPPORTED_FUNCTIONS
from api.sta.query.options import parse_options
from api.sta.query.parser import parse_filter, parse_orderby
from core import jsonfast
from core.influx import InfluxClient, InfluxConfig
from core.senml import Reading
from core.settings import InfluxSettings
from deploy.influxdb import start_influxd
from smartcity.data import demo_registry_path
from tests.api.sta.conftest import store_readings
from tests.fuzz.support import FUZZ, NASTY_TOKENS, mutated_text

# --- grammar-aware OData ---

_PROPERTIES = ["result", "phenomenonTime", "resultTime", "validTime", "name", "description", "id", "@iot.id",
               "Datastream/name", "Datastream/Thing/name", "Thing/properties/wijk", "properties/kind",
               "unitOfMeasurement/symbol", "observedArea", "location", "FeatureOfInterest/feature", "x", "a/b/c/d/e"]
_literals = st.one_of(
    st.integers(-(2**70), 2**70).map(str), st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e999", "-0", "0.5", "9" * 40, "true", "false", "null", "NaN", "INF",
                     "2024-01-01T00:00:00Z", "2024-13-40T25:61:00+01:00", "2024-01-01", "12:00:00",
                     "duration'P1DT2H'", "duration'P1Y'", "geography'POINT(4.4 52.1)'",
                     "geography'POLYGON((4 52,5 52,5 53,4 52))'", "geometry'LINESTRING(1 2)'", "''", "'it''s'"]),
    st.text(max_size=12).map(lambda t: "'" + t.replace("'", "''") + "'"),
)
_operands = st.one_of(_literals, st.sampled_from(_PROPERTIES))
_FUNCS = sorted(FUNCTIONS) + sorted(UNSUPPORTED_FUNCTIONS) + ["nosuch", "SUBSTRINGOF", "geo.nowhere"]
_BIN = ["eq", "ne", "gt", "ge", "lt", "le", "and", "or", "add", "sub", "mul", "div", "divby", "mod", "in",
        "has", "EQ", "And"]


def _combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, st.sampled_from(_BIN), inner).map(" ".join),
        st.tuples(st.sampled_from(_FUNCS), st.lists(inner, max_size=3)).map(lambda p: f"{p[0]}({','.join(p[1])})"),
        inner.map(lambda e: f"({e})"), inner.map(lambda e: f"not {e}"), inner.map(lambda e: f"-{e}"),
        st.lists(_literals, max_size=4).map(lambda items: f"result in ({','.join(items)})"),
    )


_expressions = st.recursive(_operands, _combine, max_leaves=12)
_filters = st.integers(0, 9).flatmap(
    lambda i: _expressions if i < 5 else st.text(max_size=60) if i == 9 else mutated_text(_expressions))
_orderbys = st.lists(st.tuples(_expressions | st.sampled_from(_PROPERTIES), st.sampled_from(["", " asc", " desc",
                                                                                              " up"])),
                     max_size=3).map(lambda items: ",".join(e + d for e, d in items))
_ENTITIES = ["Things", "Locations", "HistoricalLocations", "Datastreams", "Sensors", "ObservedProperties",
             "Observations", "FeaturesOfInterest"]
_selects = st.lists(st.sampled_from([*_PROPERTIES, "@iot.selfLink", "*", ""]) | st.text(max_size=6),
                    max_size=4).map(",".join)


def _expand_item(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    opts = st.lists(st.one_of(_filters.map(lambda f: f"$filter={f}"), st.integers(-1, 99).map(lambda n: f"$top={n}"),
                              _selects.map(lambda s: f"$select={s}"), inner.map(lambda e: f"$expand={e}"),
                              st.just("$count=true"), st.just("$skiptoken=x")), max_size=3)
    return st.tuples(st.sampled_from([*_ENTITIES, "Thing", "Datastream", "Locations/Things", "x"]), opts).map(
        lambda p: p[0] + (f"({';'.join(p[1])})" if p[1] else ""))


_expands = st.recursive(st.sampled_from([*_ENTITIES, "Thing", "Datastream"]),
                        lambda inner: st.lists(_expand_item(inner), min_size=1, max_size=3).map(",".join),
                        max_leaves=6)
_numbers = st.one_of(st.integers(-5, 200).map(str), st.sampled_from(["", "1e3", "9" * 30, "0x10", "٣", "-0", " 1"]),
                     st.text(max_size=5))
_OPTIONS = {
    "$filter": _filters, "$orderby": _orderbys, "$select": _selects, "$expand": _expands,
    "$top": _numbers, "$skip": _numbers, "$count": st.sampled_from(["true", "false", "TRUE", "yes", ""]),
    "$skiptoken": st.text(max_size=30), "$resultFormat": st.sampled_from(["dataArray", "x"]),
}
_option_names = st.sampled_from([*_OPTIONS, "$FILTER", "$nosuch", "filter", "$"])


def _option(name: str) -> st.SearchStrategy[tuple[str, str]]:
    key = name if name in _OPTIONS else name.lower()
    values = _OPTIONS[key] if key in _OPTIONS else st.text(max_size=20)
    return st.tuples(st.just(name), values)


_params = st.lists(_option_names.flatmap(_option), max_size=5)


# --- the parser directly ---


@FUZZ
@given(text=_filters, order=_orderbys)
@example(text="(" * 60 + "1" + ")" * 60, order="result")
@example(text="not " * 200 + "true", order="-" * 100 + "result")
@example(text="1 add " * 3000 + "1 eq 1", order="result," * 2000)
@example(text="'" + "a" * 9000 + "'", order="x")
def test_the_filter_parser_raises_only_its_documented_errors(text: str, order: str) -> None:
    for parse, value in ((parse_filter, text), (parse_orderby, order)):
        try:
            parse(value)
        except (QueryError, NotImplementedFeature) as exc:
            assert str(exc)
            assert len(str(exc)) < 300, str(exc)[:400]  # a message, not the input echoed back


@FUZZ
@given(params=_params)
# Regression (fixed in api.sta.query.geo): a WKT coordinate beyond float range overflowed in shapely,
# a RuntimeWarning (an exception where warnings are errors) instead of a QueryError.
@example(params=[("$filter", "st_within(location, geography'POINT(4.4 " + "9" * 400 + "52.1)')")])
@example(params=[("$filter", "geo.distance(location, geometry'POINT(1e999 1)') lt 1")])
def test_query_options_parse_or_raise_only_query_errors(params: list[tuple[str, str]]) -> None:
    try:
        parse_options(params)
    except (QueryError, NotImplementedFeature) as exc:
        assert str(exc)


# --- through the app ---

NOW = time.time()


class Client:
    """Synchronous GETs on an httpx.AsyncClient of the app, on the fixture's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> None:
        self.loop, self.client = loop, client

    def get(self, url: str) -> httpx.Response:
        return self.loop.run_until_complete(self.client.get(url))


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, list[str]]]:
    """create_app on a private influxd with a few stored readings; the client and the strings no error may show."""
    base = Path(tmp_path_factory.mktemp("fuzz-api"))
    server = start_influxd(base / "influx")
    influx = InfluxClient(InfluxConfig(server.url, "smartcity_fuzz"))
    try:
        influx.create_database()
        registry = base / "registry.geojson"
        registry.write_bytes(demo_registry_path().read_bytes())
        store_readings(influx, registry, "gw-vs-01", [
            Reading(d, m, float(i), NOW - 600 + i * 10, u) for i, d in enumerate(["vs-sl-101", "vs-sl-201"])
            for m, u in (("dim_level", "%"), ("power", "W"))])
        settings = ApiSettings(str(registry), InfluxSettings(server.url, "smartcity_fuzz"),
                               state_dir=str(base / "api-state"), anonymous_rate_limit=0)
        secrets = [server.url, server.url.split("//", 1)[-1], str(base), str(Path.cwd()), "site-packages"]
        app = create_app(settings)
        loop = asyncio.new_event_loop()
        lifespan = app.router.lifespan_context(app)
        loop.run_until_complete(lifespan.__aenter__())
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                   base_url="http://fuzz.invalid")
        try:
            yield Client(loop, client), secrets
        finally:
            loop.run_until_complete(client.aclose())
            loop.run_until_complete(lifespan.__aexit__(None, None, None))
            loop.close()
    finally:
        influx.close()
        server.stop()


_paths = st.one_of(
    st.sampled_from([f"/v1.1/{e}" for e in _ENTITIES]),
    st.sampled_from(["/v1.1/Datastreams(1)/Observations", "/v1.1/Things('gw-vs-01')/Datastreams", "/v1.1",
                     "/v1.1/Observations('x')", "/v1.1/Datastreams('vs-sl-101:power')/Observations",
                     "/v1/latest", "/v1/stats/wijken", "/v1/export/street_light.csv", "/v1/catalog"]),
    st.builds(lambda e, k: f"/v1.1/{e}({quote(k, safe='')})", st.sampled_from(_ENTITIES), st.text(max_size=10)),
)
_OPEN_PARAMS = st.lists(st.tuples(st.sampled_from(["kind", "wijk", "gemeente", "from", "to", "metric", "limit",
                                                   "interval", "device", "bbox"]),
                                  st.sampled_from(NASTY_TOKENS) | st.text(max_size=20)), max_size=3)


def _check_error_body(response: Any, params: list[tuple[str, str]], secrets: list[str]) -> None:
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and body.get("detail"), body
    text = json.dumps(body, ensure_ascii=False)
    for secret in secrets:
        assert secret not in text, (secret, text[:400])
    assert "Traceback" not in text and 'File "' not in text, text[:400]
    # No run of more than 200 characters of any input value comes back.
    for _, value in params:
        if len(value) > 200:
            assert not any(text[j:j + 201] in value for j in range(max(len(text) - 200, 0))), text[:400]


@FUZZ
@given(path=_paths, params=st.one_of(_params, _OPEN_PARAMS))
@example(path="/v1.1/Observations", params=[("$filter", "x" * 9000)])
@example(path="/v1.1/Observations", params=[("$filter", "result eq '" + "é" * 3000 + "'")])
@example(path="/v1.1/Things", params=[("$expand", "Datastreams($expand=" * 60 + "Thing" + ")" * 60)])
@example(path="/v1.1/Observations", params=[("$top", "9" * 5000)])
@example(path="/v1.1/Observations", params=[("$orderby", "result asc," * 800)])
@example(path="/v1.1/Locations", params=[("$filter", "st_within(location, geography'POINT(1e999 52)')")])
def test_the_app_answers_every_query_below_500_with_a_short_json_error(
        app_client: tuple[Client, list[str]], path: str, params: list[tuple[str, str]]) -> None:
    client, secrets = app_client
    query = urlencode(params, quote_via=quote)
    response = client.get(f"{path}?{query}" if query else path)
    status = response.status_code
    event(f"status {status}")  # --hypothesis-show-statistics shows how many reach each answer
    if status == 501:
        assert jsonfast.loads(response.content)["detail"].startswith("not implemented"), response.text[:300]
        return
    assert status < 500, (status, response.text[:500], path, params)
    if status >= 400:
        _check_error_body(response, params, secrets)
