"""Aggregate Datastreams: hourly and daily mean / min / max / sum / count, which STA itself lacks.

Two families, both over public numeric registry Datastreams only (a classified device never feeds
an aggregate, so no aggregate can reveal it):

- per Datastream: ``<datastream>.hourly`` / ``<datastream>.daily``, on the device's own Thing;
- per wijk, kind and metric over the wijk's public devices: ``wijk.<WKcode>.<kind>.<metric>.<interval>``
  (e.g. rainfall per wijk: ``wijk.WK062601.rain_gauge.accumulation.daily``, the ``sum`` is the
  rain), on a Thing per wijk, ``wijk.<WKcode>``, that ``aggregate_things`` returns.

An aggregate Observation is one interval: its time is the interval's start (UTC; daily intervals are
UTC days, as InfluxDB's ``GROUP BY time(1d)`` aligns them), ``phenomenonTime`` is ``start/end``, and its
result is ``{"mean", "min", "max", "sum", "count"}`` over the source readings in it; intervals without
readings have no Observation. The series is an ``AggregateRef``: a SeriesRef that also names the
interval and every source tag value, so ``ObservationStore`` computes the Observations with
``GROUP BY time(...)`` over the sources in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api.sta.model import Entity, EntitySet, SeriesRef, Source
from core.kinds import KINDS, ValueType

AGGREGATE_INTERVALS = {"hourly": "1h", "daily": "1d"}
AGGREGATE_FUNCTIONS = ("mean", "min", "max", "sum")
INTERVAL_US = {"1h": 3_600_000_000, "1d": 86_400_000_000}
ISO_DURATIONS = {"1h": "PT1H", "1d": "P1D"}
OM_COMPLEX = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation"
E = EntitySet


@dataclass(frozen=True, slots=True)
class AggregateRef(SeriesRef):
    """The series of an aggregate Datastream: ``value`` is a label, ``sources`` the tag values aggregated."""

    interval: str = "1h"
    sources: tuple[str, ...] = ()

    @property
    def interval_us(self) -> int:
        """The interval's length in microseconds."""
        return INTERVAL_US[self.interval]


def wijk_thing_id(wijk: str) -> str:
    """The Thing that carries a wijk's aggregate Datastreams."""
    return f"wijk.{wijk}"


def _numeric_public_sources(base: Sequence[Entity]) -> list[Entity]:
    out = []
    for ds in base:
        if ds.set is not E.DATASTREAMS or not ds.public or ds.source is not Source.REGISTRY or ds.series is None:
            continue
        if isinstance(ds.series, AggregateRef):
            continue
        kind, metric = ds.extra.get("kind"), ds.extra.get("metric")
        if not isinstance(kind, str) or not isinstance(metric, str) or kind not in KINDS:
            continue
        spec = KINDS[kind].metrics.get(metric)
        if spec is not None and spec.type is ValueType.NUMBER:
            out.append(ds)
    return sorted(out, key=lambda d: d.id)


def _aggregate(ident: str, *, name: str, description: str, source: Entity, thing: str, interval_name: str,
               ref: AggregateRef, sources: list[str], properties: dict[str, Any]) -> Entity:
    info = {"interval": ISO_DURATIONS[ref.interval], "functions": [*AGGREGATE_FUNCTIONS, "count"],
            "sourceDatastreams": sources}
    return Entity(
        E.DATASTREAMS, ident,
        {"name": name, "description": description,
         "unitOfMeasurement": source.props.get("unitOfMeasurement"), "observationType": OM_COMPLEX,
         "properties": {**properties, "aggregate": info}},
        {"Thing": thing, "Sensor": source.links.get("Sensor"),
         "ObservedProperty": source.links.get("ObservedProperty")},
        True, Source.REGISTRY, ref,
        {**{k: v for k, v in source.extra.items() if k in ("kind", "metric", "gemeente", "wijk")},
         "aggregate": {"interval": ref.interval, "interval_name": interval_name, "sources": sources}},
    )


def aggregate_datastreams(base: Sequence[Entity]) -> list[Entity]:
    """The aggregate Datastreams derived from the registry Datastreams in base (see the module doc)."""
    sources = _numeric_public_sources(base)
    out: list[Entity] = []
    for ds in sources:
        assert ds.series is not None  # checked by _numeric_public_sources
        thing = ds.links.get("Thing")
        if not isinstance(thing, str):
            continue
        for interval_name, interval in AGGREGATE_INTERVALS.items():
            ref = AggregateRef(ds.series.measurement, ds.series.field, ds.series.tag, ds.series.value,
                               interval, (ds.series.value,))
            out.append(_aggregate(
                f"{ds.id}.{interval_name}", name=f"{ds.props.get('name', ds.id)} ({interval_name})",
                description=f"{interval_name} mean, min, max, sum and count of {ds.id}", source=ds, thing=thing,
                interval_name=interval_name, ref=ref, sources=[ds.id],
                properties={"kind": ds.extra["kind"], "metric": ds.extra["metric"]}))
    wijken: dict[tuple[str, str, str], list[Entity]] = {}
    for ds in sources:
        wijk = ds.extra.get("wijk")
        if isinstance(wijk, str):
            wijken.setdefault((wijk, ds.extra["kind"], ds.extra["metric"]), []).append(ds)
    for (wijk, kind, metric), members in sorted(wijken.items()):
        first = members[0]
        assert first.series is not None
        tag_values = tuple(sorted({m.series.value for m in members if m.series is not None}))
        for interval_name, interval in AGGREGATE_INTERVALS.items():
            ref = AggregateRef(first.series.measurement, first.series.field, first.series.tag,
                               f"wijk:{wijk}", interval, tag_values)
            out.append(_aggregate(
                f"wijk.{wijk}.{kind}.{metric}.{interval_name}", name=f"{wijk} {kind} {metric} ({interval_name})",
                description=f"{interval_name} mean, min, max, sum and count of {metric} over the public {kind} "
                f"devices of wijk {wijk}", source=first, thing=wijk_thing_id(wijk), interval_name=interval_name,
                ref=ref, sources=[m.id for m in members],
                properties={"kind": kind, "metric": metric, "wijk": wijk, "gemeente": first.extra.get("gemeente")}))
    return out


def aggregate_things(base: Sequence[Entity]) -> list[Entity]:
    """One Thing per wijk that has aggregate Datastreams (base: the registry entities, as above)."""
    streams: dict[str, list[str]] = {}
    gemeente: dict[str, Any] = {}
    for ds in aggregate_datastreams(base):
        wijk = ds.props["properties"].get("wijk")
        if ds.links.get("Thing") == wijk_thing_id(str(wijk)):
            streams.setdefault(str(wijk), []).append(ds.id)
            gemeente[str(wijk)] = ds.props["properties"].get("gemeente")
    return [
        Entity(E.THINGS, wijk_thing_id(wijk),
               {"name": f"wijk {wijk}", "description": f"aggregates over the public devices of wijk {wijk}",
                "properties": {"wijk": wijk, "gemeente": gemeente[wijk], "aggregate": True}},
               {"Locations": (), "HistoricalLocations": (), "Datastreams": tuple(ids)}, True, Source.REGISTRY)
        for wijk, ids in sorted(streams.items())
    ]
