"""Rule transitions and alarm lifecycle changes written to InfluxDB, from a background thread.

Two measurements (Grafana shows them as annotations and as the alarm table):

- ``rule_event``: one point per activate or clear (a reassert is not an event): tags ``rule``,
  ``group``, ``event`` and ``severity`` (rules that raise an alarm); fields ``active`` and the
  rule's values as ``v_<name>`` floats (missing values are left out).
- ``alarm``: one point per lifecycle change: tags ``rule``, ``group``, ``severity``, ``state``
  (raised, acknowledged, cleared); fields ``id``, ``text`` and ``by`` (who acknowledged).

Both also carry the tags ``gemeente`` and ``wijk`` where the slot determines them
(rules/group_zones.py), so that the dashboards' gemeente and wijk variables filter them too.

Times are the transition's, at microsecond precision. Points are built in the caller's thread (a
few microseconds) and queued; the thread writes them in batches. The queue is bounded: when
InfluxDB is away longer than it holds, the newest points are dropped and counted, and the
evaluation loop never waits for InfluxDB. A write InfluxDB may take later (see
core.influx.InfluxError.retryable) is retried with capped exponential backoff; a refused batch
(400, 413) is counted as failed. Rule events are a record, not control state: losing some in a
long outage is acceptable, blocking the engine is not.
"""

from __future__ import annotations

import logging
import math
import re

from core.influx import InfluxClient, InfluxConfig, InfluxError
from core.line_protocol import line
from core.settings import InfluxSettings
from rules.alarm_store import AlarmState
from rules.background_worker import QueueWorker
from rules.rule_model import Severity
from rules.transitions import Event, Transition

log = logging.getLogger(__name__)

RULE_EVENT = "rule_event"
ALARM = "alarm"
_DROPPED = re.compile(r"dropped=(\d+)")


def micros(t: float) -> int:
    """Unix seconds as integer microseconds (the write precision)."""
    return round(t * 1_000_000)


def _zone(tags: dict[str, str], gemeente: str | None, wijk: str | None) -> dict[str, str]:
    # Left out when the slot does not determine them: an empty tag value is not valid line protocol.
    if gemeente:
        tags["gemeente"] = gemeente
    if wijk:
        tags["wijk"] = wijk
    return tags


def transition_line(t: Transition, severity: Severity | None = None, *, gemeente: str | None = None,
                    wijk: str | None = None) -> str:
    """The rule_event point of an activate or clear (gemeente, wijk: the slot's, where it determines them)."""
    tags = _zone({"rule": t.rule, "group": t.group, "event": t.event.value}, gemeente, wijk)
    if severity is not None:
        tags["severity"] = severity.value
    fields: dict[str, float | int | bool | str] = {"active": t.active}
    for name, value in t.values.items():
        if isinstance(value, int | float) and math.isfinite(value):
            fields[f"v_{name}"] = float(value)  # always float: a field keeps the type it was first written with
    return line(RULE_EVENT, tags, fields, micros(t.time))


def alarm_line(rule: str, group: str, severity: Severity, state: AlarmState, *, at: float, alarm_id: int,
               text: str = "", by: str | None = None, gemeente: str | None = None, wijk: str | None = None) -> str:
    """The alarm point of one lifecycle change (gemeente, wijk: the slot's, where it determines them)."""
    tags = _zone({"rule": rule, "group": group, "severity": severity.value, "state": state.value}, gemeente, wijk)
    fields: dict[str, float | int | bool | str] = {"id": alarm_id, "text": text}
    if by:
        fields["by"] = by
    return line(ALARM, tags, fields, micros(at))


