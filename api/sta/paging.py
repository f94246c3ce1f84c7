"""Absolute links of a response: the service root and ``@iot.nextLink``.

The next link repeats the request's own options and changes only the paging: ``$skip`` for
entity collections (they are in memory, so an offset costs nothing), ``$skiptoken`` for
Observations (the store's keyset token: a page deep into a long series costs what the first
does, where an offset would make InfluxDB read and drop every earlier point).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote, urlencode

from fastapi import Request

from api.settings import ApiSettings
from api.sta.model import VERSION

_SAFE = "$(),'/:"


def service_root(request: Request, settings: ApiSettings) -> str:
    """The service root without a trailing slash: ``<public_url>/v1.1``, or the request's base URL's."""
    base = settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    return f"{base}/{VERSION}"


def next_link(root: str, raw_path: str, params: Sequence[tuple[str, str]], change: Mapping[str, str | None]) -> str:
    """``root + raw_path`` with the query ``params``, where each key of ``change`` is replaced (None: dropped)."""
    kept = [(k, v) for k, v in params if k not in change]
    kept.extend((k, v) for k, v in change.items() if v is not None)
    query = urlencode(kept, quote_via=quote, safe=_SAFE)
    return f"{root}{raw_path}?{query}" if query else f"{root}{raw_path}"
