"""Deleting one Observation from InfluxDB 1.x, which deletes whole points, never one field of a point.

The ingest writes one point per device and time with every metric of that moment as a field, so
``DELETE ... WHERE time = t`` would also delete the device's other metrics at t. The point is
therefore read first (``GROUP BY *`` gives each series' full tag set), deleted, and written back
without the deleted field, with each remaining field in its stored type (``SHOW FIELD KEYS``).
Not atomic: a reader between the delete and the rewrite may miss the other fields for a moment,
and a crash between them loses them; deletes are rare operator actions, and this is the only way
InfluxDB 1.x offers.
"""

from __future__ import annotations

from api.sta.model import SeriesRef
from api.sta.observation_select import conditions, series_filter, time_literal
from api.sta.query.influxql import influx_ident
from core.influx import InfluxClient
from core.line_protocol import line


def _typed(value: object, kind: str) -> float | int | bool | str | None:
    if value is None:
        return None
    if kind == "boolean" or isinstance(value, bool):
        return bool(value)
    if kind == "float" and isinstance(value, int | float):
        return float(value)
    if kind == "integer" and isinstance(value, int | float):
        return int(value)
    return str(value)


def delete_point(influx: InfluxClient, ref: SeriesRef, time_us: int) -> None:
    """Remove ref's field at time_us, keeping the other fields of the point(s) there."""
    measurement = influx_ident(ref.measurement)
    where = conditions(series_filter(ref.tag, [ref.value]), f"time = {time_literal(time_us)}")
    types: dict[str, str] = {}
    for s in influx.query(f"SHOW FIELD KEYS FROM {measurement}", epoch=None):
        for name, kind in s.values:
            types[str(name)] = str(kind)
    keep: list[str] = []
    for s in influx.query(f"SELECT * FROM {measurement}{where} GROUP BY *", epoch="u"):
        for row in s.values:
            fields = {}
            for column, value in zip(s.columns[1:], row[1:], strict=True):
                typed = _typed(value, types.get(column, "float"))
                if column != ref.field and typed is not None:
                    fields[column] = typed
            if fields:
                keep.append(line(ref.measurement, s.tags, fields, time_us))
    influx.query(f"DELETE FROM {measurement}{where}", epoch=None)
    if keep:
        influx.write("\n".join(keep), precision="u")
