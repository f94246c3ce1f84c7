"""Which readings become Observations: the ingest's series table, narrowed to public devices, and the screen.

The table is ingest.series_table.SeriesTable (one dict lookup gives a name's device, gateway,
value type and unit) plus, for the devices classified openbaar, the Datastream id and topic. The
screen accepts a record exactly when ingest.points.pack_lines writes it (same checks, same reject
reasons; tests/api/sta_mqtt/test_screen.py compares the two on the same packs), and only then if
its device is public: an Observation on MQTT is one the HTTP API will serve from InfluxDB.
Accepted readings leave as parallel lists, no object per reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from api.sta.model import datastream_id
from api.sta_mqtt.topics import datastream_observations_topic
from core.kinds import Classification
from core.registry import Registry
from core.senml_columns import Columns
from ingest.points import DEFAULT_BOUNDS, Rejects, TimeBounds
from ingest.series_table import SeriesTable

NOT_PUBLIC = "not_public"  # a known device not classified openbaar: never published (not an error)
_float_type = float


@dataclass(frozen=True, slots=True)
class PublicStream:
    """One public Datastream: its id and topic."""

    datastream: str
    topic: str


class StreamTable:
    """The ingest's table of every device x metric, and the public ones' Datastreams."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.series = SeriesTable(registry)
        self.public: dict[str, PublicStream] = {}
        for name, spec in self.series.specs.items():
            if registry.devices[spec.device].classification is Classification.OPENBAAR:
                ident = datastream_id(spec.device, name.partition("/")[2])
                self.public[name] = PublicStream(ident, datastream_observations_topic(ident))


class StreamCache:
    """The table of the current registry, rebuilt only when the registry object changes (a reload)."""

    def __init__(self) -> None:
        self._table: StreamTable | None = None

    def get(self, registry: Registry) -> StreamTable:
        """The table for registry."""
        table = self._table
        if table is None or table.registry is not registry:
            table = self._table = StreamTable(registry)
        return table


@dataclass(slots=True)
class Accepted:
    """The readings of a pack to publish, as parallel columns."""

    topics: list[str] = field(default_factory=list)
    datastreams: list[str] = field(default_factory=list)
    times_us: list[int] = field(default_factory=list)
    values: list[float | bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.topics)


# One function on purpose, as pack_lines: this loop runs for every reading of the city.
def screen(gateway: str, cols: Columns, table: StreamTable, *, now: float, rejects: Rejects,
           bounds: TimeBounds = DEFAULT_BOUNDS) -> Accepted:
    """The public readings of a pack from gateway that the ingest accepts; each refused one counted in rejects."""
    for err in cols.errors:
        rejects.add("bad_record", err)
    specs = table.series.specs
    public = table.public
    earliest = now - bounds.max_lateness
    latest = now + bounds.max_skew
    out = Accepted()
    topics, datastreams, times_us, values = out.topics, out.datastreams, out.times_us, out.values
    for name, value, when, unit in zip(cols.names, cols.values, cols.times, cols.units, strict=True):
        spec = specs.get(name)
        if spec is None:
            reason, message = table.series.why_unknown(name)
            rejects.add(reason, message)
            continue
        stream = public.get(name)
        if stream is None:
            rejects.add(NOT_PUBLIC, f"device {spec.device!r} is not classified openbaar")
            continue
        # From here the checks of ingest.points.pack_lines, in its order and with its reasons.
        if spec.gateway != gateway:
            rejects.add("wrong_gateway", f"device {spec.device!r} belongs to {spec.gateway!r}, not {gateway!r}")
            continue
        if spec.boolean:
            if value is not True and value is not False:
                rejects.add("wrong_type", f"{name}: expected a boolean (vb), got {value!r:.40}")
                continue
        elif type(value) is not _float_type:
            rejects.add("wrong_type", f"{name}: expected a number (v), got {value!r:.40}")
            continue
        if unit is not None and unit != spec.unit:
            rejects.add("wrong_unit", f"{name}: unit {unit[:20]!r}, the registry says {spec.unit!r}")
            continue
        if not earliest <= when <= latest:
            rejects.add("too_late" if when < earliest else "future", f"{name}: reading time outside the bounds")
            continue
        topics.append(stream.topic)
        datastreams.append(stream.datastream)
        times_us.append(int(when * 1_000_000 + 0.5))  # ingest.points.micros, inline: the ingest's timestamp
        values.append(value)
    return out
