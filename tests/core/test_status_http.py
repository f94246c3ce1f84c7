"""The status endpoint: Prometheus text at /metrics, health JSON at /healthz, 503 only when failing."""

import httpx
from prometheus_client import CollectorRegistry, Counter

from core.status_http import StatusServer


def test_metrics_and_health_over_real_http():
    registry = CollectorRegistry()
    Counter("things", "things done", registry=registry).inc(3)
    health = {"status": "ok"}
    server = StatusServer(registry, lambda: dict(health))
    server.start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        assert "things_total 3.0" in httpx.get(f"{server.url}/metrics").text
        resp = httpx.get(f"{server.url}/healthz")
        assert (resp.status_code, resp.json()) == (200, {"status": "ok"})
        health["status"] = "degraded"
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        health["status"] = "failing"
        assert httpx.get(f"{server.url}/healthz").status_code == 503
        assert httpx.get(f"{server.url}/other").status_code == 404
    finally:
        server.stop()


def test_a_health_check_that_raises_answers_failing():
    def broken():
        raise RuntimeError("boom")

    server = StatusServer(CollectorRegistry(), broken)
    server.start()
    try:
        resp = httpx.get(f"{server.url}/healthz")
        assert resp.status_code == 503 and resp.json()["status"] == "failing"
    finally:
        server.stop()
