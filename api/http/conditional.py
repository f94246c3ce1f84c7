"""Conditional GET: ETag / Last-Modified, answered with 304 on If-None-Match / If-Modified-Since.

Open-data clients poll (dashboards refresh the latest values every few seconds); a 304 costs
them no download and the network nothing. The ETag is weak (RFC 9110 8.8.1): a hash of the body
as sent, so two bodies that are byte for byte equal share it. It is computed only for responses
that arrive in one piece (every JSON response does: the body is in memory already, so hashing
adds no buffering); a streamed body (the CSV export) passes through untouched, since holding it
back to hash it would buffer what streaming is for. A handler may set its own ETag or
Last-Modified; If-Modified-Since is compared with a Last-Modified the handler set, and is
ignored when If-None-Match is present (RFC 9110 13.2.2).
"""

from __future__ import annotations

import hashlib
from email.utils import parsedate_to_datetime

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.security_headers import PRIVATE_PREFIXES

# What a 304 keeps of the 200 it stands for (RFC 9110 15.4.5); the body headers go.
KEPT_ON_304 = (b"etag", b"last-modified", b"cache-control", b"vary", b"expires", b"content-location", b"date")


def weak_etag(body: bytes) -> str:
    """W/"<hash>" of a body."""
    return f'W/"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison of an If-None-Match list (or "*") with an ETag."""
    if if_none_match.strip() == "*":
        return True
    mine = _opaque(etag)
    return any(_opaque(t) == mine for t in if_none_match.split(","))


def not_modified_since(if_modified_since: str, last_modified: str) -> bool:
    """True when Last-Modified is not later than If-Modified-Since (unparseable dates: False)."""
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False


class ConditionalGet:
    """ASGI middleware adding ETags to whole GET 200 responses and answering 304 where they match."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"].startswith(PRIVATE_PREFIXES):
            await self.app(scope, receive, send)
            return
        request = Headers(scope=scope)
        if_none_match = request.get("if-none-match")
        if_modified_since = request.get("if-modified-since")
        held: Message | None = None
        passing = False

        async def conditional_send(message: Message) -> None:
            nonlocal held, passing
            if passing:
                await send(message)
            elif message["type"] == "http.response.start":
                if message["status"] == 200:
                    held = message  # wait for the body to know the ETag
                else:
                    passing = True
                    await send(message)
            elif message["type"] == "http.response.body" and held is not None:
                passing = True
                if message.get("more_body", False):  # streamed: never buffered
                    await send(held)
                    await send(message)
                    return
                headers = MutableHeaders(scope=held)
                if "etag" not in headers:
                    headers["ETag"] = weak_etag(message.get("body", b""))
                if _unchanged(headers, if_none_match, if_modified_since):
                    kept = [(k, v) for k, v in held["headers"] if k.lower() in KEPT_ON_304]
                    await send({"type": "http.response.start", "status": 304, "headers": kept})
                    await send({"type": "http.response.body", "body": b""})
                    return
                await send(held)
                await send(message)
            else:
                await send(message)

        await self.app(scope, receive, conditional_send)


def _unchanged(headers: MutableHeaders, if_none_match: str | None, if_modified_since: str | None) -> bool:
    if if_none_match is not None:
        return etag_matches(if_none_match, headers["etag"])
    last_modified = headers.get("last-modified")
    return if_modified_since is not None and last_modified is not None \
        and not_modified_since(if_modified_since, last_modified)
