"""Settings of the API service, read once and cached (not a module-level singleton)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

from core.settings import InfluxSettings, influx_from_env
from smartcity.data import demo_registry_path


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Where the registry and InfluxDB are, and how many readings a 'latest' query may look back."""

    registry_path: str
    influx: InfluxSettings = field(default_factory=InfluxSettings)
    latest_window: str = "7d"


@lru_cache(maxsize=1)
def settings_from_env() -> ApiSettings:
    """Settings from SMARTCITY_REGISTRY and the SMARTCITY_INFLUX_* variables."""
    return ApiSettings(
        registry_path=os.environ.get("SMARTCITY_REGISTRY", str(demo_registry_path())),
        influx=influx_from_env(),
    )
