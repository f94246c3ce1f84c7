"""The device kinds the platform knows, with their metrics (datastreams) and units.

Units are SenML registry names (RFC 8428 section 12.1, extended by RFC 8798). A kind is
one InfluxDB measurement; each metric one field of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Classification(StrEnum):
    """Municipal confidentiality classes; only OPENBAAR is served as open data."""

    OPENBAAR = "openbaar"
    BEDRIJFSVERTROUWELIJK = "bedrijfsvertrouwelijk"
    VERTROUWELIJK = "vertrouwelijk"
    GEHEIM = "geheim"


class ValueType(StrEnum):
    """How a metric is carried in SenML and stored in InfluxDB."""

    NUMBER = "number"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class Metric:
    """One datastream of a device kind."""

    name: str
    unit: str | None
    type: ValueType
    description: str


@dataclass(frozen=True, slots=True)
class Kind:
    """A device kind: its measurement name, metrics and default classification."""

    name: str
    metrics: dict[str, Metric]
    classification: Classification
    description: str
    # The command actions (core.commands.Action values) a device of this kind accepts.
    actions: frozenset[str] = frozenset()


def _kind(name: str, description: str, *metrics: Metric,
          classification: Classification = Classification.OPENBAAR,
          actions: frozenset[str] = frozenset()) -> Kind:
    return Kind(name, {m.name: m for m in metrics}, classification, description, actions)


N, B = ValueType.NUMBER, ValueType.BOOLEAN

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        _kind(
            "street_light", "LoRa street-light controller (TALQ LampActuator/LampMonitor subset)",
            Metric("dim_level", "%", N, "actual light level 0-100 %"),
            Metric("power", "W", N, "active power"),
            Metric("energy", "kWh", N, "cumulative active energy"),
            Metric("voltage", "V", N, "supply voltage"),
            Metric("temperature", "Cel", N, "controller temperature"),
            Metric("lamp_failure", None, B, "lamp failure flag"),
            actions=frozenset({"dim"}),
        ),
        _kind(
            "rain_gauge", "Hydreon RG-15 optical rain gauge on a serial port",
            Metric("rain_intensity", "mm/h", N, "rain intensity (RInt)"),
            Metric("accumulation", "mm", N, "rain since the previous reading (Acc)"),
            Metric("event_accumulation", "mm", N, "rain in the current event (EventAcc)"),
            Metric("total_accumulation", "mm", N, "rain since power-up or reset (TotalAcc)"),
        ),
        _kind(
            "occupancy", "LoRa presence/people counter: counts per interval, never identities",
            Metric("presence", None, B, "anyone present during the interval"),
            Metric("count", "count", N, "people counted during the interval"),
        ),
        _kind(
            "parking_spot", "LoRa parking-spot sensor: reports on change of occupied/free and a periodic heartbeat",
            Metric("occupied", None, B, "a vehicle is in the spot (Smart Data Models ParkingSpot status)"),
        ),
        _kind(
            "traffic_light", "Traffic-light controller at a junction with a cycle lane (bike-priority request)",
            Metric("bike_priority", None, B, "bike priority (longer green for cyclists) in effect"),
            Metric("cycle_time", "s", N, "current signal cycle time"),
            actions=frozenset({"bike_priority"}),
        ),
    )
}
