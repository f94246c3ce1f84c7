"""The rules' hot path: an MQTT message to staged numpy columns, in paho's network thread.

Per message: the topic names the gateway; decode_selected keeps only the records of series some
rule reads; a vectorised compare drops readings of devices the registry does not assign to that
gateway (a gateway must not speak for another's sensors) and readings outside the time bounds (one
reading dated a year ahead kept a wijk's lights at 100 % for a month). What is left is appended to
a list under a lock, with no object per reading; the evaluator thread takes the whole list each
tick. A reading for an urgent rule wakes the evaluator at once.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from core import topics
from core.log_limit import LogLimiter
from core.senml_select import SenMLError, decode_selected
from core.topics import Channel, TopicError
from rules.service_build import Runtime, remap
from rules.service_metrics import IntakeCounts

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Staged:
    """The accepted readings of one message, numbered for the engine of one build (generation)."""

    generation: int
    series: NDArray[np.intp]
    values: NDArray[np.float64]
    times: NDArray[np.float64]
    received: float


class Intake:
    """Screens messages into staged columns for the evaluator; one per worker."""

    def __init__(self, runtime: Runtime, counts: IntakeCounts, *, max_lateness: float, max_skew: float,
                 clock: Callable[[], float], wake: Callable[[], None]) -> None:
        self.counts = counts
        self.max_lateness = max_lateness
        self.max_skew = max_skew
        self._clock = clock
        self._wake = wake
        self._lock = threading.Lock()
        self._staged: list[Staged] = []
        self._runtime = runtime
        self._bad_log = LogLimiter(10.0)

    @property
    def runtime(self) -> Runtime:
        """The build the hot path screens against."""
        return self._runtime

    def take(self) -> list[Staged]:
        """Everything staged since the last take, in arrival order."""
        with self._lock:
            staged, self._staged = self._staged, []
        return staged

    def swap(self, runtime: Runtime) -> list[Staged]:
        """Screen against runtime from now on; returns what was staged against the previous one."""
        with self._lock:
            staged, self._staged = self._staged, []
            self._runtime = runtime
        return staged

    def on_message(self, topic: str, payload: bytes | bytearray) -> None:
        """Screen one message (paho's thread); never raises for a bad message, counts it."""
        counts = self.counts
        counts.messages += 1
        received = self._clock()
        try:
            parsed = topics.parse(topic)
            if parsed.channel is not Channel.READINGS:
                raise TopicError(f"not a readings topic: {topic!r}")
        except TopicError as exc:
            self._bad(topic, exc)
            return
        while True:
            runtime = self._runtime
            try:
                selected = decode_selected(payload, runtime.engine.series_names, received)
            except SenMLError as exc:
                self._bad(topic, exc)
                return
            staged, wrong, late, future = self._screen(runtime, parsed.gateway, selected.series,
                                                       selected.values, selected.times, received)
            with self._lock:
                if runtime is not self._runtime:
                    continue  # a reload swapped the engine meanwhile: series numbers changed, screen again
                if staged is not None:
                    self._staged.append(staged)
            break
        counts.bad_records += selected.bad_record
        counts.not_used += selected.not_used
        counts.bad_value += selected.bad_value
        counts.wrong_gateway += wrong
        counts.too_late += late
        counts.future += future
        if selected.bad_record and self._bad_log.allow():
            log.warning("rules: %d bad records in a message on %s; first: %s (%d similar messages not logged)",
                        selected.bad_record, topic, selected.errors[0], self._bad_log.take_suppressed())
        if staged is not None:
            counts.readings_used += len(staged.series)
            if runtime.engine.urgent_series[staged.series].any():
                self._wake()

    def _screen(self, runtime: Runtime, gateway: str, series: NDArray[np.intp],  # noqa: PLR0917
                values: NDArray[np.float64], times: NDArray[np.float64],
                received: float) -> tuple[Staged | None, int, int, int]:
        """The readings to stage, and the counts of wrong gateway, too late and future."""
        if not len(series):
            return None, 0, 0, 0
        gateway_number = runtime.gateway_index.get(gateway, -1)  # -1: feeds none of our series
        right = runtime.engine.series_gateway[series] == gateway_number
        earliest = received - self.max_lateness
        latest = received + self.max_skew
        late = times < earliest
        ahead = times > latest
        if right.all() and not late.any() and not ahead.any():
            return Staged(runtime.generation, series, values, times, received), 0, 0, 0  # the common case
        wrong = int(len(series) - np.count_nonzero(right))
        n_late = int(np.count_nonzero(late & right))
        n_ahead = int(np.count_nonzero(ahead & right))
        keep = right & ~late & ~ahead
        staged = None
        if keep.any():
            staged = Staged(runtime.generation, series[keep], values[keep], times[keep], received)
        return staged, wrong, n_late, n_ahead

    def _bad(self, topic: str, exc: Exception) -> None:
        self.counts.bad_messages += 1
        if self._bad_log.allow():
            log.warning("rules: ignored a message on %s: %s (%d similar not logged)", topic[:200], exc,
                        self._bad_log.take_suppressed())


def fold_staged(rt: Runtime, staged: list[Staged], previous: Runtime | None = None) -> float:
    """Fold staged columns into rt's engine; columns numbered for previous (a reload raced) are mapped first.

    Returns the event time of the oldest reading folded (inf if none), for the health report's lag.
    """
    if not staged:
        return math.inf
    series, values, times = [], [], []
    lut = None
    for batch in staged:
        numbers, v, t = batch.series, batch.values, batch.times
        if batch.generation != rt.generation:
            if previous is None or batch.generation != previous.generation:
                continue  # cannot happen (intake stages only against the current build); never misnumber
            lut = remap(previous, rt) if lut is None else lut
            numbers = lut[numbers]
            keep = numbers >= 0
            numbers, v, t = numbers[keep], v[keep], t[keep]
        series.append(numbers)
        values.append(v)
        times.append(t)
    if not series:
        return math.inf
    all_times = np.concatenate(times)
    oldest = float(all_times.min()) if len(all_times) else math.inf
    # One fold per tick: the received time of the newest message stands for all (a tick's error at most).
    rt.engine.fold(np.concatenate(series), np.concatenate(values), all_times, max(b.received for b in staged))
    return oldest
