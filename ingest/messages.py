"""One MQTT message of any contract channel -> the line protocol the ingest writes for it.

Nothing a client sends can make this raise: a message or record that is wrong becomes a counted
dead letter (reason, first message, first bytes) next to the points of whatever was good in it.
Points take their time from the payload where it has one (reading times, a birth's ``since``, a
command's ``issued_at``, an ack's ``at``), so a message the broker delivers twice is the same point
again; otherwise from a per-worker clock that never repeats a microsecond, so two acks of an older
agent (without ``at``) received in one microsecond stay two points.
"""

from __future__ import annotations

import time
from typing import Any

from core import jsonfast, topics
from core.commands import CommandError, parse_ack, parse_command
from core.registry import Device, WatchedRegistry
from core.senml_columns import SenMLError, decode_columns
from core.topics import Channel, TopicError
from ingest.dead_letters import DeadLetter, dead_letter_line, payload_head
from ingest.metrics import IngestMetrics
from ingest.points import (
    DEFAULT_BOUNDS,
    Rejects,
    TimeBounds,
    UniqueMicros,
    ack_line,
    command_line,
    health_fields,
    health_line,
    micros,
    pack_lines,
    status_line,
)
from ingest.series_table import TableCache

PackSeq = tuple[str, int, int]  # (gateway, seq, records) of a sequenced pack
ReadingTimes = tuple[int, float, float]  # (n, sum, min) of a message's reading times, unix seconds


