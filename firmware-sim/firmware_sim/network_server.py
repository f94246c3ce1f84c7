"""A simulated LoRaWAN network server: ChirpStack v4 or The Things Stack v3, as seen on its MQTT side.

It stands where a real network server stands between the radio and the application: it is the
receiving "modem" of an ``Air``, so the simulated nodes transmit to it unchanged. Each frame is
opened with its node's key (a frame that fails is refused, as a server refuses a wrong MIC) and
published as the server's uplink JSON, with realistic radio metadata and with every field that
holds its default value left out, as both servers do (a counter 0, an empty payload, a false
flag). Downlinks the application publishes on the server's downlink topics become our P2P
downlink frames for the node (a counter per node, MIC with its key) and go out through
``air.downlink`` at once: street lights are mains-powered class C devices, which listen all the
time; a battery class A node would get its downlink after its next uplink instead.

The JSON is written here, independently of edge.network_server, so that the bridge's parser
is tested against a second implementation of the formats rather than against itself.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTProtocolVersion

from core.mqtt_service import MqttLink, PublishError
from core.settings import MqttSettings
from edge.lora_frame import encode_downlink
from firmware_sim import lpp
from firmware_sim.air import Air

log = logging.getLogger(__name__)

Flavour = Literal["chirpstack", "tts"]
DEFAULT_GATEWAY_EUI = "0016C001F153A14C"
_CHANNELS_HZ = (868_100_000, 868_300_000, 868_500_000, 867_100_000, 867_300_000, 867_500_000)
_LOCATION = {"latitude": 52.1237, "longitude": 4.4302, "altitude": 3.0}  # a cabinet in Voorschoten


def _without_defaults(value: Any) -> Any:
    """The JSON with default-valued fields left out (0, "", false, empty list or object), recursively."""
    if isinstance(value, dict):
        out = {k: _without_defaults(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (0, "", False, None, [], {})}
    if isinstance(value, list):
        return [_without_defaults(v) for v in value]
    return value


def _rfc3339(t: float, zulu: bool) -> str:
    # Both servers write nanoseconds: ChirpStack with "+00:00", The Things Stack with "Z".
    ns = round(t * 1e9)
    seconds, nanos = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}{'Z' if zulu else '+00:00'}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _is_hex(text: str, digits: int) -> bool:
    return len(text) == digits and all(c in "0123456789abcdefABCDEF" for c in text)


class SimDevice:
    """A node as the network server knows it: its DevEUI, its key and (TTS) its device ID."""

    def __init__(self, address: str, dev_eui: str, key: bytes, device_id: str | None) -> None:
        # Checked here, not at the first downlink: a bad entry would otherwise fail on paho's thread.
        if not _is_hex(address, 8) or not _is_hex(dev_eui, 16) or len(key) != 16:
            raise ValueError(f"simulated device {address!r}: needs an 8-hex-digit address, a 16-hex-digit "
                             f"DevEUI ({dev_eui!r}) and a 16-byte key")
        self.address = address.upper()
        self.dev_eui = dev_eui.upper()
        self.key = key
        self.device_id = device_id or f"eui-{self.dev_eui.lower()}"
        self.down_fcnt = 0  # the last downlink counter used (our frames start at 1)


class SimulatedNetworkServer:
    """The MQTT side of a network server for the nodes of one ``Air``.

    devices maps each node's P2P address to (DevEUI, key, TTS device ID or None for the default
    ``eui-<deveui>``). application is a ChirpStack application ID, or a TTS ``app@tenant``.
    Counters: ``uplinks`` published, ``refused_uplinks`` (unknown node or wrong MIC),
    ``unpublished`` (the broker could not take them), ``downlinks`` delivered to a node,
    ``bad_downlinks`` (messages on the downlink topics that could not be delivered).
    """

    def __init__(self, flavour: Flavour, settings: MqttSettings, application: str, air: Air,
                 devices: Mapping[str, tuple[str, bytes, str | None]], *, uplink_fport: int = 1,
                 gateway_eui: str = DEFAULT_GATEWAY_EUI, seed: int = 0, clock: Callable[[], float] = time.time,
                 client_id: str | None = None) -> None:
        if flavour not in ("chirpstack", "tts"):
            raise ValueError(f"flavour must be chirpstack or tts: {flavour!r}")
        self.flavour: Flavour = flavour
        self.application = application
        self.uplink_fport = uplink_fport
        self.gateway_eui = gateway_eui.upper()
        self._air = air
        self._clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._by_address = {a.upper(): SimDevice(a, eui, key, dev_id) for a, (eui, key, dev_id) in devices.items()}
        self._by_eui = {d.dev_eui: d for d in self._by_address.values()}
        self._by_device_id = {d.device_id: d for d in self._by_address.values()}
        self.uplinks = 0
        self.refused_uplinks = 0
        self.unpublished = 0
        self.downlinks = 0
        self.bad_downlinks = 0
        self.last_uplink: tuple[str, bytes] | None = None  # (topic, JSON) of the last one published
        if flavour == "chirpstack":
            # ChirpStack's integration QoS is a setting (default 0); 1 is what a bridge with a
            # persistent session needs, so the simulated server is configured that way.
            self._qos = 1
            subscriptions = [(f"application/{application}/device/+/command/down", 1)]
            protocol = MQTTProtocolVersion.MQTTv5
        else:
            self._qos = 0  # The Things Stack's MQTT server: 3.1.1 and QoS 0 only
            subscriptions = [(f"v3/{application}/devices/+/down/push", 0),
                             (f"v3/{application}/devices/+/down/replace", 0)]
            protocol = MQTTProtocolVersion.MQTTv311
        self._link = MqttLink(f"simulated {flavour}", settings, client_id or f"sim-ns-{flavour}-{seed}",
                              subscriptions=subscriptions, on_message=self._on_message, persistent=False,
                              protocol=protocol)
        self.subscribed = self._link.subscribed
        air.attach_modem(self.receive)

    def start(self) -> None:
        """Connect to the broker in the background."""
        self._link.start()

    def stop(self) -> None:
        """Disconnect."""
        self._link.stop()

    # -- uplinks ---------------------------------------------------------------------------------
    def _open(self, frame: bytes) -> tuple[SimDevice, int, bytes] | None:
        if len(frame) < 12:
            return None
        device = self._by_address.get(frame[:4].hex().upper())
        if device is None:
            return None
        fcnt, payload = int.from_bytes(frame[4:8], "big"), frame[8:-4]
        # The node's own framing, recomputed with its key: equal only if the MIC is authentic.
        if not hmac.compare_digest(lpp.uplink_frame(device.address, fcnt, payload, device.key), frame):
            return None
        return device, fcnt, payload

    def receive(self, frame: bytes) -> None:
        """The radio side: a node's uplink frame (called on the node's thread; never raises)."""
        try:
            opened = self._open(frame)
            if opened is None:
                with self._lock:
                    self.refused_uplinks += 1
                log.debug("simulated %s: refused frame %s", self.flavour, frame.hex().upper())
                return
            device, fcnt, payload = opened
            with self._lock:
                topic, doc = (self._chirpstack_up if self.flavour == "chirpstack" else self._tts_up)(
                    device, fcnt, payload, self._clock())
            body = json.dumps(_without_defaults(doc), separators=(",", ":")).encode()
            self._link.publish(topic, body, qos=self._qos)
        except PublishError as exc:
            with self._lock:
                self.unpublished += 1
            log.warning("simulated %s: uplink not published: %s", self.flavour, exc)
            return
        with self._lock:
            self.uplinks += 1
            self.last_uplink = (topic, body)

    def _radio(self) -> dict[str, Any]:
        # Under self._lock: the generator is shared by the nodes' threads.
        channel = self._rng.randrange(len(_CHANNELS_HZ))
        rssi = self._rng.randint(-118, -60)
        return {"channel": channel, "frequency": _CHANNELS_HZ[channel], "rssi": rssi,
                "snr": round(self._rng.uniform(-12.0, 11.0), 1), "timestamp": self._rng.getrandbits(32),
                "context": _b64(self._rng.randbytes(4)), "id": self._rng.getrandbits(32)}

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _chirpstack_up(self, device: SimDevice, fcnt: int, payload: bytes, now: float) -> tuple[str, dict[str, Any]]:
        radio = self._radio()
        eui = device.dev_eui.lower()
        doc = {
            "deduplicationId": self._uuid(),
            "time": _rfc3339(now, zulu=False),
            "deviceInfo": {
                "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "Gemeente",
                "applicationId": self.application, "applicationName": "smartcity",
                "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
                "deviceProfileName": "CayenneLPP class C", "deviceName": f"node-{device.address.lower()}",
                "devEui": eui, "deviceClassEnabled": "CLASS_C", "tags": {},
            },
            "devAddr": device.address.lower(),
            "adr": True,
            "dr": 5,
            "fCnt": fcnt,
            "fPort": self.uplink_fport if payload else 0,
            "confirmed": False,
            "data": _b64(payload),
            "rxInfo": [{
                "gatewayId": self.gateway_eui.lower(), "uplinkId": radio["id"],
                "gwTime": _rfc3339(now - 0.02, zulu=True), "nsTime": _rfc3339(now - 0.01, zulu=True),
                "rssi": radio["rssi"], "snr": radio["snr"], "channel": radio["channel"], "rfChain": 0,
                "location": _LOCATION, "context": radio["context"], "crcStatus": "CRC_OK",
                "metadata": {"region_config_id": "eu868", "region_common_name": "EU868"},
            }],
            "txInfo": {"frequency": radio["frequency"],
                       "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}}},
            "regionConfigId": "eu868",
        }
        return f"application/{self.application}/device/{eui}/event/up", doc

    def _tts_up(self, device: SimDevice, fcnt: int, payload: bytes, now: float) -> tuple[str, dict[str, Any]]:
        radio = self._radio()
        app, _, tenant = self.application.partition("@")
        ulid = "01" + "".join(self._rng.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(24))
        gateway_time = _rfc3339(now - 0.03, zulu=True)
        doc = {
            "end_device_ids": {"device_id": device.device_id, "application_ids": {"application_id": app},
                               "dev_eui": device.dev_eui, "join_eui": "0000000000000000",
                               "dev_addr": device.address},
            "correlation_ids": [f"as:up:{ulid}", f"gs:uplink:{ulid}", f"ns:uplink:{ulid}",
                                f"rpc:/ttn.lorawan.v3.GsNs/HandleUplink:{ulid}",
                                f"rpc:/ttn.lorawan.v3.NsAs/HandleUplink:{ulid}"],
            "received_at": _rfc3339(now, zulu=True),
            "uplink_message": {
                "session_key_id": _b64(self._rng.randbytes(16)),
                "f_port": self.uplink_fport if payload else 0,
                "f_cnt": fcnt,
                "frm_payload": _b64(payload),
                "rx_metadata": [{
                    "gateway_ids": {"gateway_id": f"eui-{self.gateway_eui.lower()}", "eui": self.gateway_eui},
                    "time": gateway_time, "timestamp": radio["timestamp"], "rssi": radio["rssi"],
                    "channel_rssi": radio["rssi"], "snr": radio["snr"],
                    "location": {**_LOCATION, "source": "SOURCE_REGISTRY"}, "uplink_token": radio["context"],
                    "channel_index": radio["channel"], "received_at": _rfc3339(now - 0.02, zulu=True),
                }],
                "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7,
                                                    "coding_rate": "4/5"}},
                             "frequency": str(radio["frequency"]), "timestamp": radio["timestamp"],
                             "time": gateway_time},
                "received_at": _rfc3339(now - 0.01, zulu=True),
                "consumed_airtime": "0.061696s",
                "network_ids": {"net_id": "000013", "ns_id": "EC656E0000000181", "tenant_id": tenant,
                                "cluster_id": "eu1", "cluster_address": "eu1.cloud.thethings.network"},
            },
        }
        return f"v3/{self.application}/devices/{device.device_id}/up", doc

    # -- downlinks -------------------------------------------------------------------------------
    def _on_message(self, msg: paho.MQTTMessage) -> None:
        try:
            topic = msg.topic
            items = self._downlink_items(topic, json.loads(msg.payload))
        except (ValueError, RecursionError, TypeError, KeyError) as exc:
            with self._lock:
                self.bad_downlinks += 1
            log.warning("simulated %s: bad downlink message: %s", self.flavour, exc)
            return
        for device, payload in items:
            self._deliver(device, payload)

    def _downlink_items(self, topic: str, doc: Any) -> list[tuple[SimDevice, bytes]]:
        levels = topic.split("/")
        if not isinstance(doc, dict):
            raise ValueError("downlink message is not a JSON object")
        if self.flavour == "chirpstack":
            device = self._by_eui.get(levels[3].upper())
            if device is None:
                raise ValueError(f"no device with DevEUI {levels[3]}")
            # ChirpStack refuses a command whose devEui differs from the topic's.
            if str(doc.get("devEui", "")).upper() != device.dev_eui:
                raise ValueError(f"devEui {doc.get('devEui')!r} does not match the topic")
            return [(device, self._port_and_data(doc.get("fPort"), doc.get("data")))]
        device = self._by_device_id.get(levels[3])
        if device is None:
            raise ValueError(f"no device with ID {levels[3]!r}")
        downlinks = doc.get("downlinks")
        if not isinstance(downlinks, list) or not downlinks:
            raise ValueError("'downlinks' must be a non-empty list")
        return [(device, self._port_and_data(d["f_port"], d.get("frm_payload"))) for d in downlinks]

    @staticmethod
    def _port_and_data(fport: object, data: object) -> bytes:
        if isinstance(fport, bool) or not isinstance(fport, int) or not 1 <= fport <= 223:
            raise ValueError(f"downlink port must be 1-223, got {fport!r}")
        if data is None:
            return b""
        if not isinstance(data, str):
            raise ValueError("downlink data must be base64 text")
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"downlink data is not base64: {exc}") from None

    def _deliver(self, device: SimDevice, payload: bytes) -> None:
        with self._lock:
            device.down_fcnt += 1
            frame = encode_downlink(device.address, device.down_fcnt, payload, device.key)
        delivered = self._air.downlink(frame)  # the node checks MIC and counter with lpp.open_downlink
        with self._lock:
            if delivered:
                self.downlinks += 1
            else:
                self.bad_downlinks += 1
