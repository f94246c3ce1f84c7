"""The gateway's health counters, published with its status message (every minute by default).

Counters count since the agent started (as Prometheus counters do: a dashboard takes their
non-negative rate, and a restart shows as a reset with ``uptime_s`` starting again); gauges
(``queue_depth``, ``queue_age_s``, ``*_connected``) are the value at the time of the report.
Names are stable: dashboards and alert rules query them (ingest stores them as fields of the
``gateway_health`` measurement). The README of edge/ lists them.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterable, Mapping
from typing import Protocol

from edge.actuation import Actuator
from edge.durable_queue import DurableQueue
from edge.uplink import Uplink

# The frame problems of the radio paths, each always reported (a zero is information too).
FRAME_PROBLEMS = ("bad_frame", "foreign_address", "no_key", "bad_mic", "replay", "bad_entries", "bad_payload")


class SerialDriver(Protocol):
    """What every serial port driver exposes for health (RG-15 and both modems)."""

    @property
    def reconnects(self) -> int:
        """Reopens of the port after the first."""

    @property
    def errors(self) -> int:
        """Lines that were not the device's output."""


def report(queue: DurableQueue, uplink: Uplink, actuator: Actuator, *,
           started: float, readings_in: int, frame_problems: Iterable[Mapping[str, int]] = (),
           lost_frames: Iterable[int] = (), serial: Iterable[SerialDriver] = (),
           now: float | None = None) -> dict[str, float]:
    """The health counters now, as a flat {name: number} (all numbers, so InfluxDB field types never clash).

    ``started`` is the agent's start on the monotonic clock; the iterables come from the radio
    paths and serial drivers the agent runs at this moment (they change with a config reload).
    """
    wall = time.time() if now is None else now
    link = uplink.link.stats
    problems = list(frame_problems)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    counters: dict[str, float] = {
        "uptime_s": round(time.monotonic() - started, 1),
        "readings_read": readings_in,
        "readings_published": uplink.readings_sent,
        "batches_published": uplink.batches_sent,
        "batches_refused": uplink.refused_batches,
        "readings_dropped": queue.dropped,
        "readings_refused": queue.refused,
        "queue_depth": len(queue),
        "queue_age_s": round(queue.oldest_age(wall), 1),
        "mqtt_connects": link.connects,
        "mqtt_reconnects": max(0, link.connects - 1),
        "mqtt_disconnects": link.disconnects,
        "mqtt_callback_errors": link.callback_errors,
        "bad_commands": uplink.bad_commands,
        "commands_applied": actuator.applied,
        "commands_failed": actuator.failed,
        "lost_frames": sum(lost_frames),
        "serial_reconnects": 0,
        "serial_bad_lines": 0,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "max_rss_kb": usage.ru_maxrss,  # Linux reports kilobytes
    }
    for driver in serial:
        counters["serial_reconnects"] += driver.reconnects
        counters["serial_bad_lines"] += driver.errors
    for reason in FRAME_PROBLEMS:
        counters[f"frames_rejected_{reason}"] = sum(p.get(reason, 0) for p in problems)
    counters["mic_failures"] = counters["frames_rejected_bad_mic"]
    return counters
