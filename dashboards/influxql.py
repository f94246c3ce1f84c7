"""A raw InfluxQL target for grafana-foundation-sdk, which has no InfluxDB query type of its own.

``InfluxQLQuery`` implements the SDK's ``cogvariants.Dataquery`` (``to_json`` / ``from_json``) and
``InfluxQL`` is its builder (``cogbuilder.Builder[InfluxQLQuery]``), so panels' ``with_target`` and
annotations' ``target`` accept it like any SDK query. ``register()`` adds the variant to the SDK's
runtime under the datasource type ``influxdb``, so that ``Dashboard.from_json`` reads our targets back
as ``InfluxQLQuery`` instead of an opaque ``UnknownDataquery``.

The JSON is Grafana's InfluxQL target in raw mode: ``{"refId", "datasource", "query", "rawQuery": true,
"resultFormat"}``; annotation targets also name the columns Grafana maps to the annotation's text,
title and tags (Grafana's InfluxDB annotation support reads ``target.query`` and these columns).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import common

DATASOURCE_TYPE = "influxdb"
DATASOURCE_UID = "smartcity-influxdb"
ResultFormat = Literal["time_series", "table"]
# Optional keys an annotation target carries (Grafana's InfluxDB annotation column mapping).
_ANNOTATION_KEYS = ("textColumn", "titleColumn", "tagsColumn", "timeEndColumn", "fromAnnotations")


def datasource() -> common.DataSourceRef:
    """The reference to the provisioned InfluxDB datasource (a fixed uid, no datasource variable)."""
    return common.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


def datasource_json() -> dict[str, str]:
    """The datasource reference as it appears in the dashboard JSON."""
    return {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}


@dataclass(slots=True)
class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL target (panel or annotation)."""

    ref_id: str = "A"
    query: str = ""
    result_format: ResultFormat = "time_series"
    alias: str | None = None
    hide: bool = False
    annotation: dict[str, Any] = field(default_factory=dict)  # textColumn etc. on annotation targets

    def to_json(self) -> dict[str, object]:
        """Grafana's JSON of the target."""
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": datasource_json(),
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.hide:
            payload["hide"] = True
        payload.update(self.annotation)
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Read a target back from Grafana's JSON (unknown keys are dropped, as the SDK's models do)."""
        fmt = data.get("resultFormat", "time_series")
        if fmt not in ("time_series", "table"):
            raise ValueError(f"unknown InfluxQL resultFormat: {fmt!r}")
        return cls(ref_id=str(data.get("refId", "")), query=str(data.get("query", "")), result_format=fmt,
                   alias=data.get("alias"), hide=bool(data.get("hide", False)),
                   annotation={k: data[k] for k in _ANNOTATION_KEYS if k in data})


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builder of a raw InfluxQL target: ``InfluxQL('SELECT ...').ref_id('B').table()``."""

    def __init__(self, query: str) -> None:
        self._internal = InfluxQLQuery(query=" ".join(query.split()))  # one line: readable in Grafana's editor

    def build(self) -> InfluxQLQuery:
        """The built target."""
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        """Set the target's refId (unique within its panel)."""
        self._internal.ref_id = ref_id
        return self

    def table(self) -> Self:
        """Ask Grafana for a table instead of time series."""
        self._internal.result_format = "table"
        return self

    def alias(self, alias: str) -> Self:
        """Grafana's alias pattern for the series names (e.g. ``$tag_wijk``)."""
        self._internal.alias = alias
        return self

    def annotation_columns(self, *, text: str, tags: str = "", title: str = "") -> Self:
        """Name the columns Grafana maps to an annotation's text, tags (comma separated) and title."""
        self._internal.annotation = {"fromAnnotations": True, "textColumn": text, "tagsColumn": tags,
                                     "titleColumn": title}
        return self


def variant_config() -> cogruntime.DataqueryConfig:
    """The SDK runtime entry that maps datasource type ``influxdb`` to InfluxQLQuery."""
    return cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=InfluxQLQuery.from_json)


def register() -> None:
    """Register the SDK's own panel and query variants and ours (idempotent)."""
    register_default_plugins()
    cogruntime.register_dataquery_variant(variant_config())
