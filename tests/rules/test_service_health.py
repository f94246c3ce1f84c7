"""The rules worker's service_health points (rules/service_health.py): a running service read back from influxd,
and the cut of the evaluator's maxima that keeps every counter to one writing thread."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from core.influx import InfluxClient, InfluxConfig
from core.service_health import service_health_line
from deploy.processes import free_port
from rules.operator_control import Hold, add_holds
from rules.rule_events import RuleEventWriter
from rules.service_health import IntervalMaxima, RulesHealth
from rules.service_metrics import EvaluatorCounts, IntakeCounts
from tests.conftest import wait_for
from tests.rules.test_service import RulesHarness, presence, value

INTERVAL = 0.4


def rows(influx: InfluxClient, q: str) -> list[dict[str, Any]]:
    return [r for s in influx.query(q, epoch="ms") for r in s.rows()]


def health_points(influx: InfluxClient) -> list[dict[str, Any]]:
    return rows(influx, "SELECT * FROM service_health WHERE service = 'rules' AND worker = '0of1' ORDER BY time")


@pytest.mark.integration
def test_a_running_service_writes_its_health_with_evaluations_commands_held_and_lag(
        env: RulesHarness, influx: InfluxClient, tmp_path: Path) -> None:
    control = tmp_path / "control"
    add_holds(control, [Hold("vs-sl-101", "dim", time.time() + 120, "operator:otto", "c1")])
    started = time.time()
    service = env.start(events=RuleEventWriter(influx, backoff=0.05), health_interval=INTERVAL, control_dir=control)
    # Activate with a reading taken 30 s ago (its lag), then clear with a fresh one: 2 x 2 commands, 2 held.
    env.publish("gw-vs-01", presence("vs-oc-101", t=time.time() - 30))
    wait_for(lambda: env.commands.count() == 2, 5)
    env.publish("gw-vs-01", presence("vs-oc-101", False, seq=1))
    wait_for(lambda: env.commands.count() == 4, 5)

    def reported() -> bool:
        points = health_points(influx)
        return sum(p["commands"] for p in points) == 4 and sum(p["held"] for p in points) == 2 and (
            # and one interval after the readings, with no reading in it
            any(p["lag_ms_max"] is None and p["evaluations"] > 0 for p in points[-2:]))

    wait_for(reported, 10)
    assert value(service, "commands_published") == 4 and value(service, "dispatch_held") == 2
    points = health_points(influx)
    for p in points:
        assert started * 1000 <= p["time"] <= time.time() * 1000
        # A 20 ms tick (and a few urgent wakes) over a 0.4 s interval.
        assert 1 <= p["evaluations"] <= 2 * INTERVAL / 0.02 + 10, p
        assert 0 < p["eval_ms_mean"] <= p["eval_ms_max"] < 1000, p
        assert p["readings_per_s"] >= 0
    # Two readings in all: the rate over the intervals adds up to them (each interval is ~0.4 s long).
    assert sum(p["readings_per_s"] for p in points) * INTERVAL == pytest.approx(2, rel=0.25)
    lags = sorted(p["lag_ms_max"] for p in points if p["lag_ms_max"] is not None)
    assert len(lags) in (1, 2)  # the two readings came in one interval or two
    assert 30_000 <= lags[-1] < 35_000
    if len(lags) == 2:
        assert -100 < lags[0] < 5_000  # the fresh one
    # Every other interval (no reading folded) leaves lag_ms_max out rather than repeat an old maximum.
    assert sum(p["lag_ms_max"] is None for p in points) == len(points) - len(lags)
    assert service.health_reporter is not None and service.health_reporter.errors == 0


@pytest.mark.integration
def test_influxdb_away_never_holds_up_the_evaluator(env: RulesHarness) -> None:
    """The points go through the rule-event writer's bounded queue: when it is full they are dropped, counted."""
    client = InfluxClient(InfluxConfig(f"http://127.0.0.1:{free_port()}", "x", timeout=1))
    events = RuleEventWriter(client, max_queue=2, backoff=0.05, max_backoff=0.1)
    service = env.start(events=events, health_interval=0.05)
    wait_for(lambda: events.dropped >= 3, 5)
    sent = time.monotonic()
    env.publish("gw-vs-01", presence("vs-oc-101"))
    wait_for(lambda: env.commands.count() == 3, 5)
    assert time.monotonic() - sent < 1.0
    assert service.health_reporter is not None and service.health_reporter.errors == 0
    service.stop()
    client.close()


