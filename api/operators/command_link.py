"""The API's MQTT link for operators' manual commands (broker account "api": write commands, read acks).

A command is published at QoS 1 and the request waits for the broker's PUBACK, so the operator
learns whether the broker took it (the gateway's ack comes later: the ingest stores it in
``command_ack``, shown by the command history). A PUBACK with a failure reason (e.g. the ACL
refused the topic) is an error too, not a silent drop.
"""

from __future__ import annotations

import logging
import os
import threading

from core import topics
from core.commands import Command
from core.mqtt_service import MqttLink, PublishError
from core.settings import MqttSettings
from core.topics import Channel

log = logging.getLogger(__name__)

CONNECT_WAIT = 5.0
PUBACK_WAIT = 5.0


class CommandNotSentError(RuntimeError):
    """The broker is not reachable or refused the command; the message says which (no address)."""


class CommandLink:
    """One MQTT connection of the API, publishing commands to gateways' command topics."""

    def __init__(self, settings: MqttSettings) -> None:
        self._failed: dict[int, bool] = {}
        self._lock = threading.Lock()
        # No persistent session: the API subscribes to nothing, and a command it could not hand to
        # the broker is reported to the operator instead of being queued for later.
        self.link = MqttLink("api", settings, f"smartcity-api-{os.uname().nodename}-{os.getpid()}",
                             on_publish=self._on_publish, persistent=False)

    def start(self) -> None:
        """Connect in the background."""
        self.link.start()

    def stop(self) -> None:
        """Disconnect."""
        self.link.stop()

    def _on_publish(self, mid: int, failed: bool) -> None:
        with self._lock:
            self._failed[mid] = failed
            if len(self._failed) > 10_000:  # results nobody waited for (timeouts) must not pile up
                self._failed.pop(next(iter(self._failed)))

    def send(self, gateway: str, command: Command) -> None:
        """Publish and wait for the PUBACK; CommandNotSentError if that does not happen or reports a failure."""
        if not self.link.connected.wait(CONNECT_WAIT):
            raise CommandNotSentError("the MQTT broker is not reachable")
        try:
            info = self.link.publish(topics.topic(gateway, Channel.COMMANDS), command.to_json(), qos=1)
        except PublishError:
            raise CommandNotSentError("the MQTT client refused the command") from None
        try:
            info.wait_for_publish(PUBACK_WAIT)
        except RuntimeError:  # paho: the message was dropped (connection lost, queue full)
            raise CommandNotSentError("the command was dropped before the broker took it") from None
        if not info.is_published():
            raise CommandNotSentError(f"the broker did not acknowledge the command within {PUBACK_WAIT:.0f} s")
        with self._lock:
            failed = self._failed.pop(info.mid, False)
        if failed:
            raise CommandNotSentError("the broker refused the command (not authorised for that topic?)")
