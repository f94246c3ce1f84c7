"""Observations POSTed through the API, as InfluxDB points.

Two destinations, by the Datastream's source:

- An API-created Datastream: measurement ``sta_observation``, tag ``datastream``, one field per
  value type (``result`` float for OM_Measurement / OM_Observation, ``result_count`` integer,
  ``result_truth`` boolean, ``result_category`` string: see metadata_store.RESULT_FIELDS), because
  InfluxDB fixes a field's type and all API Datastreams share the measurement.
- A registry Datastream: the device kind's measurement, written exactly as the ingest writes a
  reading: the Observation becomes a one-record SenML pack that goes through
  ``core.senml_columns.decode_columns`` and ``ingest.points.pack_lines`` (registry membership,
  value type, lateness and clock-skew bounds, tags from the registry). What the ingest would
  reject is refused with its reason, so the API is no back door past the ingest's rules.

InfluxDB keeps one value per series and time, and only ``phenomenonTime``: ``resultTime`` must be
absent, null or the same instant; ``resultQuality``, ``validTime`` and ``parameters`` cannot be
kept (501), and so cannot a phenomenonTime interval.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api.sta.metadata_store import OM, RESULT_FIELDS, api_series
from api.sta.model import API_MEASUREMENT, Entity, SeriesRef
from api.sta.query.influxql import influx_ident, influx_string
from api.sta.write_validation import WriteError, bad, short, time_us
from core.influx import InfluxClient
from core.line_protocol import line
from core.numbers import finite_float
from core.senml_columns import RELATIVE_TIME_LIMIT, decode_columns
from ingest.points import Rejects, pack_lines
from ingest.series_table import SeriesTable

MAX_CATEGORY = 1_000  # characters of a category result (a URI or a term)


@dataclass(frozen=True, slots=True)
class ObservationWrite:
    """One Observation ready for InfluxDB: its Datastream, time (its id) and line protocol."""

    datastream: str
    time_us: int
    line: str
    result: Any
    series: SeriesRef | None  # where it is read from (the $count cache must forget its day)


def observation_time(props: dict[str, Any], where: str, now_us: int) -> int:
    """The Observation's time in microseconds: phenomenonTime, or now when absent (18-088, 10.2)."""
    for name in ("resultQuality", "validTime"):
        if props.get(name) is not None:
            raise WriteError(501, f"{_at(where, name)}: not supported (InfluxDB keeps only the time and result)")
    if props.get("parameters") not in (None, {}):
        raise WriteError(501, f"{_at(where, 'parameters')}: not supported (InfluxDB keeps only the time and result)")
    phenomenon = props.get("phenomenonTime")
    if isinstance(phenomenon, str) and "/" in phenomenon:
        raise WriteError(501, f"{_at(where, 'phenomenonTime')}: intervals are not supported, give an instant")
    when = now_us if phenomenon is None else time_us(phenomenon, _at(where, "phenomenonTime"))
    result_time = props.get("resultTime")
    if result_time is not None and time_us(result_time, _at(where, "resultTime")) != when:
        raise WriteError(501, f"{_at(where, 'resultTime')}: must be null or equal phenomenonTime "
                              "(one time is kept per Observation)")
    if "result" not in props:
        raise bad(_at(where, "result"), "missing (mandatory for an Observation)")
    return when


def api_result(observation_type: str, result: Any, where: str) -> float | int | bool | str:
    """The result as the Datastream's observationType stores it; 400 naming what is wrong."""
    path = _at(where, "result")
    kind = observation_type.removeprefix(OM)
    if kind in ("OM_Measurement", "OM_Observation"):
        number = finite_float(result)  # refuses booleans, and integers beyond float range
        if number is None:
            raise bad(path, f"must be a finite number for an {kind} Datastream, got {short(result)}")
        return number
    if kind == "OM_CountObservation":
        if isinstance(result, bool) or not isinstance(result, int) or abs(result) >= 2**63:
            raise bad(path, f"must be an integer for an OM_CountObservation Datastream, got {short(result)}")
        return result
    if kind == "OM_TruthObservation":
        if not isinstance(result, bool):
            raise bad(path, f"must be true or false for an OM_TruthObservation Datastream, got {short(result)}")
        return result
    if not isinstance(result, str) or not result or len(result) > MAX_CATEGORY:
        raise bad(path, f"must be a string of 1-{MAX_CATEGORY} characters for an OM_CategoryObservation "
                        f"Datastream, got {short(result)}")
    return result


