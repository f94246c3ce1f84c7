"""Request size limits, checked before any route runs (OWASP API4: unrestricted resource consumption).

uvicorn's h11 parser accepts large header sections and any number of query parameters, and
Starlette parses whatever arrives; a client could make every request cost megabytes of parsing
and memory. The limits here are generous for real clients (browsers send ~20 headers of a few
hundred bytes; SensorThings URLs with $filter and nested $expand stay well under 8 KiB) and
answer with a short body that names the limit, never the input:
431 for too many or too large headers, 414 for a too long URL, 400 for too many query
parameters, 413 for a too large body (by Content-Length at once, or counted while it streams
in for chunked uploads).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.responses import send_json


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of one request."""

    max_body_bytes: int = 1_000_000  # STA deep inserts and operator writes; nothing else takes a body
    max_headers: int = 64
    max_header_bytes: int = 8_192  # one header's name + value
    max_header_section_bytes: int = 32_768  # all headers together
    max_url_bytes: int = 8_192  # path + query string
    max_query_params: int = 64


DEFAULT_LIMITS = Limits()


class RequestLimits:
    """ASGI middleware enforcing ``Limits`` on HTTP requests."""

    def __init__(self, app: ASGIApp, limits: Limits = DEFAULT_LIMITS) -> None:
        self.app = app
        self.limits = limits

    def _header_problem(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        lim = self.limits
        if len(headers) > lim.max_headers:
            return f"too many request headers: at most {lim.max_headers}"
        total = 0
        for name, value in headers:
            size = len(name) + len(value)
            if size > lim.max_header_bytes:
                return f"request header too large: at most {lim.max_header_bytes} bytes per header"
            total += size
        if total > lim.max_header_section_bytes:
            return f"request headers too large: at most {lim.max_header_section_bytes} bytes in all"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lim = self.limits
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        problem = self._header_problem(headers)
        if problem:
            await send_json(send, 431, problem)
            return
        query: bytes = scope.get("query_string", b"")
        if len(scope.get("raw_path") or scope["path"].encode()) + len(query) > lim.max_url_bytes:
            await send_json(send, 414, f"URL too long: at most {lim.max_url_bytes} bytes")
            return
        # Counting separators is enough: the URL is already bounded, so this is at most 8 KiB of scan.
        if query and sum(1 for part in query.split(b"&") if part) > lim.max_query_params:
            await send_json(send, 400, f"too many query parameters: at most {lim.max_query_params}")
            return
        length = _content_length(headers)
        if length is not None and length > lim.max_body_bytes:
            await send_json(send, 413, f"request body too large: at most {lim.max_body_bytes} bytes")
            return
        await self.app(scope, _counting(receive, lim.max_body_bytes), send)


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # h11 refuses a malformed Content-Length before we see it
    return None


def _counting(receive: Receive, limit: int) -> Receive:
    """receive() that counts body bytes and stops a chunked body that grows past the limit.

    It raises Starlette's HTTPException, which FastAPI's body parsing passes through (it wraps
    other exceptions into a 400) and the exception middleware answers as 413.
    """
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, f"request body too large: at most {limit} bytes")
        return message

    return wrapped
