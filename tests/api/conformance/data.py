"""The known readings the conformance fixture stores, and what the tests expect from them.

Times are whole seconds on a minute boundary two hours ago (inside the ingest's lateness window),
so every Observation id and phenomenonTime is predictable. The classified device vs-sl-102 gets
values no public device has (55.0 and 77.7): a response that contains them leaks it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.senml import Reading

CLASSIFIED = "vs-sl-102"  # reclassified 'vertrouwelijk' in the fixture's copy of the demo registry
CLASSIFIED_NAME = "Lichtmast Centrum 2"
CLASSIFIED_LAT = "52.1285"  # its latitude; no other feature of the demo registry has it
SECRET_VALUES = (55.0, 77.7)

LIGHT = "vs-sl-101"  # a public street light with a long dim_level series (paging)
LIGHT_DIM = f"{LIGHT}.dim_level"
LIGHT_POWER = f"{LIGHT}.power"
LIGHT_FAILURE = f"{LIGHT}.lamp_failure"
N_DIM = 30  # dim_level readings of LIGHT: value 3 * i at base + 60 * i
N_POWER = 150  # power readings of LIGHT: 10.5 + i at base + 30 * i (more than one default page of 100)
RAIN = "vs-rg-001.rain_intensity"
RAIN_VALUES = (0.0, 1.5, 3.25)


@dataclass(frozen=True, slots=True)
class Stored:
    """One stored reading as the API should serve it."""

    datastream: str
    time_us: int
    value: float | bool


def base_time(now: float) -> int:
    """The first reading's time: a minute boundary about two hours before now."""
    return (int(now) // 60) * 60 - 7200


def readings(base: int) -> dict[str, list[Reading]]:
    """Readings per gateway."""
    vs: list[Reading] = []
    vs += [Reading(LIGHT, "dim_level", float(3 * i), base + 60 * i) for i in range(N_DIM)]
    vs += [Reading(LIGHT, "power", 10.5 + i, base + 30 * i) for i in range(N_POWER)]
    vs += [Reading(LIGHT, "lamp_failure", False, base), Reading(LIGHT, "lamp_failure", True, base + 600)]
    vs += [Reading(CLASSIFIED, "dim_level", SECRET_VALUES[0], base + 30),
           Reading(CLASSIFIED, "power", SECRET_VALUES[1], base + 30)]
    vs += [Reading("vs-sl-103", "dim_level", 40.0, base), Reading("vs-sl-103", "dim_level", 60.0, base + 60)]
    vs += [Reading("vs-rg-001", "rain_intensity", v, base + 60 * i) for i, v in enumerate(RAIN_VALUES)]
    vs += [Reading("vs-oc-101", "presence", True, base), Reading("vs-oc-101", "count", 3.0, base)]
    ws = [Reading("ws-sl-101", "dim_level", 100.0, base), Reading("ws-sl-101", "power", 42.0, base)]
    return {"gw-vs-01": vs, "gw-ws-01": ws}


def stored(base: int) -> list[Stored]:
    """Every stored reading as (datastream, time, value)."""
    return [Stored(f"{r.device}.{r.metric}", int(r.time) * 1_000_000, r.value)
            for rs in readings(base).values() for r in rs]


def series(base: int, datastream: str) -> list[Stored]:
    """The stored readings of one Datastream in time order."""
    return sorted((s for s in stored(base) if s.datastream == datastream), key=lambda s: s.time_us)


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 instant (Z or offset) as an aware datetime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def time_us(text: str) -> int:
    """An ISO 8601 instant as unix microseconds."""
    t = parse_time(text)
    return int(t.timestamp()) * 1_000_000 + t.microsecond


def iso(t_us: int) -> str:
    """Unix microseconds as an ISO 8601 UTC instant for $filter literals."""
    t = dt.datetime.fromtimestamp(t_us / 1_000_000, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
