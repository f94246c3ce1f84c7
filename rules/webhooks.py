"""Webhook calls for rule transitions: JSON POSTs from a background thread, with a bounded queue.

The body is ``{"rule", "group", "event", "active", "time", "values"}`` (values NaN, i.e. missing,
as null). Standard library only (urllib.request): the rules service needs no HTTP client for this.

- The queue is bounded: when it is full a call is dropped and counted (logged at most once a minute).
- Connection errors, timeouts and 5xx answers are retried ``retries`` times with capped exponential
  backoff; a 4xx answer is final (the receiver refused this body, sending it again will not help).
- Redirects are not followed: urllib would turn a redirected POST into a GET without the body. A
  webhook must answer 2xx at its URL; a 3xx counts as failed.
- Only http and https URLs are called (urllib would also open file: and ftp: URLs).
- ``stop()`` keeps sending what is queued until its deadline; what is left is counted as dropped.
"""

from __future__ import annotations

import http.client
import logging
import math
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from core import jsonfast
from rules.background_worker import QueueWorker
from rules.transitions import Transition

log = logging.getLogger(__name__)

USER_AGENT = "smartcity-rules/1 (webhook)"
_MAX_BODY_READ = 64 * 1024  # read (and discard) at most this much of an answer, so the connection closes cleanly


def body(t: Transition) -> bytes:
    """The JSON body of a transition's webhook call (non-finite values as null)."""
    values = {k: (float(v) if math.isfinite(v) else None) for k, v in t.values.items()}
    return jsonfast.dumps({"rule": t.rule, "group": t.group, "event": t.event.value, "active": t.active,
                           "time": t.time, "values": values})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: object, code: int, msg: str,  # noqa: PLR0917 - urllib's signature
                         headers: object, newurl: str) -> None:
        return None  # urllib then raises HTTPError for the 3xx


@dataclass(frozen=True, slots=True)
class _Call:
    url: str
    payload: bytes
    rule: str


class WebhookSender(QueueWorker[_Call]):
    """POSTs transitions to webhook URLs from one thread; ``send`` never blocks and never raises."""

    thread_name = "webhooks"
    counter_names = ("sent", "failed", "dropped", "retried")
    _log = log
    _full_message = "webhook queue full (%d): dropping calls, %d so far"
    _busy_message = "webhook sender still busy after %.1f s; abandoning it"
    _left_message = "webhook sender stopped with %d calls not made"

    def __init__(self, timeout: float = 5.0, max_queue: int = 1000, retries: int = 3, *,
                 backoff: float = 0.5, max_backoff: float = 30.0, use_env_proxy: bool = True) -> None:
        super().__init__(max_queue=max_queue, backoff=backoff, max_backoff=max_backoff)
        self.timeout = timeout
        self.retries = max(0, retries)
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if not use_env_proxy:
            handlers.append(urllib.request.ProxyHandler({}))  # else urllib follows http_proxy & co.
        self._opener = urllib.request.build_opener(*handlers)
        self.sent = 0  # calls answered 2xx
        self.failed = 0  # calls given up on: 4xx, 3xx, or still failing after the retries
        # dropped: calls not made: queue full, bad URL, or still queued at stop's deadline
        self.retried = 0  # attempts made again after a connection error, timeout or 5xx

    # -- the caller's side ---------------------------------------------------------------------
    def send(self, url: str, t: Transition) -> None:
        """Queue a POST of the transition to url."""
        if not url.startswith(("http://", "https://")):
            self._count("dropped")
            log.warning("webhook of rule %s not called: only http and https URLs are, not %.60s", t.rule, url)
            return
        try:
            call = _Call(url, body(t), t.rule)
        except (TypeError, ValueError) as exc:  # values that are not numbers: this call, not the caller
            self._count("dropped")
            log.warning("webhook of rule %s not called: %s", t.rule, exc)
            return
        self.offer(call)

    def _join_grace(self) -> float:
        return self.timeout + 1.0  # a request in flight ends by its own timeout at the latest

    # -- the sending thread --------------------------------------------------------------------
    def _handle(self, batch: list[_Call]) -> None:
        for call in batch:  # one call at a time (batch_size 1): stop's deadline is looked at between calls
            self._deliver(call)

    def _deliver(self, call: _Call) -> None:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            if attempt:
                after = self._back_off(delay)
                if after is None:  # stop's deadline comes first
                    self._count("dropped")
                    return
                delay = after
                self._count("retried")
            outcome = self._post(call)
            if outcome is None:
                self._count("sent")
                return
            retry, why = outcome
            if not retry:
                self._count("failed")
                log.warning("webhook of rule %s to %s failed: %s", call.rule, call.url, why)
                return
            log.debug("webhook of rule %s to %s: %s (attempt %d)", call.rule, call.url, why, attempt + 1)
        self._count("failed")
        log.warning("webhook of rule %s to %s failed after %d attempts: %s", call.rule, call.url,
                    self.retries + 1, why)

    def _post(self, call: _Call) -> tuple[bool, str] | None:
        """None on 2xx, else (worth retrying, why)."""
        request = urllib.request.Request(call.url, data=call.payload, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": USER_AGENT})
        timeout = self.timeout
        if self._stopping.is_set():
            timeout = max(0.1, min(timeout, self._deadline - time.monotonic()))
        try:
            with self._opener.open(request, timeout=timeout) as resp:
                resp.read(_MAX_BODY_READ)
                return None
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code >= 500, f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            # No connection, reset, timeout (TimeoutError is an OSError), a malformed answer.
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            return True, f"{type(exc).__name__}: {reason}"
