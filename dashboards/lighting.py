"""Street lighting and energy: power and energy per wijk, dim levels, lamp failures, energy saved by dimming."""

from __future__ import annotations

from typing import Any

from dashboards import annotations as notes
from dashboards import energy
from dashboards import panels as p
from dashboards import variables as v
from dashboards.influxql import InfluxQL

UID = "smartcity-lighting-energy"
TITLE = "Smart city: street lighting and energy"
TZ = energy.TZ

# The wijk's power is the sum over its lamps of each lamp's mean in the interval (the inner query),
# so that a lamp reporting twice in an interval is not counted twice.
POWER_PER_WIJK = (
    'SELECT sum("power") AS "power" FROM (SELECT mean("power") AS "power" FROM "street_light" '
    f'WHERE $timeFilter AND {v.AREA} GROUP BY time($__interval), "device", "wijk" fill(none)) '
    'WHERE $timeFilter GROUP BY time($__interval), "wijk" fill(none)')
# The lamps' own energy meters (cumulative kWh): the day's spread per lamp, summed per wijk.
METER_ENERGY_PER_WIJK = (
    'SELECT sum("kwh") AS "kwh" FROM (SELECT spread("energy") AS "kwh" FROM "street_light" '
    f'WHERE $timeFilter AND {v.AREA} GROUP BY time(1d), "device", "wijk" fill(none) {TZ}) '
    f'WHERE $timeFilter GROUP BY time(1d), "wijk" fill(none) {TZ}')
DIM_PER_WIJK = ('SELECT mean("dim_level") AS "dim_level" FROM "street_light" '
                f'WHERE $timeFilter AND {v.AREA} GROUP BY time($__interval), "wijk" fill(none)')
LAMP_FAILURE_TIMELINE = ('SELECT last("lamp_failure") AS "lamp_failure" FROM "street_light" '
                         f'WHERE $timeFilter AND {v.AREA} GROUP BY time($__interval), "device" fill(previous)')
FAILED_NOW = ('SELECT count("failed") AS "failed" FROM (SELECT last("lamp_failure") AS "failed" FROM "street_light" '
              f'WHERE $timeFilter AND {v.AREA} GROUP BY "device") WHERE "failed" = true')
LAMPS = ('SELECT count("failed") AS "lamps" FROM (SELECT last("lamp_failure") AS "failed" FROM "street_light" '
         f'WHERE $timeFilter AND {v.AREA} GROUP BY "device")')
LAMP_FAILURE_EVENTS = ('SELECT "event", "group" AS "device", "wijk", "active" FROM "rule_event" '
                       f"WHERE $timeFilter AND {v.AREA} AND \"rule\" = 'lamp-failure'")


def build() -> dict[str, Any]:
    """The street lighting and energy dashboard JSON."""
    panel_list: list[p.PanelBuilder] = [
        p.stat_panel("Lamps failed now", "Street lights whose latest reading reports a lamp failure "
                     "(lamp_failure = true), and all lamps reporting in the range.",
                     [InfluxQL(FAILED_NOW).table(), InfluxQL(LAMPS).ref_id("B").table()], w=6, h=6,
                     steps=((None, "green"), (1, "red"))),
        p.barchart_panel(energy.PANEL_TITLE, "Energy saved by dimming compared with the always-on baseline "
                         "(the same lamps at 100 % whenever lit), per Europe/Amsterdam day: the integral of "
                         "power * (100 - dim) / dim per lamp, summed over the wijk. One panel per selected "
                         "wijk. Definition: dashboards/energy.py.",
                         [InfluxQL(energy.daily_saved_kwh_query())], unit="kwatth", w=9, h=6)
        .repeat("wijk").repeat_direction("h").max_per_row(4),
        p.barchart_panel("Energy saving in $wijk (% of baseline per day)", "Saved kWh as a share of the "
                         "always-on baseline (actual + saved), per Europe/Amsterdam day. One panel per "
                         "selected wijk.", [InfluxQL(energy.daily_saved_pct_query())], unit="percent", w=9, h=6)
        .repeat("wijk").repeat_direction("h").max_per_row(4),
        p.table_panel(energy.TABLE_TITLE, "Per Europe/Amsterdam day: actual kWh (integral of power), the "
                      "always-on baseline, the kWh saved by dimming and the saving in %. One table per "
                      "selected wijk.", [InfluxQL(energy.daily_energy_query()).table()], w=24, h=6)
        .repeat("wijk").repeat_direction("v"),
        p.timeseries_panel("Power per wijk", "Electrical power of the street lights, summed per wijk (each "
                           "lamp's mean in the interval).", [InfluxQL(POWER_PER_WIJK).alias("$tag_wijk")],
                           unit="watt", w=12, h=8),
        p.barchart_panel("Energy per wijk per day (lamp meters)", "kWh per Europe/Amsterdam day from the "
                         "lamps' own cumulative energy meters (spread per lamp, summed per wijk).",
                         [InfluxQL(METER_ENERGY_PER_WIJK).alias("$tag_wijk")], unit="kwatth", w=12, h=8),
        p.timeseries_panel("Dim level per wijk", "Mean dim level of the street lights per wijk (0 % off by "
                           "day, 100 % full).", [InfluxQL(DIM_PER_WIJK).alias("$tag_wijk")], unit="percent",
                           w=12, h=8),
        p.state_timeline_panel("Lamp failures", "Each street light's lamp_failure flag, held until its next "
                               "reading.", [InfluxQL(LAMP_FAILURE_TIMELINE).alias("$tag_device")],
                               mappings=p.bool_mapping("failed", "red", "ok", "green"), w=12, h=8),
        p.table_panel("Lamp failure rule events", "Activations and clears of the lamp-failure rule (the "
                      "group is the street light).", [InfluxQL(LAMP_FAILURE_EVENTS).table()], w=24, h=6),
    ]
    return p.dashboard(UID, TITLE, "Street lights: power, energy, dim levels, failures and the energy saved "
                       "by dimming.", tags=["smartcity", "lighting", "energy"], panels=panel_list,
                       variables=v.standard(), annotations=[notes.rule_events(), notes.commands()],
                       time_from="now-7d")
