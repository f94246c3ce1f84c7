"""Rain and cycling: rain intensity per gauge and wijk, bike priority periods, minutes of each per day.

Minutes per day (of rain, of bike priority) are counted on a one-minute grid: the inner query takes
each minute's latest reading per wijk and carries it forward over minutes without one
(``fill(previous)``), so a gauge that reports every few minutes still covers the minutes between its
readings; the outer query counts the minutes with rain (max intensity > 0) or with bike priority on
(a bool can be compared, not summed). This is the time integral of a 0/1 sample-and-hold series at
one-minute resolution, independent of how often the devices report. Before the first reading in
the range a wijk has no value and counts no minute.
"""

from __future__ import annotations

from typing import Any

from dashboards import annotations as notes
from dashboards import panels as p
from dashboards import variables as v
from dashboards.influxql import InfluxQL

UID = "smartcity-rain-cycling"
TITLE = "Smart city: rain and cycling"
TZ = "tz('Europe/Amsterdam')"

RAIN_PER_GAUGE = ('SELECT mean("rain_intensity") AS "rain_intensity" FROM "rain_gauge" '
                  f'WHERE $timeFilter AND {v.AREA} GROUP BY time($__interval), "device", "wijk" fill(none)')
RAIN_PER_WIJK = ('SELECT max("rain_intensity") AS "rain_intensity" FROM "rain_gauge" '
                 f'WHERE $timeFilter AND {v.AREA} GROUP BY time($__interval), "wijk" fill(none)')
BIKE_PRIORITY_TIMELINE = ('SELECT last("bike_priority") AS "bike_priority" FROM "traffic_light" '
                          f'WHERE $timeFilter AND {v.AREA} GROUP BY time($__interval), "device" fill(previous)')
RAIN_MINUTES = (
    'SELECT count("rain") AS "rain_minutes" FROM (SELECT max("rain_intensity") AS "rain" FROM "rain_gauge" '
    f'WHERE $timeFilter AND {v.AREA} GROUP BY time(1m), "wijk" fill(previous)) '
    f'WHERE $timeFilter AND "rain" > 0 GROUP BY time(1d), "wijk" fill(none) {TZ}')
BIKE_PRIORITY_MINUTES = (
    'SELECT count("on") AS "bike_priority_minutes" FROM (SELECT last("bike_priority") AS "on" FROM "traffic_light" '
    f'WHERE $timeFilter AND {v.AREA} GROUP BY time(1m), "wijk" fill(previous)) '
    f'WHERE $timeFilter AND "on" = true GROUP BY time(1d), "wijk" fill(none) {TZ}')
BIKE_PRIORITY_EVENTS = ('SELECT "event", "group" AS "wijk", "active" FROM "rule_event" '
                        f"WHERE $timeFilter AND {v.AREA_OR_CITYWIDE} AND \"rule\" = '{notes.BIKE_PRIORITY_RULE}'")


def build() -> dict[str, Any]:
    """The rain and cycling dashboard JSON."""
    panel_list: list[p.PanelBuilder] = [
        p.timeseries_panel("Rain intensity per gauge", "Mean rain intensity of each rain gauge (RG-15) in the "
                           "interval.", [InfluxQL(RAIN_PER_GAUGE).alias("$tag_device ($tag_wijk)")],
                           unit="mm/h", w=12, h=8),
        p.timeseries_panel("Rain intensity per wijk", "Highest rain intensity of the wijk's gauges in the "
                           "interval.", [InfluxQL(RAIN_PER_WIJK).alias("$tag_wijk")], unit="mm/h", w=12, h=8),
        p.state_timeline_panel("Bike priority per traffic light", "Each traffic light's bike_priority flag, "
                               "held until its next reading; the annotations mark the rain-bike-priority "
                               "rule's activations and clears.",
                               [InfluxQL(BIKE_PRIORITY_TIMELINE).alias("$tag_device")],
                               mappings=p.bool_mapping("bike priority", "blue", "normal", "transparent"),
                               w=24, h=6),
        p.barchart_panel("Minutes of rain and of bike priority per day", "Per Europe/Amsterdam day and wijk: "
                         "minutes with rain (a gauge's latest reading > 0 mm/h) and minutes with bike priority "
                         "on (a traffic light's latest reading), on a one-minute grid carrying each reading "
                         "forward (see dashboards/rain_cycling.py).",
                         [InfluxQL(RAIN_MINUTES).alias("rain $tag_wijk"),
                          InfluxQL(BIKE_PRIORITY_MINUTES).ref_id("B").alias("bike priority $tag_wijk")],
                         unit="m", w=12, h=8),
        p.table_panel("Bike priority rule events", "Activations and clears of the rain-bike-priority rule "
                      "per wijk.", [InfluxQL(BIKE_PRIORITY_EVENTS).table()], w=12, h=8),
    ]
    return p.dashboard(UID, TITLE, "Rain per gauge and wijk and the bike priority it triggers.",
                       tags=["smartcity", "rain", "cycling"], panels=panel_list, variables=v.standard(),
                       annotations=[notes.bike_priority(), notes.commands()], time_from="now-7d")
