"""The FastAPI application: open data for everyone, operator endpoints behind authentication.

The parts install themselves in a fixed order: the HTTP hygiene middleware (limits, security
headers, CORS, rate limits, conditional requests), the operators' authentication and audit log,
the SensorThings API, the other open data, and health. Each part's ``setup`` module gives its
routers and opens its state at start-up (``open_state`` returns the function that closes it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.http import setup as http_setup
from api.opendata import setup as opendata_setup
from api.operators import setup as operators_setup
from api.routes import health, latest
from api.settings import ApiSettings, settings_from_env
from api.sta import setup as sta_setup
from core.influx import InfluxClient, InfluxConfig
from core.registry import WatchedRegistry

_PARTS = (operators_setup, sta_setup, opendata_setup)


def open_clients(app: FastAPI, settings: ApiSettings) -> Callable[[], None]:
    """app.state's settings, registry and InfluxDB clients; returns what closes them."""
    app.state.settings = settings
    app.state.registry = WatchedRegistry(settings.registry_path)
    cfg, w = settings.influx, settings.influx_writer
    app.state.influx = InfluxClient(InfluxConfig(cfg.url, cfg.database, cfg.username, cfg.password))
    # The operators' writes go through their own account where one is configured (least privilege:
    # the account of every public read may only read; deploy/influx_accounts.py).
    app.state.influx_writer = (app.state.influx if w is None else
                               InfluxClient(InfluxConfig(w.url, w.database, w.username, w.password)))

    def close() -> None:
        if app.state.influx_writer is not app.state.influx:
            app.state.influx_writer.close()
        app.state.influx.close()

    return close


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """Build the app; settings default to the environment."""
    settings = settings or settings_from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        closers = [open_clients(app, settings)]
        try:
            for part in _PARTS:
                closers.append(part.open_state(app, settings))
            yield
        finally:
            for close in reversed(closers):
                close()

    app = FastAPI(title="smartcity", version="0.2.0", lifespan=lifespan,
                  description="Sensor data of Voorschoten and Wassenaar: open data (OGC SensorThings API 1.1 at "
                              "/v1.1, GeoJSON, CSV, statistics, DCAT-AP-NL catalogue; only data classified "
                              "openbaar) and authenticated operator endpoints at /v1/operator.")
    http_setup.install(app, settings)
    app.include_router(health.router)
    app.include_router(latest.router)
    for part in _PARTS:
        for router in part.routers():
            app.include_router(router)
    return app
