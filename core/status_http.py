"""A service's own small HTTP endpoint: Prometheus metrics at /metrics and its health at /healthz.

Bound to loopback by default (Prometheus scrapes through the host's own network policy); a WSGI
app served by the standard library in a daemon thread, so a service needs no web framework for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from core import jsonfast

log = logging.getLogger(__name__)

Health = Callable[[], dict[str, Any]]  # must return {"status": "ok" | "degraded" | "failing", ...}
StartResponse = Callable[[str, list[tuple[str, str]]], object]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the log; errors still surface through the app."""


class StatusServer:
    """Serves /metrics from registry and /healthz from health() until stop()."""

    def __init__(self, registry: CollectorRegistry, health: Health, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self._metrics_app = make_wsgi_app(registry)
        self._health = health
        self._server: WSGIServer = make_server(host, port, self._app, handler_class=_QuietHandler)
        self.host = host
        self.port = int(self._server.server_port)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="status-http", daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the endpoint."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()
        log.info("status endpoint on %s (/metrics, /healthz)", self.url)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            try:
                report = self._health()
            except Exception:  # a health check must answer, not raise into the server thread
                log.exception("health check failed")
                report = {"status": "failing", "detail": "health check raised"}
            body = jsonfast.dumps(report)
            code = "503 Service Unavailable" if report.get("status") == "failing" else "200 OK"
            start_response(code, [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /healthz\n"]
