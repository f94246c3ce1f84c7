"""The bridge between a LoRaWAN network server's MQTT integration and the edge agent.

Most municipal LoRa sensors reach a gateway host through a network server (ChirpStack v4 or The
Things Stack v3) instead of our own modem. The bridge subscribes to the server's uplinks of one
application, decodes each device payload exactly as the modem path does
(edge.converters.payload_readings) and hands the readings, with the frame counter to persist in
the same transaction, to ``on_readings``. Downlinks go back through the server with ``send``.

Decisions, each with its reason:

- Replays: an uplink whose counter is not above the last accepted one of its DevEUI is refused as
  ``replay``. The server already rejects replayed radio frames; this guards what comes after it:
  a redelivered MQTT message (a persistent session resumes with QoS 1 messages it cannot know
  were handled) and anyone else who can publish on the server's topics.
- Counter resets: LoRaWAN devices count afresh from 0 after a (re-)join. The server announces a
  join on the device's ``join`` topic, which the bridge subscribes to: it then forgets the counter
  (stored as -1 through on_readings, so a restart in between does not bring the old one back).
  A join message that was missed (The Things Stack sends QoS 0) is covered like the modem path's
  MAX_COUNTED_GAP: a counter more than MAX_COUNTED_GAP below the last is a new session, accepted
  and counted in ``counter_resets``; a smaller step back stays a replay. The weakness: after a
  missed join, uplinks of a device whose old counter was low are refused until they pass it.
- Reading time: the server's receive time (ChirpStack ``time``, TTS ``received_at``) is closer to
  the measurement than ours, after a broker queue held the message. It is used when it lies at
  most ``max_future`` (5 min) ahead of the gateway's clock and at most ``max_age`` (the durable
  queue's age bound) behind it; otherwise the gateway's clock is used and ``bad_time`` counted,
  as one of the two clocks is wrong and ours is the one the platform's lateness check knows.
- Session: ChirpStack over MQTT 5 with a persistent session and QoS 1, so uplinks wait at the
  broker while the bridge restarts (set the integration's QoS to 1 for that). The Things Stack
  speaks MQTT 3.1.1 with QoS 0 only: a clean session, and uplinks sent while the bridge is away
  are lost to it (the server's storage integration can fill such a gap).

Every problem is counted by reason in ``problems`` and logged once per power of two: bad_message,
unknown_device, no_payload, bad_payload, bad_entries, replay, bad_time, store_failed, bad_downlink.
Nothing a server or a device sends can raise out of the message callback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTProtocolVersion

from core.mqtt_service import MqttLink, PublishError
from core.senml import Reading
from core.settings import MqttSettings
from edge.converters import MAX_COUNTED_GAP, count_problem, payload_readings
from edge.durable_queue import DEFAULT_MAX_AGE
from edge.edge_device import EdgeDevice
from edge.network_server import (
    DOWNLINK_FPORT_MAX,
    FLAVOURS,
    DownlinkError,
    Flavour,
    NotAnUplinkError,
    NsMessageError,
    NsUplink,
    chirpstack_downlink,
    parse_uplink,
    tts_default_device_id,
    tts_downlink,
)

log = logging.getLogger(__name__)

# Readings of one uplink and its (DevEUI, counter), to be stored in one transaction.
OnReadings = Callable[[list[Reading], tuple[str, int] | None], None]

MAX_FUTURE = 300.0  # seconds a server's receive time may be ahead of the gateway's clock
SEND_TIMEOUT = 5.0  # seconds send() waits for the broker to take a downlink
JOINED = -1  # the stored counter of a device that joined afresh: any counter is accepted next


class NetworkServerBridge:
    """Uplinks of one network-server application -> readings; downlinks -> the server."""

    def __init__(self, gateway: str, flavour: Flavour, settings: MqttSettings, application: str,  # noqa: PLR0917
                 devices: list[EdgeDevice], on_readings: OnReadings, *, counters: dict[str, int] | None = None,
                 downlink_fport: int = 10, clock: Callable[[], float] = time.time,
                 max_age: float = DEFAULT_MAX_AGE, max_future: float = MAX_FUTURE,
                 client_id: str | None = None, send_timeout: float = SEND_TIMEOUT) -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"network server flavour must be one of {', '.join(FLAVOURS)}: {flavour!r}")
        if not application or any(c in application for c in "/+#\x00"):
            raise ValueError(f"network server application must be one topic level (no '/', '+', '#'): "
                             f"{application!r}")
        if isinstance(downlink_fport, bool) or not 1 <= downlink_fport <= DOWNLINK_FPORT_MAX:
            raise ValueError(f"downlink_fport must be 1-{DOWNLINK_FPORT_MAX}: {downlink_fport!r}")
        self.gateway = gateway
        self.flavour: Flavour = flavour
        self.application = application
        self.downlink_fport = downlink_fport
        self.max_age = max_age
        self.max_future = max_future
        self.send_timeout = send_timeout
        self._on_readings = on_readings
        self._clock = clock
        self._lock = threading.Lock()  # the maps below; never held across a callback
        self._accepting = threading.Lock()  # one uplink at a time, from check to stored counter
        self._devices: dict[str, EdgeDevice] = {}
        self._device_ids: dict[str, str] = {}  # DevEUI -> TTS device ID, from the device's last uplink
        # Counters of the modem path (8-hex addresses) may share the queue's table: DevEUIs are 16.
        self._fcnt: dict[str, int] = {k.upper(): v for k, v in (counters or {}).items()}
        self.problems: Counter[str] = Counter()
        self.uplinks = 0  # uplinks accepted (their counter stored)
        self.ignored = 0  # messages that are not uplinks (joins included)
        self.counter_resets = 0  # joins seen and large counter drops accepted as a new session
        self.lost_frames = 0  # counter gaps up to MAX_COUNTED_GAP
        self.downlinks = 0  # downlinks the broker took
        self.update_devices(devices)
        if flavour == "chirpstack":
            base = f"application/{application}/device/+/event"
            subscriptions = [(f"{base}/up", 1), (f"{base}/join", 1)]
            protocol, persistent = MQTTProtocolVersion.MQTTv5, True
        else:
            base = f"v3/{application}/devices/+"
            subscriptions = [(f"{base}/up", 0), (f"{base}/join", 0)]
            protocol, persistent = MQTTProtocolVersion.MQTTv311, False
        self._qos = subscriptions[0][1]
        self._link = MqttLink(f"ns-bridge {gateway} ({flavour})", settings,
                              client_id or f"smartcity-ns-{flavour}-{gateway}", subscriptions=subscriptions,
                              on_message=self._on_message, persistent=persistent, protocol=protocol)
        self.connected = self._link.connected
        self.subscribed = self._link.subscribed  # set once the broker confirmed the subscriptions

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; reconnects with backoff."""
        self._link.start()

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self._link.stop()

    def update_devices(self, devices: list[EdgeDevice]) -> None:
        """Replace the devices (a config reload); counters of devices that stay are kept."""
        by_eui: dict[str, EdgeDevice] = {}
        for d in devices:
            if d.link != "lorawan" or not d.dev_eui:
                continue
            eui = d.dev_eui.upper()
            if eui in by_eui:
                log.error("devices %s and %s share DevEUI %s; %s is used", by_eui[eui].id, d.id, eui, d.id)
            by_eui[eui] = d
        with self._lock:
            self._devices = by_eui

    # -- uplinks ---------------------------------------------------------------------------------
    def _on_message(self, msg: paho.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # paho decodes the topic lazily and strictly
            self._problem("bad_message", f"{self.flavour} message on a topic that is not UTF-8")
            return
        self.handle_message(topic, bytes(msg.payload))

    def handle_message(self, topic: str, payload: bytes) -> None:
        """Process one message of the server (what the MQTT callback does; public for tests and replays)."""
        try:
            up = parse_uplink(self.flavour, topic, payload)
        except NotAnUplinkError as exc:
            self._not_an_uplink(exc)
            return
        except NsMessageError as exc:
            self._problem("bad_message", f"{self.flavour} message on {topic[:120]}: {exc}")
            return
        if up.application != self.application:
            self._problem("bad_message", f"uplink of application {up.application!r}, not {self.application!r}")
            return
        with self._accepting:
            self._accept(up)

    def _not_an_uplink(self, exc: NotAnUplinkError) -> None:
        self.ignored += 1
        if exc.event not in ("event/join", "join"):
            return
        with self._lock:
            eui = exc.device if self.flavour == "chirpstack" else self._eui_of(exc.device)
            known = eui is not None and eui in self._devices
        if eui is None or not known:
            return
        with self._accepting:
            # Persisted at once: a restart before the device's first new uplink must not restore
            # the old counter, which would refuse the new session's uplinks as replays.
            if self._store([], (eui, JOINED)):
                with self._lock:
                    self._fcnt[eui] = JOINED
                self.counter_resets += 1
                log.info("device with DevEUI %s joined: its frame counter starts afresh", eui)

    def _eui_of(self, device_id: str) -> str | None:
        # Under self._lock. A TTS join names the device ID only; its DevEUI is known from uplinks
        # or from the default ID the console gives (eui-<DevEUI>).
        for eui, known in self._device_ids.items():
            if known == device_id:
                return eui
        if device_id.startswith("eui-") and len(device_id) == 20:
            candidate = device_id[4:].upper()
            if all(c in "0123456789ABCDEF" for c in candidate):
                return candidate
        return None

    def _accept(self, up: NsUplink) -> None:
        # Under self._accepting: the counter check and the stored counter cannot interleave.
        now = self._clock()
        with self._lock:
            device = self._devices.get(up.dev_eui)
            if device is not None and up.device_id:
                self._device_ids[up.dev_eui] = up.device_id
            last = self._fcnt.get(up.dev_eui)
        if device is None:
            self._problem("unknown_device", f"uplink of DevEUI {up.dev_eui}, which no device of gateway "
                                            f"{self.gateway} has")
            return
        fcnt = 0 if up.fcnt is None else up.fcnt  # both servers leave a counter of 0 out
        reset = False
        if last is not None and fcnt <= last:
            if last - fcnt <= MAX_COUNTED_GAP:
                self._problem("replay", f"device {device.id}: frame counter {fcnt} not above {last} (a replay)")
                return
            reset = True
        if not up.payload or not up.fport:
            self._problem("no_payload", f"device {device.id}: uplink {fcnt} carries no application payload")
            readings: list[Reading] = []
        else:
            readings = payload_readings(device, up.payload, self._reading_time(device, up.received, now),
                                        self._problem)
        if not self._store(readings, (up.dev_eui, fcnt)):
            return  # the counter stays, so a redelivery of this uplink is still accepted
        with self._lock:
            self._fcnt[up.dev_eui] = fcnt
        self.uplinks += 1
        if reset:
            self.counter_resets += 1
            log.info("device %s: frame counter fell from %d to %d, taken as a new session", device.id, last, fcnt)
        elif last is not None and last != JOINED and 1 < fcnt - last <= MAX_COUNTED_GAP:
            self.lost_frames += fcnt - last - 1

    def _store(self, readings: list[Reading], fcnt: tuple[str, int]) -> bool:
        try:
            self._on_readings(readings, fcnt)
        except Exception:  # the store failing (disk full, ...) must not kill paho's thread
            self.problems["store_failed"] += 1
            log.exception("storing the readings of DevEUI %s failed", fcnt[0])
            return False
        return True

    def _reading_time(self, device: EdgeDevice, received: float | None, now: float) -> float:
        if received is None:
            return now
        if received > now + self.max_future or received < now - self.max_age:
            self._problem("bad_time", f"device {device.id}: the network server's receive time is "
                                      f"{received - now:+.0f} s from the gateway's clock; using the gateway's")
            return now
        return received

    # -- downlinks -------------------------------------------------------------------------------
    def downlink_message(self, device: EdgeDevice, payload: bytes) -> tuple[str, bytes]:
        """(topic, JSON) of a downlink to device; raises DownlinkError if it cannot be addressed or encoded."""
        eui = (device.dev_eui or "").upper()
        with self._lock:
            known = self._devices.get(eui)
            device_id = self._device_ids.get(eui)
        if known is None:
            raise DownlinkError(f"device {device.id} is not a LoRaWAN device of this bridge")
        if self.flavour == "chirpstack":
            return chirpstack_downlink(self.application, eui, self.downlink_fport, payload)
        return tts_downlink(self.application, device_id or tts_default_device_id(eui), self.downlink_fport,
                            payload)

    def send(self, device: EdgeDevice, payload: bytes) -> bool:
        """Publish a downlink for device; True once the broker has taken it (waits up to send_timeout).

        False if it cannot be encoded, the bridge is not connected or the broker did not take it in
        time: the caller (edge.actuation) tries again later.
        """
        try:
            topic, body = self.downlink_message(device, payload)
        except DownlinkError as exc:
            self._problem("bad_downlink", f"downlink to {device.id} not sent: {exc}")
            return False
        if not self._link.connected.is_set():
            log.warning("downlink to %s not sent: not connected to the network server's broker", device.id)
            return False
        try:
            info = self._link.publish(topic, body, qos=self._qos)
            info.wait_for_publish(self.send_timeout)
            published = info.is_published()
        except (PublishError, ValueError, RuntimeError) as exc:
            log.warning("downlink to %s not sent: %s", device.id, exc)
            return False
        if published:
            self.downlinks += 1
        else:
            log.warning("downlink to %s: the broker did not take it within %.1f s", device.id, self.send_timeout)
        return published

    def _problem(self, reason: str, message: str) -> None:
        with self._lock:
            count_problem(self.problems, reason, message, log)
