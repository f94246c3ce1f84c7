"""HTTP hygiene for the whole app: limits, security headers, CORS, rate limits, conditional GET, errors.

The middleware order (outermost first) is chosen so that every answer, including the ones the
middleware itself gives, carries what it should:

1. SecurityHeaders: on every response, 431/413/429/500 included.
2. CatchAll: an unhandled exception becomes a bare 500 (inside 1, so it has the headers).
3. RequestLimits: oversized requests are refused before anything parses them.
4. CORS: open data may be read from any origin (GET/HEAD/OPTIONS, no credentials); outside
   the rate limit and the 304s so browsers can read those answers (and Retry-After) too.
5. RateLimit: anonymous clients per address.
6. ConditionalGet: ETag / 304, nearest the routes.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from api.http.conditional import ConditionalGet
from api.http.errors import CatchAll, Scrubber, install_handlers
from api.http.limits import DEFAULT_LIMITS, Limits, RequestLimits
from api.http.rate_limit import RateLimit
from api.http.security_headers import SecurityHeaders
from api.settings import ApiSettings

CORS_ALLOW_HEADERS = ("Accept", "Accept-Language", "Content-Type", "If-None-Match", "If-Modified-Since")
CORS_EXPOSE_HEADERS = ("ETag", "Last-Modified", "Retry-After", "Content-Disposition", "Link")


def internal_strings(settings: ApiSettings) -> list[str]:
    """What an error body must never show: where InfluxDB is and how to log in, the service's files."""
    out = [settings.influx.url.rstrip("/"), urlsplit(settings.influx.url).netloc]
    if settings.influx.password:
        out.append(settings.influx.password)
    for path in (settings.registry_path, settings.state_dir, settings.operators_path,
                 settings.rules_path, settings.alarms_path):
        if path:
            out += [str(path), str(Path(path).resolve())]
    return out


def install(app: FastAPI, settings: ApiSettings, limits: Limits = DEFAULT_LIMITS) -> None:
    """Add the HTTP hygiene middleware and the error handlers to the app."""
    install_handlers(app, Scrubber(internal_strings(settings)))
    # add_middleware puts each one outside those added before it: innermost first.
    app.add_middleware(ConditionalGet)
    app.add_middleware(RateLimit, per_minute=settings.anonymous_rate_limit)
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "HEAD", "OPTIONS"],
                       allow_headers=list(CORS_ALLOW_HEADERS), expose_headers=list(CORS_EXPOSE_HEADERS),
                       allow_credentials=False, max_age=3600)
    app.add_middleware(RequestLimits, limits=limits)
    app.add_middleware(CatchAll)
    app.add_middleware(SecurityHeaders, public_url=settings.public_url)