def api_observation(datastream: str, observation_type: str, when_us: int, result: Any,
                    where: str) -> ObservationWrite:
    """An Observation of an API Datastream as a point of sta_observation."""
    value = api_result(observation_type, result, where)
    field = RESULT_FIELDS.get(observation_type, "result")
    point = line(API_MEASUREMENT, {"datastream": datastream}, {field: value}, when_us)
    return ObservationWrite(datastream, when_us, point, value, api_series(datastream, observation_type))


def registry_observation(table: SeriesTable, stream: Entity, when_us: int, result: Any, *, where: str,
                         now: float) -> ObservationWrite:
    """An Observation of a registry Datastream through the ingest's own decode and validation."""
    name = f"{stream.extra['device']}/{stream.extra['metric']}"
    record: dict[str, Any] = {"n": name}
    if isinstance(result, bool):
        record["vb"] = result
    elif isinstance(result, int | float):
        record["v"] = result
    elif isinstance(result, str):
        record["vs"] = result  # refused by pack_lines with the ingest's own wrong_type message
    else:
        raise bad(_at(where, "result"), f"must be a number or a boolean, got {short(result)}")
    seconds = when_us / 1_000_000
    if seconds < RELATIVE_TIME_LIMIT:
        # SenML would read a time this small as relative to now; the ingest refuses it as too late anyway.
        raise bad(_at(where, "phenomenonTime"), "older than the ingest accepts for a registry Datastream")
    record["t"] = seconds
    cols = decode_columns(json.dumps([record]), now=now)
    spec = table.specs.get(name)
    rejects = Rejects()
    lines = pack_lines(spec.gateway if spec else "", cols, table, now=now, rejects=rejects)
    if not lines:
        reason = next(iter(rejects.first.items()), ("rejected", "refused"))
        field = "phenomenonTime" if reason[0] in ("too_late", "future") else "result"
        raise bad(_at(where, field), f"refused as the ingest refuses it ({reason[0]}): {reason[1]}")
    text = lines[0]
    return ObservationWrite(stream.id, int(text.rsplit(" ", 1)[1]), text, cols.values[0], stream.series)


def write(influx: InfluxClient, writes: Sequence[ObservationWrite]) -> None:
    """Write the points in one request (raises core.influx.InfluxError)."""
    if writes:
        influx.write("\n".join(w.line for w in writes), precision="u")


DAY_US = 86_400 * 1_000_000


def observation_days(influx: InfluxClient, ref: SeriesRef) -> list[int]:
    """The start (us) of each UTC day with an Observation of ref's series (for the $count cache)."""
    series = f"FROM {influx_ident(ref.measurement)} WHERE {influx_ident(ref.tag)} = {influx_string(ref.value)}"
    bounds = influx.query(f"SELECT first({influx_ident(ref.field)}) {series}; "
                          f"SELECT last({influx_ident(ref.field)}) {series}", epoch="u")
    if len(bounds) < 2:
        return []
    first, last = int(bounds[0].values[0][0]), int(bounds[1].values[0][0])
    rows = influx.query(f"SELECT count({influx_ident(ref.field)}) {series} AND time >= {first - first % DAY_US}u "
                        f"AND time <= {last}u GROUP BY time(1d) fill(none)", epoch="u")
    return [int(row[0]) for s in rows for row in s.values]


def drop_observations(influx: InfluxClient, datastreams: Sequence[str]) -> None:
    """Delete every Observation of API Datastreams (a Datastream deleted, or its FeatureOfInterest)."""
    if not datastreams:
        return
    condition = " OR ".join(f'"datastream" = {influx_string(d)}' for d in datastreams)
    # InfluxDB documents DELETE as a POST to /query; InfluxClient.query sends GET (which 1.6 also takes).
    influx._request("POST", "/query", params={
        "db": influx.config.database, "q": f"DELETE FROM {influx_ident(API_MEASUREMENT)} WHERE {condition}"})


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
