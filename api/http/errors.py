"""Error bodies: name the problem, never echo large input, never show internals (OWASP API8).

- 422 (FastAPI's request validation): FastAPI's default lists each error with the ``input``
  that failed, which echoes whatever the client sent (a 60 KB parameter came back whole).
  Here each error keeps where it is (``loc``, e.g. ``["query", "from"]``), what kind it is
  and the message, each cut short; the input and the validator's context are dropped.
- HTTPException details are cut to ``MAX_DETAIL`` characters and scrubbed of the addresses
  and paths the service knows internally (the InfluxDB URL, its state and config files), in
  case a handler put an exception's text into one.
- Anything unhandled is logged with its traceback and answered ``500 {"detail": "internal
  error"}`` by ``CatchAll``, which sits inside the middleware that adds the security headers,
  so even that answer has them; no trace ever reaches the client, debug mode or not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.responses import send_json

log = logging.getLogger(__name__)

MAX_DETAIL = 300
MAX_ERRORS = 10
MAX_LOC_PART = 40
MAX_MESSAGE = 120
NO_BODY = frozenset({204, 304})


def clip(text: str, limit: int = MAX_DETAIL) -> str:
    """text, cut to limit characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Scrubber:
    """Replaces internal addresses and paths in error text with a neutral word."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a path is replaced before a shorter prefix of it.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "<internal>")
        return text


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's validation errors reduced to loc / type / msg, each short, without the input."""
    out: list[dict[str, Any]] = []
    for error in list(errors)[:MAX_ERRORS]:
        loc = [clip(str(part), MAX_LOC_PART) if isinstance(part, str) else part
               for part in error.get("loc", ())][:6]
        out.append({"loc": loc, "type": clip(str(error.get("type", "invalid")), MAX_LOC_PART),
                    "msg": clip(str(error.get("msg", "invalid value")), MAX_MESSAGE)})
    if len(errors) > MAX_ERRORS:
        out.append({"loc": [], "type": "too_many_errors", "msg": f"{len(errors) - MAX_ERRORS} more errors"})
    return out


def install_handlers(app: FastAPI, scrub: Scrubber) -> None:
    """Register the 422 and HTTPException handlers on app."""

    async def on_validation(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, RequestValidationError):  # registered for that type only
            raise exc
        return JSONResponse({"detail": validation_errors(exc.errors())}, status_code=422)

    async def on_http(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # registered for that type only
            raise exc
        headers = getattr(exc, "headers", None)
        if exc.status_code in NO_BODY or exc.status_code < 200:
            return Response(status_code=exc.status_code, headers=headers)
        detail: Any = exc.detail
        if isinstance(detail, str):
            detail = clip(scrub(detail))
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)


class CatchAll:
    """ASGI middleware: an exception that escaped the app is logged and answered with a bare 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if started:
                raise  # the start line is out: let the server cut the connection
            await send_json(send, 500, "internal error")
