"""The other open data: CSV export, per-wijk statistics and the DCAT-AP-NL catalogue.

The GeoJSON of public devices with their latest values is /v1/latest (api/routes/latest.py,
included by the app itself). None of these keeps state of its own: they read the registry and
InfluxDB through app.state, which the app opens.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI

from api.opendata import catalogue, export_csv, wijk_stats
from api.settings import ApiSettings


def routers() -> list[APIRouter]:
    """The routers of this part."""
    return [export_csv.router, wijk_stats.router, catalogue.router]


def open_state(app: FastAPI, settings: ApiSettings) -> Callable[[], None]:
    """Nothing to open: the routes use the app's registry and InfluxDB client."""
    return lambda: None
