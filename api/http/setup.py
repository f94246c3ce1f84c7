"""Placeholder: the owner of this package replaces it (install() adds the middleware)."""

from __future__ import annotations

from fastapi import FastAPI

from api.settings import ApiSettings


def install(app: FastAPI, settings: ApiSettings) -> None:
    """Add the HTTP hygiene middleware to the app."""
