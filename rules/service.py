"""The rules service: readings from MQTT into the vectorised engine, commands back out over MQTT.

The engine itself knows nothing of MQTT (rules/engine.py); this module feeds it, evaluates it on
a timer and right after each batch (so that a presence switches lights on within one message),
and publishes each command at QoS 1 to the gateway that owns the device.
"""

from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as paho

from core import topics
from core.mqtt_service import MqttLink, PublishError
from core.registry import WatchedRegistry
from core.senml import SenMLError, decode
from core.settings import MqttSettings
from core.topics import Channel, TopicError
from rules.engine import RulesEngine
from rules.rule_file import RuleSet

log = logging.getLogger(__name__)


class RulesService:
    """One rules worker evaluating every rule over every zone (partitioning zones comes later)."""

    def __init__(self, mqtt_settings: MqttSettings, ruleset: RuleSet, registry: WatchedRegistry, *,
                 client_id: str = "smartcity-rules", evaluate_interval: float = 0.5) -> None:
        self._settings = mqtt_settings
        self._registry = registry
        self._registry_seen = registry.get()
        self.engine = RulesEngine(ruleset, self._registry_seen, time.time())
        self._evaluate_interval = evaluate_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._timer_loop, name="rules-timer", daemon=True)
        self.messages = 0
        self.bad_messages = 0
        self.commands_published = 0
        self.publish_failures = 0
        self.link = MqttLink("rules", mqtt_settings, client_id,
                             subscriptions=[(topics.subscription(Channel.READINGS), 1)],
                             on_message=self._on_message)

    @property
    def connected(self) -> threading.Event:
        """Set while connected to the broker."""
        return self.link.connected

    def start(self) -> None:
        """Connect and start evaluating."""
        self.link.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop evaluating and disconnect."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.link.stop()

    def _on_message(self, msg: paho.MQTTMessage) -> None:
        self.messages += 1
        try:
            topics.parse(msg.topic)
            pack = decode(msg.payload)
        except (TopicError, SenMLError) as exc:
            self.bad_messages += 1
            log.warning("rules ignored message on %s: %s", msg.topic, exc)
            return
        # The engine locks itself: this paho thread and the timer thread may both call it.
        self.engine.ingest(pack.readings)
        self._evaluate()

    def _timer_loop(self) -> None:
        while not self._stop.wait(self._evaluate_interval):
            try:
                registry = self._registry.get()
                if registry is not self._registry_seen:
                    self.engine.rebuild(registry)
                    self._registry_seen = registry
                self._evaluate()
            except Exception:  # the timer thread must outlive any one bad reload or evaluation
                log.exception("rules: evaluation failed; the next tick tries again")

    def _evaluate(self) -> None:
        commands = self.engine.evaluate(time.time())
        for gateway, command in commands:
            try:
                self.link.publish(topics.topic(gateway, Channel.COMMANDS), command.to_json(), qos=1)
            except PublishError as exc:
                self.publish_failures += 1
                log.error("rules: %s", exc)
                continue
            log.debug("%s: %s %s %s", command.origin, command.device, command.action.value, command.params)
        if commands:
            self.commands_published += len(commands)
            # One line per evaluation, not per command: a city-wide change is thousands of commands.
            levels = sorted({str(c.params.get("level")) for _, c in commands})
            log.info("published %d commands (levels %s)", len(commands), ", ".join(levels))
