"""The webhook sender against a real http.server on loopback: success, retries, refusals, timeouts, bounds, stop."""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rules.transitions import Event, Transition
from rules.webhooks import WebhookSender
from tests.conftest import wait_for

T0 = 1_700_000_000.0


class Hooks:
    """A loopback HTTP server: per path a script of status codes (the last one repeats), and what it got."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[int]] = {}
        self.received: list[tuple[str, dict[str, object], str]] = []
        self.release = threading.Event()  # slow handlers wait on this, so teardown never waits for them
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hooks.received.append((self.path, json.loads(data), self.headers.get("Content-Type", "")))
                if self.path.startswith("/slow"):
                    hooks.release.wait(5)
                script = hooks.scripts.get(self.path, [200])
                code = script.pop(0) if len(script) > 1 else script[0]
                # The sender may have given up on a slow answer (its timeout): writing then is harmless.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(code)
                    if code in (301, 302):
                        self.send_header("Location", "/ok")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for p, _, _ in self.received if p == path)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.close()


@pytest.fixture
def senders() -> Iterator[list[WebhookSender]]:
    made: list[WebhookSender] = []
    yield made
    for s in made:
        s.stop(1.0)


def sender(senders: list[WebhookSender], **kwargs: float) -> WebhookSender:
    options: dict[str, float] = {"timeout": 2.0, "retries": 3, "backoff": 0.01, "max_backoff": 0.05, **kwargs}
    s = WebhookSender(timeout=options.pop("timeout"), retries=int(options.pop("retries")),
                      max_queue=int(options.pop("max_queue", 1000)), backoff=options.pop("backoff"),
                      max_backoff=options.pop("max_backoff"), use_env_proxy=False)
    senders.append(s)
    return s


def transition(event: Event = Event.ACTIVATE, **values: float) -> Transition:
    return Transition("rain-bike-priority", "WK062601", event, event is not Event.CLEAR, T0, values)


def test_success_posts_the_transition_as_json(hooks: Hooks, senders: list[WebhookSender]) -> None:
    s = sender(senders)
    s.start()
    s.send(hooks.url("/ok"), transition(rain=0.7, wind=math.nan))
    wait_for(lambda: s.sent == 1)
    [(path, payload, content_type)] = hooks.received
    assert path == "/ok" and content_type == "application/json"
    assert payload == {"rule": "rain-bike-priority", "group": "WK062601", "event": "activate", "active": True,
                       "time": T0, "values": {"rain": 0.7, "wind": None}}
    assert s.counters() == {"sent": 1, "failed": 0, "dropped": 0, "retried": 0, "pending": 0}


def test_a_5xx_is_retried(hooks: Hooks, senders: list[WebhookSender]) -> None:
    hooks.scripts["/flaky"] = [500, 503, 200]
    s = sender(senders)
    s.start()
    s.send(hooks.url("/flaky"), transition())
    wait_for(lambda: s.sent == 1)
    assert (hooks.hits("/flaky"), s.retried, s.failed) == (3, 2, 0)


def test_a_5xx_past_the_retries_fails(hooks: Hooks, senders: list[WebhookSender]) -> None:
    hooks.scripts["/down"] = [500]
    s = sender(senders, retries=2)
    s.start()
    s.send(hooks.url("/down"), transition())
    wait_for(lambda: s.failed == 1)
    assert (hooks.hits("/down"), s.sent) == (3, 0)


def test_a_4xx_is_not_retried(hooks: Hooks, senders: list[WebhookSender]) -> None:
    hooks.scripts["/missing"] = [404]
    s = sender(senders)
    s.start()
    s.send(hooks.url("/missing"), transition())
    wait_for(lambda: s.failed == 1)
    time.sleep(0.1)
    assert (hooks.hits("/missing"), s.retried) == (1, 0)


def test_a_redirect_is_not_followed(hooks: Hooks, senders: list[WebhookSender]) -> None:
    hooks.scripts["/moved"] = [302]
    s = sender(senders)
    s.start()
    s.send(hooks.url("/moved"), transition())
    wait_for(lambda: s.failed == 1)
    assert hooks.hits("/ok") == 0


def test_a_timeout_is_retried_then_fails(hooks: Hooks, senders: list[WebhookSender]) -> None:
    s = sender(senders, timeout=0.2, retries=1)
    s.start()
    s.send(hooks.url("/slow"), transition())
    wait_for(lambda: s.failed == 1)
    assert (hooks.hits("/slow"), s.retried, s.sent) == (2, 1, 0)


def test_no_connection_is_retried_then_fails(senders: list[WebhookSender]) -> None:
    free = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = free.server_address[1]
    free.server_close()  # a port nobody listens on
    s = sender(senders, retries=2)
    s.start()
    s.send(f"http://127.0.0.1:{port}/x", transition())
    wait_for(lambda: s.failed == 1)
    assert s.retried == 2


def test_a_full_queue_drops_and_counts(hooks: Hooks, senders: list[WebhookSender]) -> None:
    s = sender(senders, max_queue=2)
    for _ in range(5):
        s.send(hooks.url("/ok"), transition())  # not started: nothing leaves the queue
    assert (s.dropped, s.pending) == (3, 2)
    s.start()
    s.stop(5.0)
    assert (s.sent, s.dropped, hooks.hits("/ok")) == (2, 3, 2)


def test_only_http_urls_are_called(senders: list[WebhookSender]) -> None:
    s = sender(senders)
    s.send("file:///etc/passwd", transition())
    assert (s.dropped, s.pending) == (1, 0)


def test_stop_drains_the_queue(hooks: Hooks, senders: list[WebhookSender]) -> None:
    s = sender(senders)
    for i in range(20):
        s.send(hooks.url("/ok"), transition(n=float(i)))
    s.start()
    s.stop(5.0)
    assert (s.sent, s.pending, s.dropped) == (20, 0, 0)
    assert sorted(p["values"]["n"] for _, p, _ in hooks.received) == list(range(20))  # type: ignore[index]


def test_stop_keeps_its_deadline_and_counts_what_is_left(hooks: Hooks, senders: list[WebhookSender]) -> None:
    hooks.scripts["/down"] = [500]
    s = sender(senders, retries=50, backoff=0.2, max_backoff=0.2)
    for _ in range(3):
        s.send(hooks.url("/down"), transition())
    s.start()
    wait_for(lambda: hooks.hits("/down") >= 1)
    started = time.monotonic()
    s.stop(0.5)
    assert time.monotonic() - started < 2.0
    assert s.dropped == 3 and s.sent == 0 and s.pending == 0


def test_send_never_raises(senders: list[WebhookSender]) -> None:
    s = sender(senders, max_queue=1)
    bad = Transition("r", "g", Event.ACTIVATE, True, T0, {"x": "text"})  # type: ignore[dict-item]
    s.send("http://127.0.0.1:9/x", bad)
    assert s.dropped == 1
