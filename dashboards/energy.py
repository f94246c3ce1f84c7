"""Energy saved by dimming, compared with an always-on baseline: the InfluxQL and its definition.

Definition (the municipalities' stated aim is to save energy by dimming):

- The always-on baseline is the same lamps at 100 % whenever they are lit. A lamp at dim level
  d > 0 % drawing P W would draw P * 100 / d at full level, so dimming saves P * (100 - d) / d W.
  At d = 0 (off by day) the baseline is off too and nothing is saved; InfluxQL's x / 0 = 0 gives
  exactly that, so the expression is ``"power" * (100 - "dim_level") / "dim_level"`` for every reading.
- Saved kWh of a lamp on a day is the time integral of that saving: InfluxQL's
  ``integral(saved_w, 1h) / 1000``, trapezoids between consecutive readings. With GROUP BY time(1d)
  InfluxDB interpolates linearly at the bucket edges, so the trapezoid that spans midnight is split
  at midnight between the two days (checked on influxd 1.6.7: 0 W at 23:00 and 10 W at 01:00 give
  2.5 Wh to the first day and 7.5 Wh to the second).
- Days are Europe/Amsterdam days (``tz('Europe/Amsterdam')``).
- Actual kWh is the integral of ``power`` the same way; baseline kWh = actual + saved; the saving in
  per cent = 100 * saved / baseline.
- The lamps' figures are summed over the selected area.

Why the per-wijk figure is a repeated panel and not a ``GROUP BY "wijk"``: on InfluxDB 1.6 an
``integral()`` grouped by device emits its points window by window across series, and an outer
``sum()`` grouped by a tag then splits a wijk's day into several partial sums (seen on 1.6.7). An
outer ``sum()`` without tag grouping is exact, so the query sums the selected area and the panel is
repeated for each selected wijk (``repeat: wijk``): each copy's ``$wijk`` is one wijk.
"""

from __future__ import annotations

from dashboards.variables import AREA

TZ = "tz('Europe/Amsterdam')"
SAVED_W = '"power" * (100 - "dim_level") / "dim_level"'
PANEL_TITLE = "Energy saved by dimming in $wijk (per day)"
TABLE_TITLE = "Energy per day in $wijk: actual, always-on baseline, saved"

_PER_LAMP = (f'SELECT integral("saved_w", 1h) / 1000 AS "saved_kwh", integral("power", 1h) / 1000 AS "actual_kwh" '
             f'FROM (SELECT {SAVED_W} AS "saved_w", "power" FROM "street_light" WHERE $timeFilter AND {AREA}) '
             f'WHERE $timeFilter GROUP BY time(1d), "device" {TZ}')


def daily_energy_query() -> str:
    """Per Amsterdam day over the selected area: saved_kwh, actual_kwh, baseline_kwh, saved_pct."""
    return ('SELECT sum("saved_kwh") AS "saved_kwh", sum("actual_kwh") AS "actual_kwh", '
            'sum("actual_kwh") + sum("saved_kwh") AS "baseline_kwh", '
            '100 * sum("saved_kwh") / (sum("actual_kwh") + sum("saved_kwh")) AS "saved_pct" '
            f'FROM ({_PER_LAMP}) WHERE $timeFilter GROUP BY time(1d) fill(none) {TZ}')


def daily_saved_kwh_query() -> str:
    """Per Amsterdam day over the selected area: saved_kwh only (the bar chart)."""
    return (f'SELECT sum("saved_kwh") AS "saved_kwh" FROM ({_PER_LAMP}) '
            f'WHERE $timeFilter GROUP BY time(1d) fill(none) {TZ}')


def daily_saved_pct_query() -> str:
    """Per Amsterdam day over the selected area: the saving in per cent of the baseline."""
    return ('SELECT 100 * sum("saved_kwh") / (sum("actual_kwh") + sum("saved_kwh")) AS "saved_pct" '
            f'FROM ({_PER_LAMP}) WHERE $timeFilter GROUP BY time(1d) fill(none) {TZ}')
