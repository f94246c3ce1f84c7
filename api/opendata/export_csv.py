"""CSV export of one device kind's readings over a period, streamed from InfluxDB in time chunks.

``GET /v1/export/{kind}.csv?from=&to=[&gemeente=]`` gives ``time,device,gemeente,wijk,<metrics>``, one row
per device and reading time, public devices only. Bounded twice so one request cannot tie up
the service: the period is at most ``MAX_PERIOD``, and a period that holds more than
``MAX_ROWS`` points (InfluxDB's own count, asked before anything is sent) is refused with 400
naming the limit, so a client is never handed a silently cut file. The rows are fetched one
``CHUNK`` of time at a time and written out as they come: memory stays at one chunk however
long the period. If InfluxDB fails after the first bytes are out, the response is cut off
(the client sees an incomplete transfer, not a short file that looks whole); before that, the
answer is a clean 503.

gemeente and wijk are the tags stored with each reading (where the device was then), with the
registry's current codes only where a reading lacks them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import StreamingResponse

from api.deps import InfluxDep, RegistryDep
from api.opendata.public import device_condition, iso_us, known_kind, public_devices, to_us, utc
from core.influx import InfluxClient, InfluxError
from core.kinds import KINDS, Kind
from core.registry import Device

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["open data"])

MAX_PERIOD = dt.timedelta(days=31)
DEFAULT_PERIOD = dt.timedelta(days=1)
MAX_ROWS = 1_000_000
CHUNK_US = 3_600 * 1_000_000  # one hour of a few hundred devices is a few tens of thousands of rows
STORE_UNAVAILABLE = "time-series store unavailable; try again later"
# InfluxDB keeps nanoseconds in an int64 (years 1677-2262); asked outside, it fails the query.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
TAG_COLUMNS = ("device", "gemeente", "wijk")


def _csv_line(values: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    return value


class Export:
    """One export: the query bounds and the generator of its CSV text."""

    def __init__(self, influx: InfluxClient, kind: Kind, devices: list[Device], *, start_us: int, end_us: int,
                 max_rows: int = MAX_ROWS) -> None:
        self.influx = influx
        self.kind = kind
        self.devices = {d.id: d for d in devices}
        self.start_us = start_us
        self.end_us = end_us
        self.max_rows = max_rows
        self.metrics = list(kind.metrics)
        self.where = device_condition(devices) if devices else ""

    def header(self) -> list[str]:
        """The CSV header row."""
        return ["time", *TAG_COLUMNS, *self.metrics]

    def count(self) -> int:
        """Points in the period (the largest per-field count: a point has at least one field)."""
        if not self.devices:
            return 0
        series = self.influx.query(f'SELECT COUNT(*) FROM "{self.kind.name}" WHERE time >= {self.start_us}u '
                                   f"AND time < {self.end_us}u AND {self.where}", epoch="u")
        counts = [v for s in series for row in s.values for v in row[1:] if isinstance(v, int)]
        return max(counts, default=0)

    def _chunk(self, start: int, end: int, limit: int) -> list[list[Any]]:
        fields = ",".join(f'"{m}"' for m in self.metrics)
        tags = ",".join(f'"{t}"' for t in TAG_COLUMNS)
        series = self.influx.query(f'SELECT {fields},{tags} FROM "{self.kind.name}" WHERE time >= {start}u '
                                   f"AND time < {end}u AND {self.where} LIMIT {limit}", epoch="u")
        rows: list[list[Any]] = []
        for s in series:
            index = {c: i for i, c in enumerate(s.columns)}
            for v in s.values:
                device = self.devices.get(v[index["device"]])
                if device is None:  # belt and braces: never a row of a non-public device
                    continue
                rows.append([v[index["time"]], device.id,
                             v[index["gemeente"]] or device.gemeente, v[index["wijk"]] or device.wijk,
                             *(_cell(v[index[m]]) for m in self.metrics)])
        rows.sort(key=lambda r: (r[0], r[1]))
        return rows

    def lines(self) -> Iterator[bytes]:
        """The CSV, one chunk of time per yielded piece."""
        yield _csv_line(self.header()).encode()
        if not self.devices:
            return
        sent = 0
        start = self.start_us
        while start < self.end_us and sent < self.max_rows:
            end = min(start + CHUNK_US, self.end_us)
            rows = self._chunk(start, end, self.max_rows - sent)
            if rows:
                out = io.StringIO()
                writer = csv.writer(out, lineterminator="\n")
                for row in rows:
                    row[0] = iso_us(row[0])
                    writer.writerow(row)
                sent += len(rows)
                yield out.getvalue().encode()
            start = end


@router.get("/export/{kind}.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "the readings as CSV"}})
def export_csv(registry: RegistryDep, influx: InfluxDep, *,
               kind: Annotated[str, Path(max_length=64, description="device kind",
                                         json_schema_extra={"enum": sorted(KINDS)})],
               start: Annotated[dt.datetime | None, Query(alias="from", description="start (inclusive), ISO 8601; "
                                                          "default: a day before `to`")] = None,
               end: Annotated[dt.datetime | None, Query(alias="to", description="end (exclusive), ISO 8601; "
                                                        "default: now")] = None,
               gemeente: Annotated[str | None, Query(pattern=r"^GM\d{4}$", description="only this gemeente "
                                                     "(CBS code)")] = None) -> StreamingResponse:
    """The readings of every public device of one kind between `from` and `to` (at most 31 days) as CSV."""
    found = known_kind(kind)
    end_t = utc(end) if end is not None else dt.datetime.now(dt.UTC)
    start_t = utc(start) if start is not None else end_t - DEFAULT_PERIOD
    if not (EARLIEST <= start_t <= LATEST and EARLIEST <= end_t <= LATEST):
        raise HTTPException(400, "'from' and 'to' must lie between 1970 and 2200")
    if start_t >= end_t:
        raise HTTPException(400, "'from' must be before 'to'")
    if end_t - start_t > MAX_PERIOD:
        raise HTTPException(400, f"period too long: at most {MAX_PERIOD.days} days per export")
    devices = [d for d in public_devices(registry, found.name) if gemeente is None or d.gemeente == gemeente]
    export = Export(influx, found, devices, start_us=to_us(start_t), end_us=to_us(end_t),
                    max_rows=MAX_ROWS)
    try:
        rows = export.count()
    except InfluxError as exc:
        log.warning("export: InfluxDB count failed: %s", exc)
        raise HTTPException(503, STORE_UNAVAILABLE) from None
    if rows > export.max_rows:
        raise HTTPException(400, f"the period holds {rows} readings, more than the {export.max_rows} "
                                 "an export may hold: ask a shorter period")
    name = f"{found.name}_{gemeente + '_' if gemeente else ''}{start_t:%Y%m%dT%H%M%SZ}_{end_t:%Y%m%dT%H%M%SZ}.csv"
    return StreamingResponse(export.lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
