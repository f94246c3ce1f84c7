"""Rate limiting of anonymous clients per client address: a token bucket (OWASP API4).

Each address gets a bucket of ``per_minute`` tokens that refills continuously at
``per_minute / 60`` tokens a second, so a client may burst up to a minute's allowance and then
keeps the average. A request takes one token; an empty bucket answers 429 with Retry-After
(the seconds until the next token).

The check is O(1) and takes no lock: ASGI middleware runs on the event loop's single thread and
``take`` never awaits, so no two requests interleave inside it. Buckets live in an ordered dict
bounded at ``max_clients`` entries (least recently seen dropped first), so a flood of spoofed
source addresses cannot grow memory. IPv6 clients are keyed by their /64 (one subscriber's
prefix; per-address buckets would be trivial to dodge). Behind a reverse proxy uvicorn's
``--forwarded-allow-ips`` makes ``scope["client"]`` the real client.

Requests that carry an Authorization header are operators': they are not held to the
anonymous limit. The header is not verified here (that is the operator part's job, with its
own throttle of failed logins), so such requests draw from a separate bucket per address
that is ``AUTHENTICATED_FACTOR`` times larger: a forged header buys a higher ceiling, never an
unlimited one.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from api.http.responses import send_json

AUTHENTICATED_FACTOR = 20
MAX_CLIENTS = 100_000
EXEMPT_PATHS = frozenset({"/healthz"})  # monitoring polls it; it costs one ping


class TokenBuckets:
    """Token buckets keyed by client; ``take`` returns 0.0 when allowed, else seconds to wait."""

    def __init__(self, per_minute: int, max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # key -> [tokens, last refill time]

    def take(self, key: str) -> float:
        """Take one token for key; 0.0 if there was one, else the seconds until there is."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._buckets.popitem(last=False)
            bucket = self._buckets[key] = [self.capacity, now]
        else:
            self._buckets.move_to_end(key)
            bucket[0] = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0.0
        return (1.0 - bucket[0]) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


def client_key(scope: Scope) -> str:
    """The bucket key of a request's client: its IPv4 address or its IPv6 /64."""
    client = scope.get("client")
    host = client[0] if client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a unix socket or a test client: one bucket per name
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimit:
    """ASGI middleware: 429 + Retry-After once a client's bucket is empty; per_minute 0 disables it."""

    def __init__(self, app: ASGIApp, per_minute: int) -> None:
        self.app = app
        self.anonymous = TokenBuckets(per_minute) if per_minute > 0 else None
        self.authenticated = TokenBuckets(per_minute * AUTHENTICATED_FACTOR) if per_minute > 0 else None
        self.per_minute = per_minute

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.anonymous is None or self.authenticated is None \
                or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        authorised = any(name == b"authorization" for name, _ in scope["headers"])
        buckets = self.authenticated if authorised else self.anonymous
        wait = buckets.take(client_key(scope))
        if wait:
            await send_json(send, 429, "rate limit exceeded: try again after Retry-After seconds",
                            [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
            return
        await self.app(scope, receive, send)