class RejectedMessageError(ValueError):
    """A message that cannot be used at all; reason is its dead-letter reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class MessageConverter:
    """Converts messages on the paho thread; one instance per worker (its clock is not thread-safe)."""

    def __init__(self, registry: WatchedRegistry, metrics: IngestMetrics, worker: str,
                 bounds: TimeBounds = DEFAULT_BOUNDS) -> None:
        self._registry = registry
        self._metrics = metrics
        self._worker = worker
        self._bounds = bounds
        self._tables = TableCache()
        self.clock_us = UniqueMicros()  # a receive timestamp, strictly increasing within this worker
        self._messages = {c: metrics.messages.labels(c.value) for c in Channel}
        self._messages_unknown = metrics.messages.labels("unknown")
        # The reading times of the last message converted, for the ingest's age figures (service_health):
        # three C-level reductions over the pack's time column, no per-record objects.
        self.times: ReadingTimes | None = None

    def convert(self, topic: str, payload: bytes | bytearray, now: float) -> tuple[list[str], PackSeq | None]:
        """All lines for one message (its points and dead letters), and its pack's (gateway, seq, records)."""
        gateway = ""
        self.times = None
        try:
            try:
                parsed = topics.parse(topic)
            except TopicError as exc:
                raise RejectedMessageError("bad_topic", str(exc)) from None
            gateway = parsed.gateway
            self._messages[parsed.channel].inc()
            if parsed.channel is Channel.READINGS:
                return self._readings(gateway, topic, payload, now)
            if parsed.channel is Channel.STATUS:
                return self._status(gateway, payload, now), None
            if parsed.channel is Channel.COMMANDS:
                return [self._command(gateway, payload)], None
            try:
                ack = parse_ack(payload)
            except CommandError as exc:
                raise RejectedMessageError("bad_ack", str(exc)) from None
            device = self._registry.get().devices.get(ack.device)
            # At the gateway's own time where it is sane: an ack the broker delivers again is the same point.
            at_us = micros(ack.at) if ack.at is not None and self._bounds.admits(ack.at, now) else self.clock_us(now)
            return [ack_line(gateway, ack, at_us, *_place_of(device))], None
        except RejectedMessageError as exc:
            if not gateway:
                self._messages_unknown.inc()
            return [self._dead_letter(gateway or _gateway_guess(topic), topic, exc.reason, 1, str(exc),
                                      payload=payload, now=now)], None

    def _readings(self, gateway: str, topic: str, payload: bytes | bytearray,
                  now: float) -> tuple[list[str], PackSeq | None]:
        try:
            cols = decode_columns(payload, now)
        except SenMLError as exc:
            raise RejectedMessageError("bad_pack", str(exc)) from None
        rejects = Rejects()
        table = self._tables.get(self._registry.get())
        lines = pack_lines(gateway, cols, table, now=now, rejects=rejects, bounds=self._bounds)
        accepted = len(cols.names) - (rejects.total - len(cols.errors))
        self._metrics.records.inc(accepted)
        self.times = self._reading_times(cols.times, rejects, now)
        for reason, n in rejects.counts.items():
            self._metrics.rejected.labels(reason).inc(n)
            lines.append(self._dead_letter(gateway, topic, reason, n, rejects.first[reason],
                                           payload=payload, now=now))
        if cols.seq is None:
            self._metrics.unsequenced.labels(gateway).inc()
            return lines, None
        return lines, (gateway, cols.seq, len(cols.names) + len(cols.errors))

    def _reading_times(self, times: list[float], rejects: Rejects, now: float) -> ReadingTimes | None:
        if "too_late" in rejects.counts or "future" in rejects.counts:
            # Rare: leave out the refused times, which would make the age figures days off.
            earliest, latest = now - self._bounds.max_lateness, now + self._bounds.max_skew
            times = [t for t in times if earliest <= t <= latest]
        return (len(times), sum(times), min(times)) if times else None

    def _status(self, gateway: str, payload: bytes | bytearray, now: float) -> list[str]:
        try:
            status: Any = jsonfast.loads(payload)
        except ValueError as exc:
            raise RejectedMessageError("bad_status", f"status is not JSON: {str(exc)[:100]}") from None
        state = status.get("state") if isinstance(status, dict) else None
        if not isinstance(state, str) or not state or len(state) > 32:
            raise RejectedMessageError("bad_status", "status needs a short string 'state'")
        seq = status.get("seq")
        seq = seq if type(seq) is int and seq >= 0 else None
        since = status.get("since")
        # The birth's own time where it is sane, so a redelivered status is the same point again.
        time_us = micros(float(since)) if self._bounds.admits(since, now) else self.clock_us(now)
        known = self._registry.get().gateways.get(gateway)
        gemeente = known.gemeente if known is not None else None
        lines = [status_line(gateway, state, time_us, seq, gemeente=gemeente)]
        health = status.get("health")
        if health is not None:
            # The state is kept when the counters are bad: they become a dead letter of their own.
            try:
                fields = health_fields(health)
            except ValueError as exc:
                lines.append(self._dead_letter(gateway, topics.topic(gateway, Channel.STATUS), "bad_health", 1,
                                               str(exc), payload=payload, now=now))
                return lines
            at = status.get("at")
            at_us = micros(float(at)) if self._bounds.admits(at, now) else self.clock_us(now)
            lines.append(health_line(gateway, fields, at_us, gemeente=gemeente))
        return lines

    def _command(self, gateway: str, payload: bytes | bytearray) -> str:
        try:
            cmd = parse_command(payload)
        except CommandError as exc:
            raise RejectedMessageError("bad_command", str(exc)) from None
        if not self._bounds.admits(cmd.issued_at, time.time()):
            raise RejectedMessageError("bad_command", f"issued_at {cmd.issued_at!r} is outside the time bounds")
        return command_line(gateway, cmd, *_place_of(self._registry.get().devices.get(cmd.device)))

    def _dead_letter(self, gateway: str, topic: str, reason: str, count: int, detail: str, *,
                     payload: bytes | bytearray, now: float) -> str:
        self._metrics.dead_letters.labels(reason).inc()
        dl = DeadLetter(now, gateway, topic, reason, count, detail, payload_head(payload), self._worker)
        return dead_letter_line(dl, self.clock_us(now))

    def internal_error(self, topic: str, payload: bytes | bytearray, now: float, error: BaseException) -> list[str]:
        """The dead letter for a message whose conversion failed unexpectedly (a bug, counted)."""
        self._metrics.callback_errors.inc()
        return [self._dead_letter(_gateway_guess(topic), topic, "internal_error",
                                  1, f"{type(error).__name__}: {str(error)[:200]}", payload=payload, now=now)]


def _place_of(device: Device | None) -> tuple[str | None, str | None]:
    """A device's (gemeente, wijk) from the registry, (None, None) for a device it does not know."""
    return (device.gemeente, device.wijk) if device is not None else (None, None)


def _gateway_guess(topic: str) -> str:
    parts = topic.split("/")
    candidate = parts[3] if len(parts) > 3 else ""
    return candidate if topics.ID_PATTERN.match(candidate) else "unknown"
