"""The template variables every dashboard carries, and the WHERE clauses that use them.

Variables are InfluxDB query variables (multi, include All, no custom all value, refreshed on
dashboard load), so Grafana formats a selection as a regex: one value ``GM0626`` (regex-escaped) or
All / several as ``(GM0626|GM0629)``; queries therefore match ``"tag" =~ /^$var$/``.

Measurements whose points may lack the gemeente / wijk tags (rule events, alarms and commands of a
slot that names no place, or of an unknown device) also match the empty tag, so that a city-wide
alarm shows whatever is selected: ``("gemeente" =~ /^$gemeente$/ OR "gemeente" = '')``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.influxql import datasource

GEMEENTE_QUERY = 'SHOW TAG VALUES FROM "street_light" WITH KEY = "gemeente"'
WIJK_QUERY = 'SHOW TAG VALUES FROM "street_light" WITH KEY = "wijk" WHERE "gemeente" =~ /^$gemeente$/'
GATEWAY_QUERY = 'SHOW TAG VALUES FROM "gateway_status" WITH KEY = "gateway" WHERE "gemeente" =~ /^$gemeente$/'

# WHERE fragments (each used after $timeFilter AND ...)
AREA = '"gemeente" =~ /^$gemeente$/ AND "wijk" =~ /^$wijk$/'
AREA_OR_CITYWIDE = ("(\"gemeente\" =~ /^$gemeente$/ OR \"gemeente\" = '') "
                    "AND (\"wijk\" =~ /^$wijk$/ OR \"wijk\" = '')")
GEMEENTE = '"gemeente" =~ /^$gemeente$/'
GATEWAYS = '"gemeente" =~ /^$gemeente$/ AND "gateway" =~ /^$gateway$/'


def _variable(name: str, label: str, query: str, description: str) -> db.QueryVariable:
    return (db.QueryVariable(name)
            .label(label)
            .description(description)
            .datasource(datasource())
            .query(query)
            .definition(query)
            .multi(True)
            .include_all(True)
            .allow_custom_value(False)
            .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(dm.VariableSort.ALPHABETICAL_ASC)
            .current(dm.VariableOption(text="All", value="$__all", selected=True)))


def gemeente() -> db.QueryVariable:
    """The municipality (CBS code, e.g. GM0626) of the devices shown."""
    return _variable("gemeente", "Gemeente", GEMEENTE_QUERY, "Municipalities (CBS gemeente codes) to show")


def wijk() -> db.QueryVariable:
    """The districts (CBS wijk codes) of the selected municipalities."""
    return _variable("wijk", "Wijk", WIJK_QUERY, "Districts (CBS wijk codes) of the selected municipalities")


def gateway() -> db.QueryVariable:
    """The edge gateways of the selected municipalities."""
    return _variable("gateway", "Gateway", GATEWAY_QUERY, "Edge gateways of the selected municipalities")


def standard(*, with_gateway: bool = False) -> list[db.QueryVariable]:
    """gemeente and wijk (and gateway where the dashboard has per-gateway panels), in that order."""
    variables = [gemeente(), wijk()]
    if with_gateway:
        variables.append(gateway())
    return variables
