"""Platform health: ingest rate and latency, spool, dead letters, sequence gaps, rule timing, edge queues.

Every panel reads what the services write to InfluxDB (service_health from ingest and rules workers,
gateway_health and gateway_status from the edge agents via the ingest, gateway_sequence and
dead_letter from the ingest); the same figures are on each service's /metrics for Prometheus.
"""

from __future__ import annotations

from typing import Any

from dashboards import panels as p
from dashboards import variables as v
from dashboards.influxql import InfluxQL

UID = "smartcity-platform-health"
TITLE = "Smart city: platform health"


def _service(service: str, fields: str, agg: str = "mean") -> str:
    """One service's fields per worker and interval (service_health has no gemeente: it is platform-wide)."""
    selected = ", ".join(f'{agg}("{f}") AS "{f}"' for f in fields.split())
    return (f'SELECT {selected} FROM "service_health" WHERE $timeFilter AND "service" = \'{service}\' '
            'GROUP BY time($__interval), "worker" fill(none)')


def _gateway(fields: str, agg: str = "max") -> str:
    selected = ", ".join(f'{agg}("{f}") AS "{f}"' for f in fields.split())
    return (f'SELECT {selected} FROM "gateway_health" WHERE $timeFilter AND {v.GATEWAYS} '
            'GROUP BY time($__interval), "gateway" fill(none)')


INGEST_RATE = _service("ingest", "records_per_s points_per_s")
INGEST_LATENCY = ('SELECT mean("age_ms_mean") AS "age_ms_mean", max("age_ms_max") AS "age_ms_max" '
                  'FROM "service_health" WHERE $timeFilter AND "service" = \'ingest\' '
                  'GROUP BY time($__interval), "worker" fill(none)')
WRITE_TIME = ('SELECT mean("write_ms_mean") AS "write_ms_mean", max("write_ms_max") AS "write_ms_max" '
              'FROM "service_health" WHERE $timeFilter AND "service" = \'ingest\' '
              'GROUP BY time($__interval), "worker" fill(none)')
SPOOL = _service("ingest", "spool_batches pending_lines", agg="max")
SPOOL_BYTES = _service("ingest", "spool_bytes", agg="max")
REJECTED = _service("ingest", "dead_letters rejected", agg="sum")
# Dead letters are not filtered by gateway: an unknown gateway is one of their reasons.
DEAD_LETTERS = ('SELECT sum("count") AS "dead_letters" FROM "dead_letter" WHERE $timeFilter '
                'GROUP BY time($__interval), "reason" fill(none)')
DEAD_LETTER_TABLE = ('SELECT "gateway", "reason", "worker", "count", "topic", "detail" FROM "dead_letter" '
                     'WHERE $timeFilter ORDER BY time DESC LIMIT 500')
SEQUENCE = ('SELECT max("gaps") AS "gaps", max("duplicates") AS "duplicates" FROM "gateway_sequence" '
            f'WHERE $timeFilter AND {v.GATEWAYS} GROUP BY time($__interval), "gateway" fill(none)')
RULE_EVAL = ('SELECT mean("eval_ms_mean") AS "eval_ms_mean", max("eval_ms_max") AS "eval_ms_max", '
             'max("lag_ms_max") AS "lag_ms_max" FROM "service_health" WHERE $timeFilter AND "service" = \'rules\' '
             'GROUP BY time($__interval), "worker" fill(none)')
RULE_RATE = _service("rules", "readings_per_s evaluations commands held")
QUEUE_DEPTH = _gateway("queue_depth")
QUEUE_AGE = _gateway("queue_age_s")
EDGE_LOSSES = _gateway("readings_dropped lost_frames", agg="max")
INGEST_BATCHES = ('SELECT sum("records") AS "records", sum("batches") AS "batches" FROM "ingest_batch" '
                  f'WHERE $timeFilter AND {v.GATEWAYS} GROUP BY time($__interval), "gateway" fill(none)')


def build() -> dict[str, Any]:
    """The platform health dashboard JSON."""
    t = InfluxQL
    panel_list: list[p.PanelBuilder] = [
        p.timeseries_panel("Ingest rate", "Records and points per second stored by each ingest worker "
                           "(service_health, service=ingest).", [t(INGEST_RATE).alias("$tag_worker $col")],
                           unit="reqps", w=8, h=7),
        p.timeseries_panel("Ingest latency", "Reading time to stored, mean and max per interval, per ingest "
                           "worker.", [t(INGEST_LATENCY).alias("$tag_worker $col")], unit="ms", w=8, h=7),
        p.timeseries_panel("InfluxDB write time", "Time of the ingest's writes to InfluxDB, mean and max.",
                           [t(WRITE_TIME).alias("$tag_worker $col")], unit="ms", w=8, h=7),
        p.timeseries_panel("Spool depth", "Batches in the ingest's durable spool (InfluxDB away or slow) and "
                           "lines waiting to be written.", [t(SPOOL).alias("$tag_worker $col"),
                                                             t(SPOOL_BYTES).ref_id("B").alias("$tag_worker $col")],
                           w=8, h=7),
        p.timeseries_panel("Dead letters", "Messages the ingest refused, per reason (dead_letter), and the "
                           "records refused as counted by the ingest workers.",
                           [t(DEAD_LETTERS).alias("$tag_reason"), t(REJECTED).ref_id("B").alias("$tag_worker $col")],
                           w=8, h=7, bars=True),
        p.timeseries_panel("Sequence gaps per gateway", "Gaps and duplicates in each gateway's batch sequence "
                           "numbers over the ingest's audit window (gateway_sequence).",
                           [t(SEQUENCE).alias("$tag_gateway $col")], w=8, h=7),
        p.timeseries_panel("Rule evaluation time", "Rules engine evaluation time (mean, max) and the lag from "
                           "reading time to evaluation (service_health, service=rules).",
                           [t(RULE_EVAL).alias("$tag_worker $col")], unit="ms", w=12, h=7),
        p.timeseries_panel("Rules throughput", "Readings per second, evaluations, commands sent and commands "
                           "held off by operators, per rules worker.", [t(RULE_RATE).alias("$tag_worker $col")],
                           w=12, h=7),
        p.timeseries_panel("Edge queue depth", "Readings waiting in each edge agent's durable queue "
                           "(gateway_health).", [t(QUEUE_DEPTH).alias("$tag_gateway")], w=8, h=7),
        p.timeseries_panel("Edge queue age", "Age of the oldest reading in each edge agent's queue.",
                           [t(QUEUE_AGE).alias("$tag_gateway")], unit="s", w=8, h=7),
        p.timeseries_panel("Edge losses", "Readings dropped and LoRa frames lost per gateway (counters since "
                           "the agent started).", [t(EDGE_LOSSES).alias("$tag_gateway $col")], w=8, h=7),
        p.timeseries_panel("Ingest batches per gateway", "Records and batches stored per gateway "
                           "(ingest_batch).", [t(INGEST_BATCHES).alias("$tag_gateway $col")], w=12, h=7, bars=True),
        p.table_panel("Recent dead letters", "The newest dead letters: gateway, reason, worker, count, topic "
                      "and detail.", [t(DEAD_LETTER_TABLE).table()], w=12, h=7),
    ]
    return p.dashboard(UID, TITLE, "What the services report about themselves; the same figures are on their "
                       "/metrics.", tags=["smartcity", "platform"], panels=panel_list,
                       variables=v.standard(with_gateway=True), refresh="30s", time_from="now-6h")
