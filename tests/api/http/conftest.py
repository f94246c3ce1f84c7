"""A served app with HTTP hygiene and a few routes that misbehave on purpose; no InfluxDB needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from api.settings import ApiSettings
from core.settings import InfluxSettings
from tests.api.conftest import open_data_app, serve

# An address the app would know internally; no InfluxDB listens there (nothing is sent to it).
INTERNAL_INFLUX = "http://10.99.1.2:8086"


class Thing(BaseModel):
    """A body with a bounded field."""

    name: str = Field(max_length=100)
    count: int = 0


def add_test_routes(app: FastAPI) -> None:
    """Routes that fail in the ways error handling must cover."""

    @app.post("/test/echo")
    def echo(thing: Thing) -> dict[str, object]:
        return {"name": thing.name, "count": thing.count}

    @app.post("/test/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/test/boom")
    def boom(request: Request) -> None:
        raise RuntimeError(f"disk {request.app.state.settings.state_path.resolve()}/x.sqlite is gone")

    @app.get("/test/leak")
    def leak(request: Request) -> None:
        raise HTTPException(502, f"InfluxDB at {request.app.state.settings.influx.url} unreachable: refused")

    @app.get("/test/long")
    def long_detail() -> None:
        raise HTTPException(400, "x" * 10_000)


def hygiene_settings(tmp_path: Path, registry_file: Path, **kw: Any) -> ApiSettings:
    """Settings whose InfluxDB is an internal address (never contacted by these tests)."""
    return ApiSettings(str(registry_file), InfluxSettings(INTERNAL_INFLUX, "x"),
                       state_dir=str(tmp_path / "state"), **kw)


@pytest.fixture
def hygiene(tmp_path: Path, registry_file: Path) -> Iterator[httpx.Client]:
    """A client of the hygiene test app (rate limit off so tests can make many requests)."""
    app = open_data_app(hygiene_settings(tmp_path, registry_file, anonymous_rate_limit=0), add_test_routes)
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as c:
        yield c
