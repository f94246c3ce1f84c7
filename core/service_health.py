"""A service's own health as points of ``service_health`` in InfluxDB, every few seconds.

The same figures are on each service's /metrics for Prometheus; writing them to InfluxDB too (as
Telegraf's ``internal`` plugin does) lets the operators' Grafana read every panel from the one
datasource they already have, and lets the tests prove each dashboard query against real data.

One point per service worker and interval: tags ``service`` (ingest, rules) and ``worker``; fields
are the interval's figures (rates per second, means and maxima in milliseconds, depths), all floats
so that a field never changes type between writes. ``HealthReporter`` calls ``collect()`` every
``interval`` seconds in a daemon thread and hands the point to ``write`` (which must not block for
long: the services pass their own writer's non-blocking submit). An exception in either is logged
and counted; the thread never dies of it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping

from core.line_protocol import line

log = logging.getLogger(__name__)

MEASUREMENT = "service_health"
DEFAULT_INTERVAL = 10.0


def service_health_line(service: str, worker: str, fields: Mapping[str, float], time_us: int) -> str:
    """The service_health point of one worker's interval (non-finite figures are left out)."""
    clean: dict[str, float | int | bool | str] = {
        name: float(value) for name, value in fields.items() if math.isfinite(float(value))
    }
    if not clean:
        raise ValueError(f"service_health of {service}/{worker} has no finite field")
    return line(MEASUREMENT, {"service": service, "worker": worker}, clean, time_us)


class HealthReporter:
    """Every interval: fields = collect(); write(service_health_line(...)). Stopped by stop()."""

    def __init__(self, service: str, worker: str, collect: Callable[[], Mapping[str, float]],
                 write: Callable[[str], object], *, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.time) -> None:
        if interval <= 0:
            raise ValueError(f"health interval must be > 0 s: {interval}")
        self.service, self.worker, self.interval = service, worker, interval
        self._collect, self._write, self._clock = collect, write, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{service}-health", daemon=True)
        self.reports = 0
        self.errors = 0

    def start(self) -> None:
        """Start reporting (the first point comes one interval from now)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop reporting and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def report_once(self) -> None:
        """Collect and write one point now (the thread's step; tests call it directly)."""
        try:
            fields = self._collect()
            self._write(service_health_line(self.service, self.worker, fields,
                                            round(self._clock() * 1_000_000)))
            self.reports += 1
        except Exception:  # a health report must never take the service down with it
            self.errors += 1
            log.exception("%s health report failed", self.service)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.report_once()