@pytest.mark.integration
def test_no_health_reporter_without_an_influxdb_writer_or_with_interval_0(env: RulesHarness, influx: InfluxClient,
                                                                         tmp_path: Path) -> None:
    assert env.start(connect=False, client_id="a").health_reporter is None
    assert env.start(connect=False, client_id="b", state_dir=tmp_path / "b", events=RuleEventWriter(influx),
                     health_interval=0).health_reporter is None


# -- the cut of the maxima, without a service -----------------------------------------------------------------
def stepping(maxima: IntervalMaxima, counts: EvaluatorCounts, steps: list[tuple[float, float]],
             delay: float = 0.05) -> threading.Thread:
    """An evaluator thread making these (seconds, lag) steps after a delay, as the service's _step does."""
    def run() -> None:
        time.sleep(delay)
        for seconds, lag in steps:
            counts.evaluations += 1
            counts.evaluation_seconds += seconds
            maxima.step(seconds, lag, counts, held=0)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_cut_has_the_maxima_since_the_previous_cut_only() -> None:
    maxima, counts = IntervalMaxima(), EvaluatorCounts()
    counts.evaluations = 1
    maxima.step(0.001, 5.0, counts, held=0)  # before any request: kept for the first cut
    thread = stepping(maxima, counts, [(0.003, 1.0), (0.002, -math.inf)])
    first = maxima.take(2.0)
    thread.join()
    assert first is not None and (first.step_max, first.lag_max) == (0.003, 5.0)
    assert first.evaluations == 2  # the cut is made at the end of the first step after the request
    thread = stepping(maxima, counts, [(0.0005, -math.inf)])
    second = maxima.take(2.0)
    thread.join()
    assert second is not None
    # The 2 ms step came after the first cut; the lags were all before it (-inf: no reading since).
    assert (second.step_max, second.lag_max, second.evaluations) == (0.002, -math.inf, 4)


def test_a_stalled_evaluator_times_the_cut_out_and_its_maxima_come_with_the_next_one() -> None:
    maxima, counts = IntervalMaxima(), EvaluatorCounts()
    assert maxima.take(0.05) is None  # no step: the reporter does not wait for ever
    maxima.step(2.5, 9.0, counts, held=0)  # the long step ends, and serves the request that timed out
    thread = stepping(maxima, counts, [(0.001, 0.5)])
    cut = maxima.take(2.0)
    thread.join()
    assert cut is not None and (cut.step_max, cut.lag_max) == (2.5, 9.0)  # not lost with the timed-out report
    assert maxima.take(0.05) is None and maxima.requested == 3
    thread = stepping(maxima, counts, [(0.004, 0.5)])
    again = maxima.take(2.0)  # the timed-out request, still outstanding, is waited for rather than repeated
    thread.join()
    assert again is not None and again.step_max == 0.004 and (maxima.requested, maxima.served) == (3, 3)


def test_rules_health_fields_are_the_intervals_deltas() -> None:
    intake, counts, maxima = IntakeCounts(readings_used=100), EvaluatorCounts(evaluations=7, evaluation_seconds=1.0,
                                                                             commands_published=3), IntervalMaxima()
    held = [1]
    health = RulesHealth(intake, counts, maxima, held=lambda: held[0], cut_timeout=0.5)
    intake.readings_used += 40
    counts.evaluations += 4
    counts.evaluation_seconds += 0.008
    counts.commands_published += 5
    held[0] = 3
    thread = threading.Thread(target=lambda: (time.sleep(0.02), maxima.step(0.003, 0.25, counts, held=held[0])))
    before = time.monotonic()
    thread.start()
    fields = health.collect()
    thread.join()
    elapsed = time.monotonic() - before
    assert fields["evaluations"] == 4 and fields["commands"] == 5 and fields["held"] == 2
    assert fields["eval_ms_mean"] == pytest.approx(2.0) and fields["eval_ms_max"] == pytest.approx(3.0)
    assert fields["lag_ms_max"] == pytest.approx(250.0)
    assert 40 / (elapsed + 0.05) < fields["readings_per_s"] <= 40 / 0.02
    # Stalled (no step within the cut timeout): the counters' deltas, no maxima or means of nothing.
    quiet = health.collect()
    assert quiet["evaluations"] == 0 and quiet["readings_per_s"] == 0 and quiet["commands"] == 0
    assert all(math.isnan(quiet[k]) for k in ("eval_ms_mean", "eval_ms_max", "lag_ms_max"))
    line = service_health_line("rules", "0of1", quiet, 1)
    assert "eval_ms" not in line and "lag_ms_max" not in line and "evaluations=0.0" in line
