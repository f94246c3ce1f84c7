"""FastAPI dependencies: the registry and the InfluxDB client live on app.state, made once at start-up."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from core.influx import InfluxClient
from core.registry import Registry, WatchedRegistry


def get_registry(request: Request) -> Registry:
    """The current registry (reloaded when its file changes)."""
    watched: WatchedRegistry = request.app.state.registry
    return watched.get()


def get_influx(request: Request) -> InfluxClient:
    """The shared keep-alive InfluxDB client."""
    client: InfluxClient = request.app.state.influx
    return client


RegistryDep = Annotated[Registry, Depends(get_registry)]
InfluxDep = Annotated[InfluxClient, Depends(get_influx)]
