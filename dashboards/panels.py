"""Shared panel helpers: every panel reads the one InfluxDB datasource and says what it shows.

Each helper returns an SDK panel builder with the datasource, the description (Grafana shows it as
the panel's info tooltip; the tests require one on every panel), the size in grid units and the
options that panel type needs. ``dashboard()`` numbers the panels, lets the SDK lay them out left
to right in rows of 24 columns, and returns the dashboard JSON as a plain dict.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol, Self, cast

from grafana_foundation_sdk.builders import barchart, bargauge, geomap, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import geomap as gm

from dashboards.influxql import InfluxQL, datasource

TIMEZONE = "Europe/Amsterdam"  # the municipalities' day: daily buckets and the time axis agree
STATUS_COLOURS = (("ok", "green"), ("fault", "orange"), ("silent", "red"))


class PanelBuilder(Protocol):
    """What dashboard() needs of an SDK panel builder."""

    def id(self, id_val: int) -> Self: ...

    def build(self) -> dm.Panel: ...


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (Grafana's base, minus infinity)."""
    return (db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=v, color=c) for v, c in steps]))


def bool_mapping(true_text: str, true_colour: str, false_text: str, false_colour: str) -> list[dm.ValueMapping]:
    """A value mapping of a bool field to words and colours (state timelines, tables)."""
    return [dm.ValueMap(options={
        "true": dm.ValueMappingResult(text=true_text, color=true_colour, index=0),
        "false": dm.ValueMappingResult(text=false_text, color=false_colour, index=1),
    })]


def _legend() -> cb.VizLegendOptions:
    return (cb.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM))


def timeseries_panel(title: str, description: str, targets: Sequence[InfluxQL], *, unit: str = "short",
                     w: int = 12, h: int = 8, bars: bool = False, stacked: bool = False) -> timeseries.Panel:
    """A time-series panel (lines, or bars for per-bucket counts)."""
    p = (timeseries.Panel().title(title).description(description).datasource(datasource())
         .targets(list(targets)).unit(unit).span(w).height(h).legend(_legend())
         .line_width(1).fill_opacity(10 if not bars else 80).span_nulls(False))
    if bars:
        p = p.draw_style(common.GraphDrawStyle.BARS)
    if stacked:
        p = p.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL))
    return p


def barchart_panel(title: str, description: str, targets: Sequence[InfluxQL], *, unit: str = "short",
                   w: int = 12, h: int = 8) -> barchart.Panel:
    """A bar chart of per-day (or per-hour) figures, the time as its x axis."""
    return (barchart.Panel().title(title).description(description).datasource(datasource())
            .targets(list(targets)).unit(unit).span(w).height(h).legend(_legend())
            .x_field("Time").show_value(common.VisibilityMode.AUTO).fill_opacity(80))


def state_timeline_panel(title: str, description: str, targets: Sequence[InfluxQL], *,
                         mappings: list[dm.ValueMapping], w: int = 12, h: int = 8) -> statetimeline.Panel:
    """A state timeline of bool series (one row per series)."""
    return (statetimeline.Panel().title(title).description(description).datasource(datasource())
            .targets(list(targets)).span(w).height(h).mappings(mappings).show_value(common.VisibilityMode.NEVER)
            .merge_values(True).row_height(0.8).legend(_legend()))


def stat_panel(title: str, description: str, targets: Sequence[InfluxQL], *, unit: str = "short",
               w: int = 6, h: int = 4, steps: Sequence[tuple[float | None, str]] = ((None, "blue"),),
               no_value: str = "0") -> stat.Panel:
    """A single big number (the latest value of each series)."""
    return (stat.Panel().title(title).description(description).datasource(datasource())
            .targets(list(targets)).unit(unit).span(w).height(h).thresholds(thresholds(*steps))
            .color_mode(common.BigValueColorMode.VALUE).graph_mode(common.BigValueGraphMode.NONE)
            .no_value(no_value)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))


def bargauge_panel(title: str, description: str, targets: Sequence[InfluxQL], *, unit: str = "short",
                   w: int = 12, h: int = 6, steps: Sequence[tuple[float | None, str]] = ((None, "blue"),)
                   ) -> bargauge.Panel:
    """Horizontal bars, one per series (e.g. per gateway)."""
    return (bargauge.Panel().title(title).description(description).datasource(datasource())
            .targets(list(targets)).unit(unit).span(w).height(h).thresholds(thresholds(*steps))
            .orientation(common.VizOrientation.HORIZONTAL)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))


def table_panel(title: str, description: str, targets: Sequence[InfluxQL], *, w: int = 24, h: int = 8,
                mappings: list[dm.ValueMapping] | None = None) -> table.Panel:
    """A table (targets must use resultFormat table)."""
    p = (table.Panel().title(title).description(description).datasource(datasource())
         .targets(list(targets)).span(w).height(h).show_header(True).cell_height(common.TableCellHeight.SM))
    if mappings:
        p = p.mappings(mappings)
    return p


def geomap_panel(title: str, description: str, target: InfluxQL, *, w: int = 12, h: int = 12) -> geomap.Panel:
    """Markers at each row's lat/lon, coloured by its numeric ``code`` (0 ok, 1 fault, 2 silent)."""
    markers = (cb.MapLayerOptions().type("markers").name("Devices")
               .location(cb.FrameGeometrySource().mode(common.FrameGeometrySourceMode.COORDS)
                         .latitude("lat").longitude("lon"))
               .config({"showLegend": True,
                        "style": {"color": {"field": "code", "fixed": "green"}, "size": {"fixed": 6},
                                  "opacity": 0.8,
                                  "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"}}}))
    return (geomap.Panel().title(title).description(description).datasource(datasource())
            .with_target(target).span(w).height(h)
            .thresholds(thresholds((None, "green"), (1, "orange"), (2, "red")))
            .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
            .mappings([dm.ValueMap(options={
                str(code): dm.ValueMappingResult(text=status, color=colour, index=code)
                for code, (status, colour) in enumerate(STATUS_COLOURS)})])
            .view(geomap.MapViewConfig().id("fit").all_layers(True).zoom(13))
            .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(True).show_attribution(True))
            .basemap(cb.MapLayerOptions().type("default").name("Basemap"))
            .layers([markers])
            .tooltip(geomap.TooltipOptions().mode(gm.TooltipMode.DETAILS)))


def dashboard(uid: str, title: str, description: str, *, tags: Sequence[str], panels: Sequence[PanelBuilder],
              variables: Sequence[db.QueryVariable], annotations: Sequence[db.AnnotationQuery] = (),
              time_from: str = "now-24h", refresh: str = "1m") -> dict[str, Any]:
    """The dashboard's JSON (schemaVersion 42) with panels numbered 1.. in the given order."""
    d = (db.Dashboard(title).uid(uid).description(description).tags(list(tags)).timezone(TIMEZONE)
         .time(time_from, "now").refresh(refresh).tooltip(dm.DashboardCursorSync.CROSSHAIR)
         .variables(list(variables)).annotations(list(annotations)))
    for number, panel in enumerate(panels, start=1):
        # Every SDK panel builder is a Builder[Panel]; the protocol only adds id() for numbering.
        d = d.with_panel(cast(cogbuilder.Builder[dm.Panel], panel.id(number)))
    out: dict[str, Any] = json.loads(json.dumps(d.build(), cls=JSONEncoder))
    return out
