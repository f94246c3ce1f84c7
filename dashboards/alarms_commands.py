"""Alarms and commands: alarm history with its lifecycle, commands and acks per gateway."""

from __future__ import annotations

from typing import Any

from dashboards import annotations as notes
from dashboards import panels as p
from dashboards import variables as v
from dashboards.influxql import InfluxQL

UID = "smartcity-alarms-commands"
TITLE = "Smart city: alarms and commands"

# Commands and acks carry gemeente / wijk when the device is known; gateway always.
_COMMANDS_WHERE = f'$timeFilter AND {v.AREA_OR_CITYWIDE} AND "gateway" =~ /^$gateway$/'

ALARM_HISTORY = ('SELECT "id", "rule", "group", "severity", "state", "text", "by", "gemeente", "wijk" FROM "alarm" '
                 f'WHERE $timeFilter AND {v.AREA_OR_CITYWIDE} ORDER BY time DESC LIMIT 1000')
# Per rule and group, the latest time each lifecycle state was entered (raised, acknowledged, cleared),
# with that alarm's id, text and who acknowledged it: a selector may carry other fields, an aggregate not.
ALARM_LIFECYCLE = ('SELECT last("id") AS "id", "text", "by" FROM "alarm" '
                   f'WHERE $timeFilter AND {v.AREA_OR_CITYWIDE} GROUP BY "rule", "group", "state"')
ALARM_CHANGES = ('SELECT count("id") AS "changes" FROM "alarm" '
                 f'WHERE $timeFilter AND {v.AREA_OR_CITYWIDE} GROUP BY time($__interval), "state" fill(none)')
ALARMS_BY_SEVERITY = ('SELECT count("id") AS "raised" FROM "alarm" '
                      f"WHERE $timeFilter AND {v.AREA_OR_CITYWIDE} AND \"state\" = 'raised' GROUP BY \"severity\"")
COMMANDS_PER_GATEWAY = ('SELECT count("id") AS "commands" FROM "command" '
                        f'WHERE {_COMMANDS_WHERE} GROUP BY time($__interval), "gateway", "action" fill(none)')
ACKS_PER_GATEWAY = ('SELECT count("id") AS "acks" FROM "command_ack" '
                    f'WHERE {_COMMANDS_WHERE} GROUP BY time($__interval), "gateway", "status" fill(none)')
ACK_TOTALS = ('SELECT count("id") AS "acks" FROM "command_ack" '
              f'WHERE {_COMMANDS_WHERE} GROUP BY "gateway", "status"')
COMMAND_HISTORY = ('SELECT "id", "gateway", "device", "action", "origin", "level", "enabled" FROM "command" '
                   f'WHERE {_COMMANDS_WHERE} ORDER BY time DESC LIMIT 1000')
ACK_HISTORY = ('SELECT "id", "gateway", "device", "status", "detail" FROM "command_ack" '
               f'WHERE {_COMMANDS_WHERE} ORDER BY time DESC LIMIT 1000')


def build() -> dict[str, Any]:
    """The alarms and commands dashboard JSON."""
    panel_list: list[p.PanelBuilder] = [
        p.table_panel("Alarm history", "Every alarm lifecycle change (raised, acknowledged with by whom, "
                      "cleared), newest first, from the alarm measurement; city-wide alarms are always "
                      "included.", [InfluxQL(ALARM_HISTORY).table()], w=24, h=9),
        p.table_panel("Alarm lifecycle per rule and group", "Per rule, group and state: when the state was last "
                      "entered, with the alarm's id, text and who acknowledged it.",
                      [InfluxQL(ALARM_LIFECYCLE).table()], w=12, h=8),
        p.timeseries_panel("Alarm changes", "Alarm lifecycle changes per interval, by state.",
                           [InfluxQL(ALARM_CHANGES).alias("$tag_state")], w=6, h=8, bars=True, stacked=True),
        p.bargauge_panel("Alarms raised by severity", "Alarms raised in the range, per severity.",
                         [InfluxQL(ALARMS_BY_SEVERITY).alias("$tag_severity")], w=6, h=8,
                         steps=((None, "orange"),)),
        p.timeseries_panel("Commands per gateway", "Commands sent (by rules and operators) per interval, per "
                           "gateway and action.", [InfluxQL(COMMANDS_PER_GATEWAY).alias("$tag_gateway $tag_action")],
                           w=12, h=8, bars=True, stacked=True),
        p.timeseries_panel("Acks per gateway", "Command acknowledgements per interval, per gateway and status "
                           "(applied, rejected, expired, failed).",
                           [InfluxQL(ACKS_PER_GATEWAY).alias("$tag_gateway $tag_status")], w=12, h=8,
                           bars=True, stacked=True),
        p.table_panel("Acks by gateway and status", "Acknowledgements in the range per gateway and status.",
                      [InfluxQL(ACK_TOTALS).table()], w=8, h=8),
        p.table_panel("Command history", "Commands sent, newest first: device, action, origin (rule:<name> or "
                      "operator:<login>), level or enabled.", [InfluxQL(COMMAND_HISTORY).table()], w=16, h=8),
        p.table_panel("Ack history", "Acknowledgements, newest first, with their detail.",
                      [InfluxQL(ACK_HISTORY).table()], w=24, h=8),
    ]
    return p.dashboard(UID, TITLE, "Alarm history with lifecycle; commands and acknowledgements per gateway.",
                       tags=["smartcity", "alarms", "commands"], panels=panel_list,
                       variables=v.standard(with_gateway=True),
                       annotations=[notes.rule_events(), notes.commands()])
