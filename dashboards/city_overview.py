"""City overview: every device on a map by status, open alarms, gateways online / offline, readings per minute."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.models import dashboard as dm

from dashboards import annotations as notes
from dashboards import panels as p
from dashboards import variables as v
from dashboards.influxql import InfluxQL

UID = "smartcity-city-overview"
TITLE = "Smart city: overview"

# One measurement per device kind, and a field every reading of that kind carries.
KIND_FIELDS = (("street_light", "power"), ("rain_gauge", "rain_intensity"), ("occupancy", "count"),
               ("parking_spot", "occupied"), ("traffic_light", "cycle_time"))

# Latest status per device, flattened by an outer raw select so that device and kind are columns of
# one table (one row per device) rather than tags of one series per device.
DEVICE_STATUS = (
    'SELECT "device", "kind", "wijk", "lat", "lon", "code", "status", "age_s" FROM ('
    'SELECT last("lat") AS "lat", last("lon") AS "lon", last("code") AS "code", last("status") AS "status", '
    'last("age_s") AS "age_s" FROM "device_status" WHERE $timeFilter AND ' + v.AREA +
    ' GROUP BY "device", "kind", "wijk")')

# An alarm is open when the latest point of its rule and group is raised or acknowledged.
OPEN_ALARMS = (
    'SELECT "rule", "group", "severity", "state", "id", "text" FROM ('
    'SELECT last("id") AS "id", "state", "severity", "text" FROM "alarm" WHERE $timeFilter AND '
    + v.AREA_OR_CITYWIDE + ' GROUP BY "rule", "group") WHERE "state" != \'cleared\'')
OPEN_ALARM_COUNT = (
    'SELECT count("id") AS "open" FROM ('
    'SELECT last("id") AS "id", "state" FROM "alarm" WHERE $timeFilter AND '
    + v.AREA_OR_CITYWIDE + ' GROUP BY "rule", "group") WHERE "state" != \'cleared\'')

_GATEWAY_LAST = ('SELECT last("online") AS "online" FROM "gateway_status" WHERE $timeFilter AND '
                 + v.GATEWAYS + ' GROUP BY "gateway"')
GATEWAYS_ONLINE = f'SELECT count("online") AS "online" FROM ({_GATEWAY_LAST}) WHERE "online" = true'
GATEWAYS_TOTAL = f'SELECT count("online") AS "gateways" FROM ({_GATEWAY_LAST})'
GATEWAY_ONLINE_TIMELINE = ('SELECT last("online") AS "online" FROM "gateway_status" WHERE $timeFilter AND '
                           + v.GATEWAYS + ' GROUP BY time($__interval), "gateway" fill(previous)')


def readings_per_minute() -> list[InfluxQL]:
    """One target per kind: readings counted per minute (a reading = a point of the kind's measurement)."""
    return [InfluxQL(f'SELECT count("{field}") AS "{kind}" FROM "{kind}" WHERE $timeFilter AND {v.AREA} '
                     'GROUP BY time(1m) fill(0)').ref_id(chr(ord("A") + i)).alias(kind)
            for i, (kind, field) in enumerate(KIND_FIELDS)]


def build() -> dict[str, Any]:
    """The city overview dashboard JSON."""
    panel_list: list[p.PanelBuilder] = [
        p.geomap_panel("Devices by status", "Every device of the selected gemeenten and wijken at its registry "
                       "location, coloured by its latest status from device_status: green ok, orange fault "
                       "(e.g. lamp failure), red silent (no reading for silent_after seconds).",
                       InfluxQL(DEVICE_STATUS).table(), w=16, h=14),
        p.stat_panel("Open alarms", "Alarms whose latest state (per rule and group) is raised or acknowledged, "
                     "from the alarm measurement; city-wide alarms are always included.",
                     [InfluxQL(OPEN_ALARM_COUNT).table()], w=4, h=7, steps=((None, "green"), (1, "red"))),
        p.stat_panel("Gateways online", "Gateways whose latest gateway_status is online, and all gateways "
                     "reporting in the range.",
                     [InfluxQL(GATEWAYS_ONLINE).table(), InfluxQL(GATEWAYS_TOTAL).ref_id("B").table()],
                     w=4, h=7, steps=((None, "green"),)),
        p.table_panel("Open alarm list", "Open alarms (latest state raised or acknowledged) with rule, group "
                      "(wijk or device), severity and text.", [InfluxQL(OPEN_ALARMS).table()], w=12, h=7),
        p.state_timeline_panel("Gateways online / offline", "Each gateway's online flag from gateway_status "
                               "(the birth and last-will messages), held until the next change.",
                               [InfluxQL(GATEWAY_ONLINE_TIMELINE).alias("$tag_gateway")],
                               mappings=p.bool_mapping("online", "green", "offline", "red"), w=12, h=6),
        p.timeseries_panel("Readings per minute", "Readings stored per minute, per device kind (points of each "
                           "kind's measurement in the selected area).", readings_per_minute(), w=24, h=6,
                           bars=True, stacked=True),
        p.table_panel("Device status", "Latest status of every device (from device_status): kind, wijk, "
                      "status, and seconds since its last reading (-1: none in the look-back).",
                      [InfluxQL(DEVICE_STATUS).table()], w=24, h=8,
                      mappings=[dm.ValueMap(options={
                          s: dm.ValueMappingResult(color=c, index=i)
                          for i, (s, c) in enumerate(p.STATUS_COLOURS)})]),
    ]
    return p.dashboard(UID, TITLE, "Where every device is and how it is, open alarms, gateways and data flow.",
                       tags=["smartcity"], panels=panel_list, variables=v.standard(with_gateway=True),
                       annotations=[notes.rule_events()])
