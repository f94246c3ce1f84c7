"""LoRaWAN network-server MQTT messages: ChirpStack v4 and The Things Stack v3 uplinks in, downlinks out.

Pure parsing and encoding (stdlib json and base64 only: this runs on the gateway). Both servers
write JSON by the Protocol Buffers JSON mapping and leave out fields that hold their default
value: a frame counter 0, an empty payload or a false flag is simply absent. So an absent ``fCnt``
/ ``f_cnt`` is reported as None (it means 0 to a LoRaWAN stack) and absent data as no payload.

Strict where the bridge relies on a field: the topic, the DevEUI (and TTS device ID) that must
agree with it, the port, the counter and the payload; each refusal is an ``NsMessageError``
naming the field. Best-effort where it does not: radio metadata, the server's own decoding
(``object`` / ``decoded_payload``) and the receive time become None when they cannot be read,
so a quirk there never costs a reading. A message on a topic that is not an uplink (ChirpStack
``join``, ``ack``, ``txack``, ``status``, ``log``; TTS ``join``, ``down/...``, ...) raises
``NotAnUplinkError``, a subclass, so a caller can ignore those without counting them as bad.

>>> up = parse_chirpstack_uplink("application/a1/device/0101010101010101/event/up",
...                              b'{"deviceInfo": {"devEui": "0101010101010101"}, "fPort": 1, "data": "AXgy"}')
>>> up.dev_eui, up.fport, up.fcnt, up.payload.hex()
('0101010101010101', 1, None, '017832')
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

Flavour = Literal["chirpstack", "tts"]
FLAVOURS: tuple[Flavour, ...] = ("chirpstack", "tts")

FCNT_MAX = 0xFFFFFFFF  # LoRaWAN counts 32 bits (16 on air; the network server tracks the rest)
FPORT_MAX = 255  # uplinks: 1-223 application, 224 test, 225-255 reserved; the server passes them on
DOWNLINK_FPORT_MAX = 223  # application ports only
# The largest FRMPayload a downlink can carry in EU868 (DR5-DR7); a network server refuses more at
# slower data rates, which only it knows.
MAX_DOWNLINK_BYTES = 242

_EUI = re.compile(r"[0-9A-Fa-f]{16}", re.ASCII)
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,12}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))", re.ASCII)
_TOPIC_UNSAFE = re.compile(r"[/+#\x00]")


class NsMessageError(ValueError):
    """A network-server message that cannot be used; the message names the field."""


class NotAnUplinkError(NsMessageError):
    """A well-addressed message that is not an uplink (a join, an acknowledgement, a status, ...).

    ``event`` is what the topic says it is (``join``, ``txack``, ``down/sent``, ...); ``device``
    the device the topic names: the DevEUI (upper case) for ChirpStack, the device ID for TTS.
    """

    def __init__(self, event: str, device: str, message: str) -> None:
        super().__init__(message)
        self.event = event
        self.device = device


class DownlinkError(ValueError):
    """A downlink that cannot be encoded (bad DevEUI, device ID, port or payload size)."""


@dataclass(frozen=True, slots=True)
class NsUplink:
    """One uplink as a network server reports it, in the terms both servers share."""

    flavour: Flavour
    application: str  # as the topic names it: a ChirpStack application ID, a TTS "app@tenant"
    dev_eui: str  # 16 upper-case hex digits
    device_id: str | None  # TTS device ID; None for ChirpStack (it addresses devices by DevEUI)
    fport: int | None  # None: absent, which both servers write for port 0 (MAC commands only)
    fcnt: int | None  # None: absent, which both servers write for counter 0
    payload: bytes  # the decrypted FRMPayload; empty if the uplink carried none
    received: float | None  # the server's receive time (unix seconds); None if absent or unreadable
    rssi: float | None = None  # of the gateway that heard it best
    snr: float | None = None  # of that same gateway
    gateways: tuple[str, ...] = ()  # every gateway that heard it, as the server lists them
    decoded: Mapping[str, Any] | None = field(default=None, compare=False)  # the server's own decoding


def _show(value: object) -> str:
    # repr() of a huge int raises ValueError (the int/str digit limit): never let a message crash.
    try:
        text = repr(value)
    except ValueError:
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= 40 else text[:37] + "..."


def _load(payload: bytes | str) -> dict[str, Any]:
    try:
        doc = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError too
        raise NsMessageError(f"payload is not JSON: {str(exc)[:80]}") from None
    if not isinstance(doc, dict):
        raise NsMessageError(f"payload must be a JSON object, got {type(doc).__name__}")
    return doc


def _object(doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = doc.get(key)
    if value is None:
        raise NsMessageError(f"{where}: missing")
    if not isinstance(value, dict):
        raise NsMessageError(f"{where}: must be an object, got {_show(value)}")
    return value


def _int(doc: Mapping[str, Any], key: str, where: str, high: int) -> int | None:
    if key not in doc:
        return None
    value = doc[key]
    # The JSON mapping of protobuf writes integers as numbers but also accepts decimal strings.
    if isinstance(value, str) and 0 < len(value) <= 20 and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise NsMessageError(f"{where}: must be an integer 0-{high}, got {_show(value)}")
    return value


def _base64(doc: Mapping[str, Any], key: str, where: str) -> bytes:
    value = doc.get(key)
    if value is None or value == "":
        return b""
    if not isinstance(value, str) or not value.isascii():
        raise NsMessageError(f"{where}: must be a base64 string, got {_show(value)}")
    # Standard or URL-safe alphabet, padded or not: what the protobuf JSON mapping accepts.
    text = value.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise NsMessageError(f"{where}: not base64 ({exc}): {_show(value)}") from None


def _eui(value: object, where: str) -> str:
    if not isinstance(value, str) or not _EUI.fullmatch(value):
        raise NsMessageError(f"{where}: must be 16 hex digits, got {_show(value)}")
    return value.upper()


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        return None
    return number if math.isfinite(number) else None


def parse_time(value: object) -> float | None:
    """Unix seconds of an RFC 3339 time with a zone (any number of fraction digits), else None."""
    if not isinstance(value, str):
        return None
    m = _RFC3339.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = m.groups()
    try:
        offset = timedelta(0) if zulu else (1 if sign == "+" else -1) * timedelta(hours=int(off_h),
                                                                                   minutes=int(off_m))
        # Nanoseconds (both servers write them) are cut to what datetime holds: microseconds.
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        when = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
                        tzinfo=timezone(offset))
    except ValueError:  # month 13, second 60 (a leap second), an offset of 24 h or more, ...
        return None
    return when.timestamp()


def _decoded(value: object) -> Mapping[str, Any] | None:
    return value if isinstance(value, dict) else None


def _radio(entries: object,
           gateway_of: Callable[[Mapping[str, Any]], object]) -> tuple[float | None, float | None, tuple[str, ...]]:
    """(rssi, snr) of the best-heard gateway and every gateway id; entries that make no sense are skipped."""
    if not isinstance(entries, list):
        return None, None, ()
    best: tuple[float, float | None] | None = None
    gateways: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        gateway = gateway_of(entry)
        if isinstance(gateway, str) and gateway:
            gateways.append(gateway)
        rssi = _number(entry.get("rssi"))
        if rssi is not None and (best is None or rssi > best[0]):
            best = (rssi, _number(entry.get("snr")))
    return (best[0] if best else None), (best[1] if best else None), tuple(gateways)


def _chirpstack_gateway(entry: Mapping[str, Any]) -> object:
    return entry.get("gatewayId")


def _tts_gateway(entry: Mapping[str, Any]) -> object:
    ids = entry.get("gateway_ids")
    return ids.get("gateway_id") if isinstance(ids, dict) else None


def _topic_levels(topic: object) -> list[str]:
    if not isinstance(topic, str):
        raise NsMessageError(f"topic must be a string, got {_show(topic)}")
    return topic.split("/")


def parse_chirpstack_uplink(topic: str, payload: bytes | str) -> NsUplink:
    """An ``application/APP_ID/device/DEV_EUI/event/up`` message of ChirpStack v4's MQTT integration.

    Raises NotAnUplinkError for the application's other events and commands, NsMessageError for
    anything that is not a usable uplink.
    """
    levels = _topic_levels(topic)
    if len(levels) < 5 or levels[0] != "application" or levels[2] != "device" \
            or levels[4] not in ("event", "command") or not levels[1]:
        raise NsMessageError(f"topic {_show(topic)} is not application/APP_ID/device/DEV_EUI/event/EVENT")
    topic_eui = _eui(levels[3], "topic DevEUI")
    event = "/".join(levels[4:])
    if event != "event/up":
        raise NotAnUplinkError(event, topic_eui, f"ChirpStack {event} message, not an uplink")
    doc = _load(payload)
    info = _object(doc, "deviceInfo", "deviceInfo")
    dev_eui = _eui(info.get("devEui"), "deviceInfo.devEui")
    if dev_eui != topic_eui:
        raise NsMessageError(f"deviceInfo.devEui {dev_eui} differs from the topic's {topic_eui}")
    rssi, snr, gateways = _radio(doc.get("rxInfo"), _chirpstack_gateway)
    return NsUplink(
        flavour="chirpstack", application=levels[1], dev_eui=dev_eui, device_id=None,
        fport=_int(doc, "fPort", "fPort", FPORT_MAX), fcnt=_int(doc, "fCnt", "fCnt", FCNT_MAX),
        payload=_base64(doc, "data", "data"), received=parse_time(doc.get("time")),
        rssi=rssi, snr=snr, gateways=gateways, decoded=_decoded(doc.get("object")),
    )


def parse_tts_uplink(topic: str, payload: bytes | str) -> NsUplink:
    """A ``v3/{app}@{tenant}/devices/{dev}/up`` message of The Things Stack v3's MQTT server.

    The tenant part is absent on The Things Stack Open Source (``v3/{app}/devices/{dev}/up``).
    Raises NotAnUplinkError for the device's other messages (join, down/queued, down/sent, ...).
    """
    levels = _topic_levels(topic)
    if len(levels) < 5 or levels[0] != "v3" or levels[2] != "devices" or not levels[1] or not levels[3]:
        raise NsMessageError(f"topic {_show(topic)} is not v3/APP@TENANT/devices/DEVICE_ID/...")
    device_id = levels[3]
    event = "/".join(levels[4:])
    if event != "up":
        raise NotAnUplinkError(event, device_id, f"The Things Stack {event} message, not an uplink")
    doc = _load(payload)
    ids = _object(doc, "end_device_ids", "end_device_ids")
    if ids.get("device_id") != device_id:
        raise NsMessageError(f"end_device_ids.device_id {_show(ids.get('device_id'))} differs from the "
                             f"topic's {device_id!r}")
    dev_eui = _eui(ids.get("dev_eui"), "end_device_ids.dev_eui")
    up = _object(doc, "uplink_message", "uplink_message")
    # The Application Server's receive time; the Network Server's if that is missing.
    received = parse_time(doc.get("received_at"))
    if received is None:
        received = parse_time(up.get("received_at"))
    rssi, snr, gateways = _radio(up.get("rx_metadata"), _tts_gateway)
    return NsUplink(
        flavour="tts", application=levels[1], dev_eui=dev_eui, device_id=device_id,
        fport=_int(up, "f_port", "uplink_message.f_port", FPORT_MAX),
        fcnt=_int(up, "f_cnt", "uplink_message.f_cnt", FCNT_MAX),
        payload=_base64(up, "frm_payload", "uplink_message.frm_payload"), received=received,
        rssi=rssi, snr=snr, gateways=gateways, decoded=_decoded(up.get("decoded_payload")),
    )


def parse_uplink(flavour: Flavour, topic: str, payload: bytes | str) -> NsUplink:
    """The parser of one flavour applied to a message."""
    if flavour == "chirpstack":
        return parse_chirpstack_uplink(topic, payload)
    if flavour == "tts":
        return parse_tts_uplink(topic, payload)
    raise ValueError(f"network server flavour must be one of {', '.join(FLAVOURS)}: {flavour!r}")


# --- downlinks ---


def _topic_level(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or _TOPIC_UNSAFE.search(value):
        raise DownlinkError(f"{what} must be a non-empty string without '/', '+' or '#': {_show(value)}")
    return value


def _frm_payload(fport: int, payload: bytes) -> str:
    if isinstance(fport, bool) or not isinstance(fport, int) or not 1 <= fport <= DOWNLINK_FPORT_MAX:
        raise DownlinkError(f"downlink port must be 1-{DOWNLINK_FPORT_MAX}: {_show(fport)}")
    if not isinstance(payload, bytes | bytearray) or len(payload) > MAX_DOWNLINK_BYTES:
        raise DownlinkError(f"downlink payload must be at most {MAX_DOWNLINK_BYTES} bytes")
    return base64.b64encode(bytes(payload)).decode("ascii")


def _json(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def chirpstack_downlink(application: str, dev_eui: str, fport: int, payload: bytes,
                        confirmed: bool = False) -> tuple[str, bytes]:
    """(topic, JSON) that enqueues a downlink through ChirpStack v4's MQTT integration."""
    app = _topic_level(application, "ChirpStack application ID")
    if not isinstance(dev_eui, str) or not _EUI.fullmatch(dev_eui):
        raise DownlinkError(f"DevEUI must be 16 hex digits: {_show(dev_eui)}")
    eui = dev_eui.lower()  # ChirpStack writes EUIs in lower case, in topics and in JSON
    body = {"devEui": eui, "confirmed": bool(confirmed), "fPort": fport, "data": _frm_payload(fport, payload)}
    return f"application/{app}/device/{eui}/command/down", _json(body)


def tts_downlink(application_at_tenant: str, device_id: str, fport: int, payload: bytes) -> tuple[str, bytes]:
    """(topic, JSON) that replaces a device's downlink queue in The Things Stack v3 with this downlink.

    ``down/replace`` rather than ``down/push``: a command is desired state, so a newer one must not
    queue behind an older one that a class A device has not fetched yet (it would apply the old level
    last); the edge's actuator sends the current desired state again when needed.
    """
    app = _topic_level(application_at_tenant, "TTS application (app@tenant)")
    dev = _topic_level(device_id, "TTS device ID")
    body = {"downlinks": [{"f_port": fport, "frm_payload": _frm_payload(fport, payload), "priority": "NORMAL"}]}
    return f"v3/{app}/devices/{dev}/down/replace", _json(body)


def tts_default_device_id(dev_eui: str) -> str:
    """The device ID The Things Stack's console proposes for a DevEUI: ``eui-`` and the EUI in lower case."""
    return f"eui-{dev_eui.lower()}"
