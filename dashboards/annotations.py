"""Rule events and commands as Grafana annotations, queried from InfluxDB.

Each annotation is a raw InfluxQL query returning the time, a ``text`` column and tag columns that
Grafana shows as the annotation's tags. InfluxQL can select a tag next to a field in a raw query, so
the text is a tag (the event or the command's origin) renamed ``text``; at least one field
(``active``, ``id``) must be selected for InfluxQL to return rows at all.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.influxql import InfluxQL, datasource
from dashboards.variables import AREA_OR_CITYWIDE

BIKE_PRIORITY_RULE = "rain-bike-priority"


def rule_events_query(rule: str | None = None) -> str:
    """Activations and clears of the rules (or of one rule) in the selected area or city-wide."""
    only = f" AND \"rule\" = '{rule}'" if rule else ""
    return (f'SELECT "active", "event" AS "text", "rule", "group", "severity" FROM "rule_event" '
            f"WHERE $timeFilter AND {AREA_OR_CITYWIDE}{only}")


def commands_query() -> str:
    """Commands sent to devices in the selected area (by rules or operators)."""
    return (f'SELECT "id", "origin" AS "text", "action", "device", "gateway", "level", "enabled" FROM "command" '
            f"WHERE $timeFilter AND {AREA_OR_CITYWIDE}")


def _annotation(name: str, colour: str, target: InfluxQL) -> db.AnnotationQuery:
    return (db.AnnotationQuery().name(name).datasource(datasource()).enable(True).hide(False)
            .icon_color(colour).target(target))


def rule_events(*, rule: str | None = None, name: str = "Rule events", colour: str = "purple") -> db.AnnotationQuery:
    """An annotation per rule activate / clear (text: the event; tags: rule, group, severity)."""
    target = (InfluxQL(rule_events_query(rule)).ref_id("Anno").table()
              .annotation_columns(text="text", tags="rule,group,severity", title="rule"))
    return _annotation(name, colour, target)


def bike_priority() -> db.AnnotationQuery:
    """The rain-bike-priority rule's activations and clears: the periods of bike priority."""
    return rule_events(rule=BIKE_PRIORITY_RULE, name="Bike priority (rain)", colour="blue")


def commands() -> db.AnnotationQuery:
    """An annotation per command sent (text: its origin; tags: action, device, gateway)."""
    target = (InfluxQL(commands_query()).ref_id("Anno").table()
              .annotation_columns(text="text", tags="action,device,gateway", title="action"))
    return _annotation("Commands", "orange", target)
