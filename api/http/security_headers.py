"""Security headers on every response (OWASP API8: security misconfiguration).

The API serves JSON, GeoJSON, JSON-LD and CSV, never pages of its own, so the content security
policy forbids everything (``default-src 'none'``): a response that a browser is tricked into
rendering can run nothing and cannot be framed. Only the interactive docs (/docs, /redoc) are
HTML; they get a policy that admits the CDN FastAPI loads them from and their inline start-up
script. HSTS is sent only when the request came over https (uvicorn sets the scheme from
X-Forwarded-Proto for trusted proxies) or the public URL is https: over plain http it would
be ignored, and on a loopback test server it would be wrong.

Cache-Control where the handler set none: anonymous successful GETs of open data may be cached
for a short while by anyone (they are public, and ETags make revalidation cheap); everything
else (errors, operator routes, requests with credentials, writes) is ``no-store``.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
            "https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'")
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
HSTS = "max-age=31536000; includeSubDomains"
OPEN_CACHE = "public, max-age=30"
PRIVATE_PREFIXES = ("/v1/operator",)


class SecurityHeaders:
    """ASGI middleware that adds the headers to each response start."""

    def __init__(self, app: ASGIApp, public_url: str = "") -> None:
        self.app = app
        self.https_public = public_url.startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        request_headers = dict(scope["headers"])
        anonymous = b"authorization" not in request_headers and b"cookie" not in request_headers
        https = self.https_public or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Content-Security-Policy", DOCS_CSP if path in DOCS_PATHS else STRICT_CSP)
                headers.setdefault("Cross-Origin-Resource-Policy", "cross-origin")  # open data: any site may fetch
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if "cache-control" not in headers:
                    status: int = message["status"]
                    cacheable = (anonymous and method in ("GET", "HEAD") and status in (200, 304)
                                 and not path.startswith(PRIVATE_PREFIXES))
                    headers["Cache-Control"] = OPEN_CACHE if cacheable else "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
