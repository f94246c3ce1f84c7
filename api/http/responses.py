"""Small raw ASGI responses for the middleware, which answers before the app (and its handlers) run."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Send

from core import jsonfast


async def send_json(send: Send, status: int, detail: str,
                    headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """A complete JSON response ``{"detail": ...}``: short, and never holding request input."""
    body = jsonfast.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"), *headers]})
    await send({"type": "http.response.body", "body": body})
