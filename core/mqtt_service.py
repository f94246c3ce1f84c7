"""The one shape of an MQTT service: connect, subscribe on every (re)connect, guarded callbacks, stop.

The edge uplink, the ingest and the rules service each build on MqttLink instead of wiring paho
themselves. A callback that raises is caught here, counted and logged with the topic: an exception
escaping into paho's network thread would kill it while the process stays up, and no later message
would ever be read (ingest issue, defect 1).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from core import mqtt
from core.settings import MqttSettings

log = logging.getLogger(__name__)

MessageHandler = Callable[[paho.MQTTMessage], None]


class PublishError(RuntimeError):
    """paho refused to queue a message (not connected with a full queue, payload too large, ...)."""


@dataclass(frozen=True, slots=True)
class Will:
    """The last will the broker publishes if the connection dies."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(slots=True)
class LinkStats:
    """What the link has seen; callback_errors counts exceptions the guard caught."""

    connects: int = 0
    disconnects: int = 0
    refused: int = 0
    messages: int = 0
    callback_errors: int = 0


class MqttLink:
    """A paho client run the same way by every service: MQTT 5, persistent session, backoff.

    ``protocol=MQTTv311`` serves a broker that speaks only 3.1.1 (The Things Stack); then
    receive_maximum must be None and end_session has no effect.
    """

    def __init__(self, name: str, settings: MqttSettings, client_id: str, *,
                 subscriptions: Sequence[tuple[str, int]] = (), on_message: MessageHandler | None = None,
                 on_connect: Callable[[paho.Client], None] | None = None,
                 on_publish: Callable[[int, bool], None] | None = None, manual_ack: bool = False,
                 will: Will | None = None, persistent: bool = True, receive_maximum: int | None = None,
                 protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5) -> None:
        self.name = name
        self.settings = settings
        self.client_id = client_id
        self.stats = LinkStats()
        self.connected = threading.Event()
        # Set once the broker has acknowledged the subscriptions of the current connection: from
        # then on nothing published to them is missed (tests and readiness wait on it).
        self.subscribed = threading.Event()
        self._subscribe_mid: int | None = None
        self.subscriptions = list(subscriptions)  # (re)subscribed at every connect
        self._handler = on_message
        self._connect_hook = on_connect
        self._persistent = persistent
        self._receive_maximum = receive_maximum
        self._stopping = False
        self.session_present = False  # did the broker resume our session at the last connect
        self.protocol = protocol
        # On 3.1.1 the session is kept by the clean-session flag, fixed when the client is made.
        self.client = mqtt.new_client(settings, client_id, manual_ack=manual_ack, protocol=protocol,
                                      clean_session=not persistent)
        if will is not None:
            self.client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        if on_publish is not None:
            # paho calls this holding its own message lock: the hook must not block or publish.
            hook = on_publish
            self.client.on_publish = lambda _c, _u, mid, rc, _p: self._guard(
                "on_publish", lambda: hook(mid, bool(rc.is_failure)))

    def start(self) -> None:
        """Connect in the background; paho reconnects with backoff after any failure."""
        mqtt.connect(self.client, self.settings, persistent=self._persistent,
                     receive_maximum=self._receive_maximum)
        self.client.loop_start()

    def stop(self, *, end_session: bool = False) -> None:
        """Disconnect and stop the network thread; end_session asks the broker to drop our session now."""
        self._stopping = True
        props = None
        # MQTT 3.1.1 has no DISCONNECT properties: its session ends only by a clean-session connect.
        if end_session and self.protocol == MQTTProtocolVersion.MQTTv5:
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self.client.loop_stop()
        self.connected.clear()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> paho.MQTTMessageInfo:
        """Queue a message; raises PublishError if paho refuses it (a queued message is paho's to deliver)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            # NO_CONN with QoS > 0 still queues the message in paho, which sends it on reconnect.
            raise PublishError(f"{self.name}: publish to {topic} refused: {paho.error_string(info.rc)}")
        if info.rc == paho.MQTT_ERR_NO_CONN and qos == 0:
            raise PublishError(f"{self.name}: not connected, QoS 0 message to {topic} dropped")
        return info

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a message received with manual_ack (QoS 0 needs none)."""
        if qos > 0:
            self.client.ack(mid, qos)

    def _guard(self, what: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception:  # the guard at paho's thread boundary: count, log, keep the thread alive
            self.stats.callback_errors += 1
            log.exception("%s: %s failed", self.name, what)

    def _on_connect(self, client: paho.Client, _userdata: object, flags: paho.ConnectFlags, reason: ReasonCode,
                    _props: object) -> None:
        if reason.is_failure:
            self.stats.refused += 1
            log.error("%s: MQTT connect to %s:%d refused: %s", self.name, self.settings.host,
                      self.settings.port, reason)
            return
        self.stats.connects += 1
        self.session_present = bool(flags.session_present)

        def subscribe() -> None:
            if self._connect_hook is not None:
                self._connect_hook(client)
            if self.subscriptions:
                _rc, self._subscribe_mid = client.subscribe(self.subscriptions)
            else:
                self.subscribed.set()

        self._guard("on_connect", subscribe)
        self.connected.set()
        log.info("%s connected to %s:%d as %s", self.name, self.settings.host, self.settings.port,
                 self.client_id)

    def _on_disconnect(self, _client: paho.Client, _userdata: object, _flags: object, reason: ReasonCode,
                       _props: object) -> None:
        self.connected.clear()
        self.subscribed.clear()
        self.stats.disconnects += 1
        if not self._stopping:
            log.warning("%s: MQTT disconnected (%s); reconnecting with backoff", self.name, reason)

    def _on_subscribe(self, _client: paho.Client, _userdata: object, mid: int, _reasons: object,
                      _props: object) -> None:
        if mid == self._subscribe_mid:
            self.subscribed.set()

    def _on_message(self, _client: paho.Client, _userdata: object, msg: paho.MQTTMessage) -> None:
        self.stats.messages += 1
        handler = self._handler
        if handler is not None:
            self._guard(f"message on {msg.topic}", lambda: handler(msg))
