"""Helpers shared by the firmware-sim and edge tests: waiting, thread-leak checks, a tiny registry."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from core.registry import Registry, parse
from edge.lora_frame import encode_downlink
from edge.lora_keys import KeyRing

GATEWAY = "gw-1"
LIGHT_ADDRESS = "0A0B0C01"
COUNTER_ADDRESS = "0A0B0C02"
KEYS = KeyRing.generate()  # the simulated nodes' and the gateway's keys, fresh for every test run
_downlink_counter = iter(range(1, 1_000_000))


def downlink(address: str, payload: bytes) -> bytes:
    """A downlink frame as a gateway with the test keys sends it (fresh counter each time)."""
    key = KEYS.key_for(address)
    assert key is not None
    return encode_downlink(address, next(_downlink_counter), payload, key)

T = TypeVar("T")


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0, interval: float = 0.01) -> bool:
    """Poll predicate until it is true or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return predicate()
        time.sleep(interval)
    return True


def get_matching(items: queue.Queue[T], predicate: Callable[[T], bool], timeout: float = 3.0) -> T:
    """The first queued item matching predicate within timeout (others are discarded); queue.Empty if none."""
    deadline = time.monotonic() + timeout
    while True:
        item = items.get(timeout=max(0.001, deadline - time.monotonic()))
        if predicate(item):
            return item


def no_thread_leaks() -> Iterator[None]:
    """Generator for an autouse fixture: fails the test if it leaves threads running."""
    before = set(threading.enumerate())
    yield
    wait_for(lambda: not (set(threading.enumerate()) - before), timeout=2.0)
    leaked = sorted(t.name for t in set(threading.enumerate()) - before)
    assert not leaked, f"threads left running: {leaked}"


def _feature(props: dict[str, Any], lon: float = 4.43, lat: float = 52.12) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}


def tiny_registry_dict() -> dict[str, Any]:
    """Two gateways: gw-1 with a light, a counter, a rain gauge and an unsimulated device; gw-2 a gauge."""
    place = {"gemeente": "GM0626", "wijk": "WK062600"}
    return {
        "type": "FeatureCollection",
        "cbs_map_year": 2024,
        "features": [
            _feature({"id": GATEWAY, "role": "gateway", "gemeente": "GM0626"}),
            _feature({"id": "gw-2", "role": "gateway", "gemeente": "GM0629"}),
            _feature({"id": "light-1", "role": "device", "kind": "street_light", "gateway": GATEWAY,
                      "link": "lora", "address": LIGHT_ADDRESS, **place}),
            _feature({"id": "counter-1", "role": "device", "kind": "occupancy", "gateway": GATEWAY,
                      "link": "lora", "address": COUNTER_ADDRESS, **place}),
            _feature({"id": "rain-1", "role": "device", "kind": "rain_gauge", "gateway": GATEWAY,
                      "link": "serial", "port": "rg15", **place}),
            _feature({"id": "light-serial", "role": "device", "kind": "street_light", "gateway": GATEWAY,
                      "link": "serial", "port": "dali", **place}),
            _feature({"id": "rain-2", "role": "device", "kind": "rain_gauge", "gateway": "gw-2",
                      "link": "serial", "port": "rg15", "gemeente": "GM0629", "wijk": "WK062900"}),
        ],
    }


def tiny_registry() -> Registry:
    """tiny_registry_dict() validated by core.registry.parse."""
    return parse(tiny_registry_dict())
