"""Error bodies name the problem without echoing large input, internal addresses or traces."""

from tests.api.http.conftest import INTERNAL_INFLUX


def test_a_422_does_not_echo_a_60_kb_input(hygiene):
    resp = hygiene.post("/test/echo", json={"name": "N" * 60_000, "count": 1})
    assert resp.status_code == 422
    assert len(resp.content) < 1_000
    assert "NNNN" not in resp.text
    (error,) = resp.json()["detail"]
    assert error["loc"] == ["body", "name"]  # names the parameter
    assert "100" in error["msg"]  # and what is wrong with it
    assert "input" not in error


def test_a_422_on_a_query_parameter_names_it(hygiene):
    resp = hygiene.get("/v1/stats/wijken", params={"period": "P" * 5_000})
    assert resp.status_code == 422
    assert len(resp.content) < 1_000
    assert "PPPP" not in resp.text
    assert resp.json()["detail"][0]["loc"] == ["query", "period"]


def test_a_bad_json_body_is_a_short_422(hygiene):
    resp = hygiene.post("/test/echo", content=b'{"name": "' + b"J" * 50_000,
                        headers={"content-type": "application/json"})
    assert resp.status_code == 422
    assert len(resp.content) < 1_000
    assert "JJJJ" not in resp.text


def test_many_validation_errors_are_summarised(hygiene):
    resp = hygiene.post("/test/echo", json=[{"x": i} for i in range(100)])
    assert resp.status_code == 422
    assert len(resp.content) < 2_000


def test_an_unhandled_exception_is_a_bare_500_without_trace_or_paths(hygiene, tmp_path):
    resp = hygiene.get("/test/boom")
    assert resp.status_code == 500
    assert resp.json() == {"detail": "internal error"}
    assert "Traceback" not in resp.text and str(tmp_path) not in resp.text
    assert resp.headers["x-content-type-options"] == "nosniff"  # hygiene headers even on a 500


def test_http_errors_never_name_the_influxdb_address(hygiene):
    resp = hygiene.get("/test/leak")
    assert resp.status_code == 502
    assert INTERNAL_INFLUX not in resp.text and "10.99.1.2" not in resp.text
    assert "unreachable" in resp.json()["detail"]


def test_long_details_are_cut_short(hygiene):
    resp = hygiene.get("/test/long")
    assert resp.status_code == 400
    assert len(resp.json()["detail"]) <= 300


def test_unknown_routes_are_a_short_404(hygiene):
    resp = hygiene.get("/nothing/" + "q" * 3_000)
    assert resp.status_code == 404
    assert "qqqq" not in resp.text
