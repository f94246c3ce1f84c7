"""The rules service: readings from MQTT into the vectorised engine, commands back out over MQTT.

Three threads, each owning what it writes:

- paho's network thread runs the hot path (rules/intake.py): decode, screen, stage numpy columns;
- the evaluator folds what was staged, evaluates every ``tick`` (at once after a reading for an
  urgent rule) and dispatches the transitions (rules/actions.py); it catches and counts every
  exception, so no bad reload or evaluation can stop it (a registry reload that raised once killed
  the old timer thread for good);
- the housekeeper watches the rule file and the registry (and SIGHUP), builds a new engine off the
  evaluator's thread, writes snapshots, and logs a summary at most once a minute.

A reload or restart carries state over through Engine.snapshot/restore (rules/README.md,
"Restart and reload"); a reload that fails is logged and counted, and the previous rules go on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from core import topics
from core.errors import ConfigError
from core.log_limit import LogLimiter
from core.mqtt_service import MqttLink
from core.registry import Registry, WatchedRegistry
from core.service_health import DEFAULT_INTERVAL as HEALTH_INTERVAL
from core.settings import MqttSettings
from core.topics import Channel
from rules.actions import ActionDispatcher
from rules.alarm_store import AlarmStore
from rules.intake import Intake, fold_staged
from rules.operator_control import OperatorControl, without_disabled
from rules.partition import Partition
from rules.rule_events import RuleEventWriter
from rules.rule_file import load_rules
from rules.rule_model import RuleSet
from rules.service_build import Runtime, build, rules_mtime
from rules.service_health import IntervalMaxima, health_reporter
from rules.service_metrics import RulesMetrics
from rules.service_state import Snapshot, StateFile, snapshot_path
from rules.transitions import Transition
from rules.webhooks import WebhookSender

log = logging.getLogger(__name__)

DEFAULT_MAX_LATENESS = 7 * 86400.0
DEFAULT_MAX_SKEW = 300.0
SUMMARY_INTERVAL = 60.0


class RulesService:
    """One rules worker: the rules over its partition of the city, fed by the gateways that serve it.

    The service owns the alarm store, webhook sender and rule-event writer it is given: it starts
    them with itself and stops (closes) them when it stops.
    """

    def __init__(self, mqtt_settings: MqttSettings, rules_path: str | Path, registry: WatchedRegistry, *,
                 client_id: str = "smartcity-rules", state_dir: Path | None = None, tick: float = 0.02,
                 command_ttl: float = 60.0, max_lateness: float = DEFAULT_MAX_LATENESS,
                 max_skew: float = DEFAULT_MAX_SKEW, partition: tuple[int, int] = (0, 1),
                 partition_by: str = "gemeente", snapshot_interval: float = 10.0,
                 alarms: AlarmStore | None = None, webhooks: WebhookSender | None = None,
                 events: RuleEventWriter | None = None, clock: Callable[[], float] = time.time,
                 watch_interval: float = 1.0, urgent_gap: float = 0.004,
                 control_dir: Path | None = None, health_interval: float = HEALTH_INTERVAL) -> None:
        self.partition = Partition(partition[0], partition[1], partition_by)
        self.rules_path = Path(rules_path)
        self.registry = registry
        self.tick = tick
        self.urgent_gap = min(urgent_gap, tick)
        self.snapshot_interval = snapshot_interval
        self.watch_interval = watch_interval
        self._clock = clock
        self._alarms, self._webhooks, self._events = alarms, webhooks, events
        # Operators' holds, disabled rules and reload requests (rules/operator_control.py).
        self.control = OperatorControl(control_dir) if control_dir is not None else None
        self._control_seen = self.control.reload_key() if self.control is not None else None
        now = clock()
        mtime = rules_mtime(self.rules_path)
        # A bad rule file or a rule that does not fit the partition fails the start (ConfigError).
        runtime = build(self._load_rules(), registry.get(), self.partition, now=now, generation=0,
                        mtime=mtime)
        self._generation = 0
        self.metrics = RulesMetrics(self._extra_counters, self._gauges)
        self.state = StateFile(snapshot_path(state_dir, self.partition), self.metrics.housekeeper, self.partition,
                               self.rules_path, clock)
        self.state.claim()
        runtime, saved_topics = self.state.restore(runtime, now, lambda: build(
            runtime.ruleset, runtime.registry, self.partition, now=now, generation=0, mtime=mtime))
        # Topics an earlier run subscribed (and the old service's wildcard) live on in a persistent session.
        self._stale_topics = {topics.subscription(Channel.READINGS), *saved_topics}
        self.dispatcher = ActionDispatcher(runtime.engine.slots, self._publish, alarms=alarms, webhooks=webhooks,
                                           events=events, command_ttl=command_ttl,
                                           holds=self.control.holds if self.control is not None else None,
                                           zones=runtime.zones)
        self._wake = threading.Event()
        self._housekeeping = threading.Event()
        self._stopping = threading.Event()
        self._reload_requested = threading.Event()
        self.intake = Intake(runtime, self.metrics.intake, max_lateness=max_lateness, max_skew=max_skew,
                             clock=clock, wake=self._wake.set)
        self._handover = threading.Lock()  # guards what the threads hand over: builds, snapshots, stale topics
        self._pending: Runtime | None = None  # a new build for the evaluator to swap in
        self._failed: tuple[Registry, int] | None = None  # the inputs of the last failed reload
        self._mailbox: Snapshot | None = None  # a snapshot to write
        self._last_now = now
        self._last_evaluation = time.monotonic()
        self._next_snapshot = time.monotonic() + snapshot_interval
        self._errors_log = LogLimiter(SUMMARY_INTERVAL)
        self._summary_at = (time.monotonic(), 0, 0, 0)
        self._topic_of: dict[str, str] = {}
        self.link = MqttLink("rules", mqtt_settings, client_id,
                             subscriptions=[(t, 1) for t in runtime.topics],
                             on_message=lambda msg: self.intake.on_message(msg.topic, msg.payload),
                             on_connect=self._on_connect, on_publish=self._on_publish)
        self._threads = [threading.Thread(target=self._evaluator_loop, name="rules-evaluator", daemon=True),
                         threading.Thread(target=self._housekeeper_loop, name="rules-housekeeper", daemon=True)]
        self._maxima = IntervalMaxima()  # service_health every health_interval s, through the events' queue
        self.health_reporter = None if events is None else health_reporter(
            self.partition, self.metrics, self._maxima, lambda: self.dispatcher.totals.held, events, health_interval)

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def connected(self) -> threading.Event:
        """Set while connected to the broker."""
        return self.link.connected

    @property
    def runtime(self) -> Runtime:
        """The build being evaluated."""
        return self.intake.runtime

    def start(self) -> None:
        """Start the helpers, the threads, and connect."""
        # Alarms left open by an earlier run whose slots restarted inactive would never clear.
        self._reconcile_alarms(self.runtime, self._last_now)
        for helper in (self._webhooks, self._events):
            if helper is not None:
                helper.start()
        for thread in self._threads:
            thread.start()
        if self.health_reporter is not None:
            self.health_reporter.start()
        self.link.start()

    def stop(self) -> None:
        """Stop evaluating, disconnect, fold what was staged and write the last snapshot (once)."""
        if self._stopping.is_set():
            return
        if self.health_reporter is not None:  # first: its last report may wait for a step of the evaluator
            self.health_reporter.stop()
        self._stopping.set()
        self._wake.set()
        self._housekeeping.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(30)
        self.link.stop()
        self._guard("final fold", lambda: fold_staged(self.runtime, self.intake.take()))
        if self.state.path is not None:
            self.state.write(self._guard("snapshot", lambda: self.state.capture(self.runtime)))
            self.state.release()
        for helper in (self._webhooks, self._events):
            if helper is not None:
                helper.stop()
        if self._alarms is not None:
            self._alarms.close()

    def _load_rules(self) -> RuleSet:
        """The rule file without the rules operators disabled."""
        ruleset = load_rules(self.rules_path)
        return ruleset if self.control is None else without_disabled(ruleset, self.control.disabled())

    def request_reload(self) -> None:
        """Reload registry and rule file soon (SIGHUP); safe to call from a signal handler."""
        self._reload_requested.set()
        self._housekeeping.set()

    def health(self) -> dict[str, Any]:
        """Health for /healthz: failing (503) while disconnected or when the evaluator stalls."""
        connected = self.link.connected.is_set()
        age = time.monotonic() - self._last_evaluation
        running = all(t.is_alive() for t in self._threads)
        status = "ok" if connected and running and age < max(5.0, 50 * self.tick) else "failing"
        if status == "ok" and self.metrics.housekeeper.snapshot_failures:
            status = "degraded"
        rt = self.runtime
        return {"status": status, "mqtt": "connected" if connected else "disconnected",
                "evaluator": "running" if running else "stopped", "last_evaluation_seconds_ago": round(age, 3),
                "partition": str(self.partition), "generation": rt.generation, "rules": len(rt.ruleset.rules),
                "series": rt.series_count, "slots": rt.slot_count, "gateways": len(rt.topics)}

    # -- MQTT callbacks (paho's thread) -------------------------------------------------------------
    def _on_connect(self, client: paho.Client) -> None:
        # Subscriptions dropped while disconnected (or by an earlier run) live on in a persistent session.
        with self._handover:
            stale = sorted(self._stale_topics - {t for t, _ in self.link.subscriptions})
            self._stale_topics.clear()
        if stale:
            client.unsubscribe(stale)

    def _on_publish(self, _mid: int, failed: bool) -> None:
        if failed:  # the broker refused a command (PUBACK with a failure reason, e.g. not authorised)
            self.metrics.intake.publish_failures += 1

    def _publish(self, gateway: str, payload: bytes) -> None:
        """The dispatcher's publish: QoS 1 to the gateway's commands topic; PublishError is its to count."""
        name = self._topic_of.get(gateway)
        if name is None:
            name = self._topic_of[gateway] = topics.topic(gateway, Channel.COMMANDS)
        self.link.publish(name, payload, qos=1)
        log.debug("command on %s: %s", name, payload)

    # -- the evaluator ------------------------------------------------------------------------------
    def _evaluator_loop(self) -> None:
        started = 0.0
        while True:
            self._wake.wait(self.tick)
            # At full load an urgent reading arrives with nearly every message: evaluating per message
            # took over half the CPU (bench/rules_service.py). Wakes within urgent_gap of the last
            # step are coalesced into one, which bounds the added latency by urgent_gap (4 ms).
            wait = started + self.urgent_gap - time.monotonic()
            if wait > 0 and not self._stopping.is_set():
                time.sleep(wait)
            self._wake.clear()  # before the step: a reading staged during it wakes the next one at once
            if self._stopping.is_set():
                return
            started = time.monotonic()
            self._guard("evaluation step", self._step)

    def _step(self) -> None:
        counts = self.metrics.evaluator
        started = time.perf_counter()
        with self._handover:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._swap(pending, max(self._clock(), self._last_now))
        rt = self.runtime
        staged = self.intake.take()
        # The clock is read after the take: no reading folded now was received after `now`.
        now = max(self._clock(), self._last_now)  # evaluation times never go back
        self._last_now = now
        oldest = self._guard("fold", lambda: fold_staged(rt, staged))
        transitions: list[Transition] = self._guard("evaluation", lambda: rt.engine.evaluate(now)) or []
        if transitions:
            counts.transitions += len(transitions)
            done = self._guard("dispatch", lambda: self.dispatcher.dispatch(transitions, now),
                               rules=sorted({t.rule for t in transitions}))
            if done is not None:
                counts.commands_published += done.commands
                counts.publish_refused += done.publish_failures
        counts.evaluations += 1
        took = time.perf_counter() - started
        counts.evaluation_seconds += took
        self._maxima.step(took, now - (oldest if oldest is not None else math.inf), counts, self.dispatcher.totals.held)
        self._last_evaluation = time.monotonic()
        if self.state.path is not None and time.monotonic() >= self._next_snapshot:
            self._next_snapshot = time.monotonic() + self.snapshot_interval
            snap = self._guard("snapshot", lambda: self.state.capture(rt))
            with self._handover:
                self._mailbox = snap
            self._housekeeping.set()

    def _guard(self, what: str, fn: Callable[[], Any], rules: list[str] | None = None) -> Any:
        """fn(), or None after counting and logging what it raised (the evaluator must never die)."""
        try:
            return fn()
        except Exception as exc:
            self.metrics.evaluator.evaluation_errors += 1
            rule = getattr(exc, "rule", None)
            where = f" (rule {rule})" if rule else (f" (rules {', '.join(rules[:5])})" if rules else "")
            if self._errors_log.allow():
                log.exception("rules: %s failed%s; the evaluator carries on (%d similar errors not logged)",
                              what, where, self._errors_log.take_suppressed())
            return None

    def _reconcile_alarms(self, runtime: Runtime, now: float) -> None:
        self._guard("alarm reconciliation", lambda: self.dispatcher.reconcile_alarms(
            runtime.engine.slot_states(), {r.name for r in runtime.ruleset.rules}, now))

    def _swap(self, new: Runtime, now: float) -> None:
        """Carry the state of the running build over into new and make it the running one."""
        old = self.runtime
        try:
            fold_staged(old, self.intake.take())
            new.engine.restore(old.engine.snapshot(), now)
            self.dispatcher.rebind(new.engine.slots, new.zones)
        except Exception:
            self.metrics.evaluator.swap_failures += 1
            log.exception("rules: taking over the state into the new build failed; keeping the previous rules")
            self.dispatcher.rebind(old.engine.slots, old.zones)
            return
        fold_staged(new, self.intake.swap(new), previous=old)  # what arrived since the snapshot above
        self._reconcile_alarms(new, now)
        self.metrics.evaluator.reloads += 1
        self._resubscribe(old.topics, new.topics)
        log.info("rules reloaded (build %d): %d rules, %d series, %d slots, %d gateways", new.generation,
                 len(new.ruleset.rules), new.series_count, new.slot_count, len(new.topics))

    def _resubscribe(self, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        added = [t for t in new if t not in set(old)]
        removed = [t for t in old if t not in set(new)]
        self.link.subscriptions = [(t, 1) for t in new]  # what every later connect subscribes
        client = self.link.client
        if removed and client.unsubscribe(removed)[0] != paho.MQTT_ERR_SUCCESS:
            with self._handover:
                self._stale_topics.update(removed)  # not connected: unsubscribed at the next connect
        if added:
            client.subscribe([(t, 1) for t in added])  # not connected: the next connect subscribes them

    # -- the housekeeper ----------------------------------------------------------------------------
    def _housekeeper_loop(self) -> None:
        while not self._stopping.is_set():
            self._housekeeping.wait(self.watch_interval)
            self._housekeeping.clear()
            if self._stopping.is_set():
                return
            for what, fn in (("snapshot", self._write_mailbox), ("reload", self._check_reload),
                             ("summary", self._summary)):
                try:
                    fn()
                except Exception:  # the housekeeper must outlive any one failure too
                    log.exception("rules: %s failed in the housekeeper", what)

    def _write_mailbox(self) -> None:
        with self._handover:
            snap, self._mailbox = self._mailbox, None
        self.state.write(snap)

    def _check_reload(self) -> None:
        forced = self._reload_requested.is_set()
        self._reload_requested.clear()
        if self.control is not None:
            key = self.control.reload_key()
            if key != self._control_seen:  # a rule enabled or disabled, or a reload requested
                self._control_seen = key
                forced = True
        if forced:
            self.registry.reload()
        registry = self.registry.get()
        mtime = rules_mtime(self.rules_path)
        with self._handover:
            current = self._pending or self.runtime
        unchanged = registry is current.registry and mtime == current.rules_mtime
        failed_before = self._failed is not None and self._failed[0] is registry and self._failed[1] == mtime
        if not forced and (unchanged or failed_before):
            return
        try:
            same_file = mtime == current.rules_mtime and not forced
            ruleset = current.ruleset if same_file else self._load_rules()
            new = build(ruleset, registry, self.partition, now=self._clock(), generation=self._generation + 1,
                        mtime=mtime)
        except Exception as exc:
            self.metrics.housekeeper.reload_failures += 1
            self._failed = (registry, mtime)
            if isinstance(exc, ConfigError):
                log.error("rules: reload failed, keeping the previous rules: %s", exc)
            else:
                log.exception("rules: reload failed, keeping the previous rules")
            return
        self._failed = None
        self._generation = new.generation
        with self._handover:
            self._pending = new
        self._wake.set()

    def _summary(self) -> None:
        at, commands, transitions, failures = self._summary_at
        now = time.monotonic()
        if now - at < SUMMARY_INTERVAL:
            return
        values = self.metrics.values()
        c, t, f = int(values["commands_published"]), int(values["transitions"]), int(values["publish_failures"])
        self._summary_at = (now, c, t, f)
        if c != commands or f != failures:
            log.info("rules: %d commands published in the last %.0f s (%d transitions, %d publish failures)",
                     c - commands, now - at, t - transitions, f - failures)

    # -- start-up and metrics -----------------------------------------------------------------------
    def _extra_counters(self) -> dict[str, int]:
        out = {f"engine_{k}": int(v) for k, v in self.runtime.engine.counters.items()}
        totals = self.dispatcher.totals
        for name in ("alarms_raised", "alarms_cleared", "alarm_failures", "webhooks", "events", "unknown_slots",
                     "held"):
            out[f"dispatch_{name}"] = int(getattr(totals, name))
        for prefix, helper in (("webhook", self._webhooks), ("rule_event", self._events)):
            if helper is not None:
                out.update({f"{prefix}_{k}": int(v) for k, v in helper.counters().items() if k != "pending"})
        return out

    def _gauges(self) -> dict[str, float]:
        rt = self.runtime
        return {"series": rt.series_count, "slots": rt.slot_count, "rules": len(rt.ruleset.rules),
                "subscribed_gateways": len(rt.topics), "connected": float(self.link.connected.is_set()),
                "last_evaluation_age_seconds": time.monotonic() - self._last_evaluation}
