"""The rules worker's service_health points (core/service_health.py): what its evaluator did per interval.

Fields (floats, per interval): ``readings_per_s`` (readings accepted by the hot path),
``evaluations``, ``eval_ms_mean`` and ``eval_ms_max`` (one evaluator step: fold, evaluate,
dispatch), ``commands`` (handed to MQTT), ``held`` (not sent: an operator's hold), ``lag_ms_max``
(reading time -> evaluated: the event time of the oldest reading folded, at the evaluation that
took it in). A mean or maximum of nothing (no evaluation, no reading) is left out of the point.

Counts are deltas of the plain-int counters of rules/service_metrics.py, each written by one
thread. Maxima cannot be had that way: resetting one at the end of an interval would make the
reporter a second writer. So the reporter asks for a cut (``IntervalMaxima.requested``, its own
int) and the evaluator, at the end of its next step (within one tick), publishes its counters and
maxima as one immutable ``Cut`` and starts new maxima; the evaluator's cost is one int compare a
step, and it never waits for the reporter.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.service_health import HealthReporter
from rules.partition import Partition
from rules.rule_events import RuleEventWriter
from rules.service_metrics import EvaluatorCounts, IntakeCounts, RulesMetrics

NAN = math.nan


@dataclass(frozen=True, slots=True)
class Cut:
    """The evaluator's counters at a cut, and its maxima since the cut before."""

    evaluations: int
    evaluation_seconds: float
    commands: int
    held: int
    step_max: float  # seconds; 0 if no step
    lag_max: float  # seconds; -inf if no reading was folded

    def merged(self, earlier: Cut) -> Cut:
        """This cut with the maxima of an earlier one that was never reported."""
        return Cut(self.evaluations, self.evaluation_seconds, self.commands, self.held,
                   max(self.step_max, earlier.step_max), max(self.lag_max, earlier.lag_max))


class IntervalMaxima:
    """The evaluator's step-time and lag maxima, cut at the reporter's request without a lock on the evaluator."""

    def __init__(self) -> None:
        self.requested = 0  # written by the reporter only
        self.served = 0  # written by the evaluator only
        self.cut: Cut | None = None  # written by the evaluator only, in one assignment
        self._step_max = 0.0  # evaluator only
        self._lag_max = -math.inf  # evaluator only
        self._served = threading.Event()  # set by the evaluator once per cut, never per step
        self._outstanding = False  # reporter only: its last request timed out

    # -- the evaluator's side (its thread only) -----------------------------------------------------
    def step(self, seconds: float, lag: float, counts: EvaluatorCounts, held: int) -> None:
        """Record one step (after its counts were added); serve the reporter's cut if it asked for one."""
        self._step_max = max(self._step_max, seconds)
        self._lag_max = max(self._lag_max, lag)
        requested = self.requested
        if requested != self.served:
            self.cut = Cut(counts.evaluations, counts.evaluation_seconds, counts.commands_published, held,
                           self._step_max, self._lag_max)
            self._step_max, self._lag_max = 0.0, -math.inf
            self.served = requested
            self._served.set()

    # -- the reporter's side (its thread only) ------------------------------------------------------
    def take(self, timeout: float) -> Cut | None:
        """A cut made after this call, or None if the evaluator made no step within timeout (stalled)."""
        earlier = None
        if self.served == self.requested:
            if self._outstanding:  # the request that timed out was served since: its maxima are not reported yet
                earlier = self.cut
            self.requested += 1
        # else: the request that timed out is still outstanding; the cut that serves it covers this interval too
        self._outstanding = True
        wanted = self.requested
        deadline = time.monotonic() + timeout
        while True:
            self._served.clear()  # before the check: a serve after it sets the event again
            if self.served == wanted:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._served.wait(left)
        self._outstanding = False
        cut = self.cut
        if cut is None:  # cannot happen: served == wanted > 0 means a cut was published
            return None
        return cut if earlier is None else cut.merged(earlier)


class RulesHealth:
    """``collect()`` for core.service_health.HealthReporter: one interval's fields per call.

    held() reads the dispatcher's held total (DispatchCounts.held, written by the evaluator only).
    """

    def __init__(self, intake: IntakeCounts, evaluator: EvaluatorCounts, maxima: IntervalMaxima, *,
                 held: Callable[[], int], cut_timeout: float = 1.0) -> None:
        self._intake, self._evaluator, self._maxima = intake, evaluator, maxima
        self._held = held
        self._cut_timeout = cut_timeout
        self._at = time.monotonic()
        self._readings = intake.readings_used
        self._base = Cut(evaluator.evaluations, evaluator.evaluation_seconds, evaluator.commands_published,
                         held(), 0.0, -math.inf)

    def collect(self) -> dict[str, float]:
        """The fields of the interval since the last call."""
        cut = self._maxima.take(self._cut_timeout)
        at = time.monotonic()
        readings = self._intake.readings_used
        if cut is None:
            # The evaluator is stuck in one step: report what its counters say, and no maxima (none is known).
            e = self._evaluator
            cut = Cut(e.evaluations, e.evaluation_seconds, e.commands_published, self._held(), NAN, NAN)
        base, elapsed, before = self._base, max(at - self._at, 1e-9), self._readings
        self._at, self._readings, self._base = at, readings, cut
        evaluations = cut.evaluations - base.evaluations
        return {
            "readings_per_s": (readings - before) / elapsed,
            "evaluations": float(evaluations),
            "eval_ms_mean": (cut.evaluation_seconds - base.evaluation_seconds) * 1000 / evaluations
            if evaluations else NAN,
            "eval_ms_max": cut.step_max * 1000 if evaluations else NAN,
            "commands": float(cut.commands - base.commands),
            "held": float(cut.held - base.held),
            "lag_ms_max": cut.lag_max * 1000 if math.isfinite(cut.lag_max) else NAN,
        }


def health_reporter(partition: Partition, metrics: RulesMetrics, maxima: IntervalMaxima,  # noqa: PLR0917
                    held: Callable[[], int], events: RuleEventWriter, interval: float) -> HealthReporter | None:
    """The worker's reporter (tag worker = "<I>of<N>"), writing through the events' non-blocking queue; None if
    interval <= 0 (reports off). The evaluator never waits for InfluxDB: a full queue drops the point, counted."""
    if interval <= 0:
        return None
    health = RulesHealth(metrics.intake, metrics.evaluator, maxima, held=held)
    return HealthReporter("rules", f"{partition.index}of{partition.count}", health.collect, events.offer,
                          interval=interval)
