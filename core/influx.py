"""InfluxDB over its v1 HTTP API: line protocol to /write, InfluxQL to /query.

The v1 API is served by InfluxDB 1.x natively, 2.x through its compatibility endpoints and
3.x natively, so this one client covers all three (architecture.md, "Storage").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

# The only answers about the data itself: a bad batch (400) or one too large (413). Every other
# failure (no connection, 5xx, 401/403 after a credential change, 404 database not found, 429, ...)
# can succeed later, so data must never be given up on it.
DATA_REJECTED_STATUSES = frozenset({400, 413})


class InfluxError(RuntimeError):
    """InfluxDB refused a request or could not be reached; ``body`` is InfluxDB's own error text."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def retryable(self) -> bool:
        """True unless InfluxDB rejected the data itself (400, 413): those fail again unchanged."""
        return self.status not in DATA_REJECTED_STATUSES

    @property
    def reason(self) -> str:
        """A short label for metrics: 'connection', 'timeout' or the HTTP status."""
        if self.status is None:
            return "timeout" if "timed out" in str(self).lower() else "connection"
        return str(self.status)


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a query result."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> list[dict[str, Any]]:
        """The values as one dict per row, keyed by column."""
        return [dict(zip(self.columns, v, strict=True)) for v in self.values]


@dataclass(slots=True)
class InfluxConfig:
    """Where InfluxDB is and how to log in (a token is sent as the v1 password, as 2.x expects)."""

    url: str
    database: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0


class InfluxClient:
    """A keep-alive HTTP client for one database."""

    def __init__(self, config: InfluxConfig) -> None:
        self.config = config
        auth = (config.username or "", config.password) if config.password else None
        self._http = httpx.Client(base_url=config.url, timeout=config.timeout, auth=auth)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> InfluxClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise InfluxError(f"InfluxDB at {self.config.url} unreachable: {exc}") from exc
        if resp.status_code >= 300:
            text = resp.text.strip()
            try:
                body = str(resp.json().get("error", text))
            except ValueError:
                body = text
            raise InfluxError(f"InfluxDB {path} answered {resp.status_code}: {body[:500]}",
                              resp.status_code, body[:2000])
        return resp

    def ping(self) -> bool:
        """True when the server answers /ping."""
        try:
            self._request("GET", "/ping")
        except InfluxError:
            return False
        return True

    def create_database(self) -> None:
        """Create the configured database (a no-op when it exists)."""
        self._request("POST", "/query", data={"q": f'CREATE DATABASE "{self.config.database}"'})

    def write(self, lines: str | bytes, precision: str = "u") -> None:
        """Write a batch of line protocol; raises InfluxError (see .retryable) on failure."""
        body = lines.encode() if isinstance(lines, str) else lines
        self._request("POST", "/write", params={"db": self.config.database, "precision": precision},
                      content=body)

    def query(self, q: str, epoch: str | None = "ms") -> list[Series]:
        """Run InfluxQL and return every series of every statement; an error in a statement raises."""
        params = {"db": self.config.database, "q": q}
        if epoch:
            params["epoch"] = epoch
        body = self._request("GET", "/query", params=params).json()
        out: list[Series] = []
        for result in body.get("results", []):
            if "error" in result:
                raise InfluxError(f"InfluxQL error: {result['error']}", 400)
            for s in result.get("series", []):
                out.append(Series(s.get("name", ""), s.get("tags", {}), s["columns"], s["values"]))
        return out
