"""Placeholder: the owner of this package replaces it (routers() and open_state())."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI

from api.settings import ApiSettings


def routers() -> list[APIRouter]:
    """The routers of this part."""
    return []


def open_state(app: FastAPI, settings: ApiSettings) -> Callable[[], None]:
    """Open this part's state on app.state; returns the function that closes it."""
    return lambda: None