class RuleEventWriter(QueueWorker[str]):
    """Queues rule events and alarm changes and writes them in batches; never raises into the caller."""

    thread_name = "rule-events"
    counter_names = ("written", "failed", "dropped", "retries")
    _log = log
    _full_message = "rule event queue full (%d): dropping events, %d so far"
    _busy_message = "rule event writer still busy after %.1f s; abandoning it"
    _left_message = "rule event writer stopped with %d events unwritten"
    # Past stop's deadline the thread still writes what it takes: a batch that fails then is dropped (see _write).
    _deadline_ends_taking = False

    def __init__(self, influx: InfluxClient | InfluxSettings, *, batch_size: int = 1000, max_queue: int = 10_000,
                 backoff: float = 0.5, max_backoff: float = 30.0, request_timeout: float = 10.0) -> None:
        super().__init__(max_queue=max_queue, backoff=backoff, max_backoff=max_backoff, batch_size=batch_size)
        if isinstance(influx, InfluxSettings):
            self._client = InfluxClient(InfluxConfig(influx.url, influx.database, influx.username,
                                                     influx.password, timeout=request_timeout))
            self._owns_client = True
        else:
            self._client = influx
            self._owns_client = False
        self.written = 0  # points InfluxDB took
        self.failed = 0  # points in batches InfluxDB refused (400, 413)
        # dropped: points not written: queue full, or still queued when stop's deadline passed
        self.retries = 0  # writes attempted again after a retryable error

    # -- the caller's side ---------------------------------------------------------------------
    def transition(self, t: Transition, severity: Severity | None = None, *, gemeente: str | None = None,
                   wijk: str | None = None) -> None:
        """Queue the rule_event of an activate or clear (a reassert is ignored)."""
        if t.event is Event.REASSERT:
            return
        try:
            text = transition_line(t, severity, gemeente=gemeente, wijk=wijk)
        except ValueError as exc:  # line() refuses a point it cannot represent: lose that event, not the loop
            log.warning("rule event for rule %s group %s not written: %s", t.rule, t.group, exc)
            self._count("failed")
            return
        self.offer(text)

    def alarm(self, rule: str, group: str, severity: Severity, state: AlarmState, *, at: float, alarm_id: int,
              text: str = "", by: str | None = None, gemeente: str | None = None, wijk: str | None = None) -> None:
        """Queue the alarm point of one lifecycle change."""
        try:
            text_line = alarm_line(rule, group, severity, state, at=at, alarm_id=alarm_id, text=text, by=by,
                                   gemeente=gemeente, wijk=wijk)
        except ValueError as exc:
            log.warning("alarm event for rule %s group %s not written: %s", rule, group, exc)
            self._count("failed")
            return
        self.offer(text_line)

    # -- lifecycle -----------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued for up to timeout seconds, then stop; what is left is counted as dropped."""
        super().stop(timeout)
        if self._owns_client:
            self._client.close()

    # -- the writer thread ---------------------------------------------------------------------
    def _handle(self, batch: list[str]) -> None:
        self._write(batch)

    def _write(self, batch: list[str]) -> None:
        body = "\n".join(batch).encode()
        delay = self.backoff
        failing = False
        while True:
            try:
                self._client.write(body, precision="u")
            except InfluxError as exc:
                if not exc.retryable:
                    self._refused(batch, exc)
                    return
                if exc.status == 404:
                    self._create_database()
                if not failing:
                    log.warning("writing rule events failed (%s), retrying with backoff: %s", exc.reason, exc)
                failing = True
                # Once stopping, the wait is cut to stop's deadline and the write tried once more there.
                after = self._back_off(delay, to_deadline=True)
                if after is None:
                    self._count("dropped", len(batch))
                    return
                self._count("retries")
                delay = after
                continue
            self._count("written", len(batch))
            if failing:
                log.info("writing rule events works again")
            return

    def _refused(self, batch: list[str], exc: InfluxError) -> None:
        dropped = _DROPPED.search(exc.body)
        if "partial write" in exc.body and dropped:
            # InfluxDB 1.x stored the other lines (a field type conflict with stored data, say).
            n = min(int(dropped.group(1)), len(batch))
            self._count("written", len(batch) - n)
            self._count("failed", n)
            log.error("InfluxDB refused %d of %d rule events: %s", n, len(batch), exc.body[:300])
        elif len(batch) > 1:
            # A 400 without "partial write" stored nothing, a 413 was too large: halve it, so that the
            # good events are stored and only the bad ones refused.
            mid = len(batch) // 2
            self._write(batch[:mid])
            self._write(batch[mid:])
        else:
            self._count("failed")
            log.error("InfluxDB refused a rule event: %s: %s", exc.body[:300] or exc, batch[0][:200])

    def _create_database(self) -> None:
        # 404 is "database not found": create it where the account may (as the ingest's writer does).
        try:
            self._client.create_database()
        except InfluxError as exc:
            log.debug("creating the rule events database failed: %s", exc)

