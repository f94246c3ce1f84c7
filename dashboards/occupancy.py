"""Occupancy: pedestrian counts and parking occupancy per wijk and hour (counts, never identities)."""

from __future__ import annotations

from typing import Any

from dashboards import annotations as notes
from dashboards import panels as p
from dashboards import variables as v
from dashboards.influxql import InfluxQL

UID = "smartcity-occupancy"
TITLE = "Smart city: occupancy"
TZ = "tz('Europe/Amsterdam')"

# occupancy.count is the number of people counted in the node's report interval: an hour's sum is
# the people counted in that hour.
PEOPLE_PER_HOUR = ('SELECT sum("count") AS "people" FROM "occupancy" '
                   f'WHERE $timeFilter AND {v.AREA} GROUP BY time(1h), "wijk" fill(0) {TZ}')
PEOPLE_TOTAL = f'SELECT sum("count") AS "people" FROM "occupancy" WHERE $timeFilter AND {v.AREA}'
_SPOT_HOUR = ('SELECT last("occupied") AS "occupied" FROM "parking_spot" '
              f'WHERE $timeFilter AND {v.AREA} GROUP BY time(1h), "device", "wijk" fill(previous) {TZ}')
# Spots whose last reading in the hour was occupied, and all spots with a reading up to that hour.
PARKING_OCCUPIED = (f'SELECT count("occupied") AS "occupied" FROM ({_SPOT_HOUR}) '
                    f'WHERE $timeFilter AND "occupied" = true GROUP BY time(1h), "wijk" fill(0) {TZ}')
PARKING_SPOTS = (f'SELECT count("occupied") AS "spots" FROM ({_SPOT_HOUR}) '
                 f'WHERE $timeFilter GROUP BY time(1h), "wijk" fill(0) {TZ}')
PRESENCE_TIMELINE = ('SELECT last("presence") AS "presence" FROM "occupancy" '
                     f'WHERE $timeFilter AND {v.AREA} GROUP BY time($__interval), "device" fill(previous)')


def build() -> dict[str, Any]:
    """The occupancy dashboard JSON."""
    panel_list: list[p.PanelBuilder] = [
        p.stat_panel("People counted", "People counted by the pedestrian counters in the selected area over "
                     "the time range (sum of occupancy.count).", [InfluxQL(PEOPLE_TOTAL).table()], w=6, h=8),
        p.timeseries_panel("Pedestrians per wijk and hour", "People counted per Europe/Amsterdam hour and wijk "
                           "(sum of the counters' per-interval counts).",
                           [InfluxQL(PEOPLE_PER_HOUR).alias("$tag_wijk")], w=18, h=8, bars=True, stacked=True),
        p.timeseries_panel("Parking occupancy per wijk and hour", "Per hour and wijk: parking spots whose last "
                           "reading in the hour was occupied, and all spots reporting.",
                           [InfluxQL(PARKING_OCCUPIED).alias("occupied $tag_wijk"),
                            InfluxQL(PARKING_SPOTS).ref_id("B").alias("spots $tag_wijk")], w=12, h=8, bars=True),
        p.state_timeline_panel("Presence per counter", "Each pedestrian counter's presence flag (someone "
                               "there in its interval).", [InfluxQL(PRESENCE_TIMELINE).alias("$tag_device")],
                               mappings=p.bool_mapping("people", "green", "quiet", "transparent"), w=12, h=8),
    ]
    return p.dashboard(UID, TITLE, "Pedestrian counts and parking occupancy per wijk and hour.",
                       tags=["smartcity", "occupancy"], panels=panel_list, variables=v.standard(),
                       annotations=[notes.rule_events()])
