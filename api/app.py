"""The FastAPI application: open data for everyone, health for operators' monitoring."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.routes import health, latest
from api.settings import ApiSettings, settings_from_env
from core.influx import InfluxClient, InfluxConfig
from core.registry import WatchedRegistry


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the app; settings default to the environment."""
    settings = settings or settings_from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings.influx
        app.state.settings = settings
        app.state.registry = WatchedRegistry(settings.registry_path)
        app.state.influx = InfluxClient(InfluxConfig(cfg.url, cfg.database, cfg.username, cfg.password))
        try:
            yield
        finally:
            app.state.influx.close()

    app = FastAPI(title="smartcity open data", version="0.1.0", lifespan=lifespan,
                  description="Sensor data of Voorschoten and Wassenaar; only data classified openbaar.")
    app.include_router(health.router)
    app.include_router(latest.router)
    return app
