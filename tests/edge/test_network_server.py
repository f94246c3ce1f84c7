"""ChirpStack v4 and The Things Stack v3 MQTT messages: golden uplinks in, downlinks out, every bad field named.

The golden messages follow the servers' documented JSON (protobuf JSON mapping): default values
are left out (a counter 0, no payload, false flags), EUIs are lower case in ChirpStack and upper
case in TTS, times carry nanoseconds, integers may come as decimal strings.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from edge.network_server import (
    MAX_DOWNLINK_BYTES,
    DownlinkError,
    NotAnUplinkError,
    NsMessageError,
    NsUplink,
    chirpstack_downlink,
    parse_chirpstack_uplink,
    parse_time,
    parse_tts_uplink,
    parse_uplink,
    tts_default_device_id,
    tts_downlink,
)

CS_APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
CS_TOPIC = f"application/{CS_APP}/device/a840414bd187106e/event/up"
# A street light's uplink (dim 50 %, 9 W) as ChirpStack v4 publishes it, heard by two gateways.
CS_UP = """{
  "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
  "time": "2024-06-20T08:48:38.863512123+00:00",
  "deviceInfo": {
    "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "Gemeente Voorschoten",
    "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97", "applicationName": "Straatverlichting",
    "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad", "deviceProfileName": "CayenneLPP class C",
    "deviceName": "lamp-0012", "devEui": "a840414bd187106e", "deviceClassEnabled": "CLASS_C",
    "tags": {"wijk": "WK062600"}
  },
  "devAddr": "00189440",
  "adr": true,
  "dr": 5,
  "fCnt": 4,
  "fPort": 1,
  "data": "AXgyAoAACQ==",
  "object": {"percentage": {"1": 50}, "power": {"2": 9}},
  "rxInfo": [
    {"gatewayId": "0016c001f153a14c", "uplinkId": 4217106255, "rssi": -96, "snr": 7.5, "channel": 2,
     "context": "E3OWOQ==", "crcStatus": "CRC_OK",
     "metadata": {"region_config_id": "eu868", "region_common_name": "EU868"}},
    {"gatewayId": "0016c001f153a14d", "uplinkId": 1038277, "rssi": -74, "snr": 10.25, "rfChain": 1,
     "location": {"latitude": 52.1237, "longitude": 4.4302}, "context": "AAAnEA==", "crcStatus": "CRC_OK"}
  ],
  "txInfo": {"frequency": 868500000,
             "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}}},
  "regionConfigId": "eu868"
}"""
# The first uplink of a session: fCnt 0 is left out; no codec configured, so no "object"; no
# "confirmed" (false) and a single gateway without SNR (0 is left out too).
CS_FIRST = """{"deduplicationId": "0f0e1d2c-0000-4000-8000-000000000001", "time": "2024-06-20T08:48:38.1Z",
  "deviceInfo": {"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "Gemeente Voorschoten",
                 "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97", "applicationName": "Straatverlichting",
                 "deviceName": "lamp-0012", "devEui": "a840414bd187106e"},
  "devAddr": "00189440", "dr": 5, "fPort": 1, "data": "AXgyAoAACQ==",
  "rxInfo": [{"gatewayId": "0016c001f153a14c", "uplinkId": 7, "rssi": -52, "context": "xwx0GQ=="}],
  "txInfo": {"frequency": 868100000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7}}}}"""

TTS_APP = "straatverlichting@gemeente"
TTS_TOPIC = f"v3/{TTS_APP}/devices/teller-bibliotheek/up"
# An occupancy counter (present, 2 people) as The Things Stack publishes it.
TTS_UP = """{
  "end_device_ids": {"device_id": "teller-bibliotheek", "application_ids": {"application_id": "straatverlichting"},
                     "dev_eui": "70B3D57ED005B89A", "join_eui": "0000000000000001", "dev_addr": "260BABCD"},
  "correlation_ids": ["as:up:01HX6YGQ7E0V83YRZ7K4S5J4ZN", "gs:uplink:01HX6YGQ7AS3VTM5W5W36YV1F1"],
  "received_at": "2020-02-17T07:49:09.935284891Z",
  "uplink_message": {
    "session_key_id": "AWNbm/4zfqx0jZ5q1NlBmw==",
    "f_port": 2,
    "f_cnt": 1834,
    "frm_payload": "AWYBAgIAyA==",
    "decoded_payload": {"presence_1": 1, "analog_in_2": 2},
    "rx_metadata": [{
      "gateway_ids": {"gateway_id": "eui-aa555a0000000101", "eui": "AA555A0000000101"},
      "time": "2020-02-17T07:49:09.712Z", "timestamp": 3895211423, "rssi": -68, "channel_rssi": -68,
      "snr": 9.2, "location": {"latitude": 52.1, "longitude": 4.4, "altitude": 3, "source": "SOURCE_REGISTRY"},
      "uplink_token": "ChIKEAoOZXVpLWFhNTU1YTAwMDAwMRC1", "channel_index": 2,
      "received_at": "2020-02-17T07:49:09.730Z"
    }],
    "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7, "coding_rate": "4/5"}},
                 "frequency": "868500000", "timestamp": 3895211423, "time": "2020-02-17T07:49:09.712Z"},
    "received_at": "2020-02-17T07:49:09.736532315Z",
    "consumed_airtime": "0.061696s",
    "network_ids": {"net_id": "000013", "tenant_id": "gemeente", "cluster_id": "eu1"}
  }
}"""


def _doc(text: str) -> dict[str, Any]:
    return dict(json.loads(text))


def _dump(doc: Any) -> bytes:
    return json.dumps(doc).encode()


# --- ChirpStack v4 ---


def test_chirpstack_uplink_golden() -> None:
    up = parse_chirpstack_uplink(CS_TOPIC, CS_UP.encode())
    assert up == NsUplink(
        flavour="chirpstack", application=CS_APP, dev_eui="A840414BD187106E", device_id=None, fport=1, fcnt=4,
        payload=bytes.fromhex("01783202800009"), received=1718873318.863512, rssi=-74.0, snr=10.25,
        gateways=("0016c001f153a14c", "0016c001f153a14d"))
    assert up.decoded == {"percentage": {"1": 50}, "power": {"2": 9}}


def test_chirpstack_first_uplink_with_defaults_left_out() -> None:
    up = parse_chirpstack_uplink(CS_TOPIC, CS_FIRST)  # str as well as bytes
    assert up.fcnt is None  # fCnt 0, left out
    assert up.decoded is None  # no codec: no "object"
    assert up.payload == bytes.fromhex("01783202800009")
    assert (up.rssi, up.snr, up.gateways) == (-52.0, None, ("0016c001f153a14c",))
    assert up.received == pytest.approx(1718873318.1, abs=1e-6)


def test_chirpstack_uplink_without_payload() -> None:
    doc = _doc(CS_FIRST)
    del doc["data"], doc["fPort"]  # a MAC-only frame: port 0 and no data, both left out
    up = parse_chirpstack_uplink(CS_TOPIC, _dump(doc))
    assert (up.payload, up.fport) == (b"", None)
    doc["data"] = ""
    assert parse_chirpstack_uplink(CS_TOPIC, _dump(doc)).payload == b""


def test_protobuf_json_mapping_variants_are_accepted() -> None:
    doc = _doc(CS_UP)
    doc["fCnt"], doc["fPort"] = "4", "1"  # integers as decimal strings
    doc["data"] = "AXgyAoAACQ"  # unpadded
    assert parse_chirpstack_uplink(CS_TOPIC, _dump(doc)).payload == bytes.fromhex("01783202800009")
    doc["data"] = "-_8"  # URL-safe alphabet
    up = parse_chirpstack_uplink(CS_TOPIC, _dump(doc))
    assert (up.fcnt, up.fport, up.payload) == (4, 1, b"\xfb\xff")


@pytest.mark.parametrize("event", ["join", "ack", "txack", "status", "log", "location", "integration"])
def test_other_chirpstack_events_are_not_uplinks(event: str) -> None:
    with pytest.raises(NotAnUplinkError) as info:
        parse_chirpstack_uplink(CS_TOPIC.replace("/event/up", f"/event/{event}"), b"{}")
    assert (info.value.event, info.value.device) == (f"event/{event}", "A840414BD187106E")
    assert isinstance(info.value, NsMessageError)  # a caller catching the base class still sees it


def test_our_own_downlink_command_is_not_an_uplink() -> None:
    topic, body = chirpstack_downlink(CS_APP, "A840414BD187106E", 10, b"\x01")
    with pytest.raises(NotAnUplinkError):
        parse_chirpstack_uplink(topic, body)


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = doc
        for p in parents:
            target = target[p]
        target[last] = value
    return mutate


def _delete(path: str) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = doc
        for p in parents:
            target = target[p]
        del target[last]
    return mutate


CS_BAD: list[tuple[str, Mutation, str]] = [
    ("no deviceInfo", _delete("deviceInfo"), "deviceInfo: missing"),
    ("deviceInfo not an object", _set("deviceInfo", "a840414bd187106e"), "deviceInfo: must be an object"),
    ("no devEui", _delete("deviceInfo.devEui"), "deviceInfo.devEui"),
    ("short devEui", _set("deviceInfo.devEui", "a840414bd18710"), "deviceInfo.devEui"),
    ("devEui not hex", _set("deviceInfo.devEui", "a840414bd187106g"), "deviceInfo.devEui"),
    ("devEui of another device", _set("deviceInfo.devEui", "a840414bd187106f"), "differs from the topic"),
    ("negative fCnt", _set("fCnt", -1), "fCnt"),
    ("fCnt beyond 32 bits", _set("fCnt", 2**32), "fCnt"),
    ("fractional fCnt", _set("fCnt", 4.5), "fCnt"),
    ("boolean fCnt", _set("fCnt", True), "fCnt"),
    ("fPort beyond 255", _set("fPort", 256), "fPort"),
    ("fPort as words", _set("fPort", "one"), "fPort"),
    ("data not base64", _set("data", "AX*y"), "data"),
    ("data of the wrong length", _set("data", "AXgyA"), "data"),
    ("data as a number", _set("data", 17), "data"),
    ("data with non-ASCII", _set("data", "AXgy\u00e9"), "data"),
]


@pytest.mark.parametrize(("mutate", "field"), [pytest.param(m, f, id=i) for i, m, f in CS_BAD])
def test_bad_chirpstack_fields_are_named(mutate: Mutation, field: str) -> None:
    doc = copy.deepcopy(_doc(CS_UP))
    mutate(doc)
    with pytest.raises(NsMessageError, match=field.replace(".", r"\.")) as info:
        parse_chirpstack_uplink(CS_TOPIC, _dump(doc))
    assert not isinstance(info.value, NotAnUplinkError)


@pytest.mark.parametrize(("topic", "field"), [
    ("application/app/device/a840414bd187106e/up", "not application/APP_ID"),
    ("applications/app/device/a840414bd187106e/event/up", "not application/APP_ID"),
    ("application//device/a840414bd187106e/event/up", "not application/APP_ID"),
    ("application/app/device/not-an-eui/event/up", "topic DevEUI"),
    ("application/app/device/a840414bd187106e00/event/up", "topic DevEUI"),
])
def test_bad_chirpstack_topics_are_named(topic: str, field: str) -> None:
    with pytest.raises(NsMessageError, match=field) as info:
        parse_chirpstack_uplink(topic, CS_UP)
    assert not isinstance(info.value, NotAnUplinkError)


@pytest.mark.parametrize(("payload", "message"), [
    (b"{not json", "not JSON"), (b"\xff\xfe\x00", "not JSON"), (b"", "not JSON"),
    (b"[1, 2]", "must be a JSON object"), (b"null", "must be a JSON object"),
    (b"[" * 100_000, "not JSON"),  # nested past the recursion limit
])
def test_payloads_that_are_no_json_object(payload: bytes, message: str) -> None:
    for parse, topic in ((parse_chirpstack_uplink, CS_TOPIC), (parse_tts_uplink, TTS_TOPIC)):
        with pytest.raises(NsMessageError, match=message):
            parse(topic, payload)


def test_metadata_the_bridge_does_not_need_is_best_effort() -> None:
    doc = _doc(CS_UP)
    doc["time"] = "yesterday"
    doc["rxInfo"] = [17, {"gatewayId": 5, "rssi": "loud"}, {"gatewayId": "gw-b", "rssi": True, "snr": 1e400},
                     {"rssi": -(10**400)}]
    doc["object"] = [1, 2]
    up = parse_chirpstack_uplink(CS_TOPIC, _dump(doc))
    assert (up.received, up.rssi, up.snr, up.gateways, up.decoded) == (None, None, None, ("gw-b",), None)
    assert (up.fcnt, up.payload) == (4, bytes.fromhex("01783202800009"))  # the reading is not lost
    doc["rxInfo"] = {"gatewayId": "x"}
    assert parse_chirpstack_uplink(CS_TOPIC, _dump(doc)).gateways == ()


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-06-20T08:48:38.863512123+00:00", 1718873318.863512),
    ("2024-06-20T08:48:38.863512Z", 1718873318.863512),
    ("2024-06-20T10:48:38.5+02:00", 1718873318.5),
    ("2024-06-20t08:48:38z", 1718873318.0),
    ("2024-06-20T08:48:38", None),  # no zone: ambiguous
    ("2024-02-30T08:48:38Z", None),
    ("2016-12-31T23:59:60Z", None),  # a leap second
    ("2024-06-20T08:48:38+24:00", None),
    ("2024-06-20", None),
    ("\u0662024-06-20T08:48:38Z", None),  # an Arabic-Indic digit
    (1718873318, None),
    (None, None),
])
def test_receive_times(text: object, expected: float | None) -> None:
    assert parse_time(text) == (pytest.approx(expected, abs=1e-6) if expected is not None else None)


# --- The Things Stack v3 ---


def test_tts_uplink_golden() -> None:
    up = parse_tts_uplink(TTS_TOPIC, TTS_UP.encode())
    assert up == NsUplink(
        flavour="tts", application=TTS_APP, dev_eui="70B3D57ED005B89A", device_id="teller-bibliotheek", fport=2,
        fcnt=1834, payload=bytes.fromhex("0166010202" "00C8"), received=1581925749.935284, rssi=-68.0, snr=9.2,
        gateways=("eui-aa555a0000000101",))
    assert up.decoded == {"presence_1": 1, "analog_in_2": 2}


def test_tts_open_source_topic_and_defaults_left_out() -> None:
    doc = _doc(TTS_UP)
    del doc["received_at"], doc["uplink_message"]["f_cnt"], doc["uplink_message"]["decoded_payload"]
    up = parse_tts_uplink("v3/straatverlichting/devices/teller-bibliotheek/up", _dump(doc))
    assert up.application == "straatverlichting"  # The Things Stack Open Source: no tenant
    assert (up.fcnt, up.decoded) == (None, None)
    assert up.received == pytest.approx(1581925749.736532, abs=1e-6)  # the Network Server's time, as a fallback


@pytest.mark.parametrize("event", ["join", "down/queued", "down/sent", "down/ack", "down/nack", "down/failed",
                                   "down/push", "down/replace", "service/data", "location/solved"])
def test_other_tts_messages_are_not_uplinks(event: str) -> None:
    with pytest.raises(NotAnUplinkError) as info:
        parse_tts_uplink(TTS_TOPIC.removesuffix("/up") + f"/{event}", b"{}")
    assert (info.value.event, info.value.device) == (event, "teller-bibliotheek")


TTS_BAD: list[tuple[str, Mutation, str]] = [
    ("no end_device_ids", _delete("end_device_ids"), "end_device_ids: missing"),
    ("device_id of another device", _set("end_device_ids.device_id", "teller-2"), "end_device_ids.device_id"),
    ("no device_id", _delete("end_device_ids.device_id"), "end_device_ids.device_id"),
    ("no dev_eui (an ABP device without one)", _delete("end_device_ids.dev_eui"), "end_device_ids.dev_eui"),
    ("dev_eui as a number", _set("end_device_ids.dev_eui", 70), "end_device_ids.dev_eui"),
    ("no uplink_message", _delete("uplink_message"), "uplink_message: missing"),
    ("uplink_message a list", _set("uplink_message", []), "uplink_message: must be an object"),
    ("f_port negative", _set("uplink_message.f_port", -2), "uplink_message.f_port"),
    ("f_cnt a float", _set("uplink_message.f_cnt", 1.5), "uplink_message.f_cnt"),
    ("f_cnt huge", _set("uplink_message.f_cnt", 10**4000), "uplink_message.f_cnt"),
    ("frm_payload hex, not base64", _set("uplink_message.frm_payload", "01660102!"), "uplink_message.frm_payload"),
]


@pytest.mark.parametrize(("mutate", "field"), [pytest.param(m, f, id=i) for i, m, f in TTS_BAD])
def test_bad_tts_fields_are_named(mutate: Mutation, field: str) -> None:
    doc = copy.deepcopy(_doc(TTS_UP))
    mutate(doc)
    with pytest.raises(NsMessageError, match=field.replace(".", r"\.")):
        parse_tts_uplink(TTS_TOPIC, json.dumps(doc))


@pytest.mark.parametrize("topic", ["v3/app/device/teller/up", "v2/app/devices/teller/up", "v3//devices/teller/up",
                                   "v3/app/devices//up", "v3/app/devices/teller", "up"])
def test_bad_tts_topics_are_named(topic: str) -> None:
    with pytest.raises(NsMessageError, match="topic") as info:
        parse_tts_uplink(topic, TTS_UP)
    assert not isinstance(info.value, NotAnUplinkError)


def test_parse_uplink_picks_the_flavour() -> None:
    assert parse_uplink("chirpstack", CS_TOPIC, CS_UP).flavour == "chirpstack"
    assert parse_uplink("tts", TTS_TOPIC, TTS_UP).flavour == "tts"
    with pytest.raises(NsMessageError):
        parse_uplink("tts", CS_TOPIC, CS_UP)  # a ChirpStack topic is no TTS topic
    with pytest.raises(ValueError, match="flavour"):
        parse_uplink("kpn", CS_TOPIC, CS_UP)  # type: ignore[arg-type]


# --- downlinks ---


def test_chirpstack_downlink_golden() -> None:
    topic, body = chirpstack_downlink(CS_APP, "A840414BD187106E", 10, bytes.fromhex("017832"))
    assert topic == f"application/{CS_APP}/device/a840414bd187106e/command/down"
    assert json.loads(body) == {"devEui": "a840414bd187106e", "confirmed": False, "fPort": 10, "data": "AXgy"}
    assert json.loads(chirpstack_downlink(CS_APP, "a840414bd187106e", 10, b"", confirmed=True)[1])["confirmed"]


def test_tts_downlink_golden() -> None:
    topic, body = tts_downlink(TTS_APP, "lamp-0012", 15, b"\xbe\xef")
    assert topic == f"v3/{TTS_APP}/devices/lamp-0012/down/replace"
    assert json.loads(body) == {"downlinks": [{"f_port": 15, "frm_payload": "vu8=", "priority": "NORMAL"}]}
    assert tts_default_device_id("70B3D57ED005B89A") == "eui-70b3d57ed005b89a"


@pytest.mark.parametrize(("encode", "message"), [
    (lambda: chirpstack_downlink(CS_APP, "A840414BD187106", 10, b"\x01"), "DevEUI"),
    (lambda: chirpstack_downlink("app/other", "A840414BD187106E", 10, b"\x01"), "application"),
    (lambda: chirpstack_downlink("#", "A840414BD187106E", 10, b"\x01"), "application"),
    (lambda: chirpstack_downlink(CS_APP, "A840414BD187106E", 0, b"\x01"), "port"),
    (lambda: chirpstack_downlink(CS_APP, "A840414BD187106E", 224, b"\x01"), "port"),
    (lambda: chirpstack_downlink(CS_APP, "A840414BD187106E", 10, bytes(MAX_DOWNLINK_BYTES + 1)), "payload"),
    (lambda: tts_downlink(TTS_APP, "lamp+1", 15, b"\x01"), "device ID"),
    (lambda: tts_downlink(TTS_APP, "", 15, b"\x01"), "device ID"),
    (lambda: tts_downlink("", "lamp-1", 15, b"\x01"), "application"),
    (lambda: tts_downlink(TTS_APP, "lamp-1", True, b"\x01"), "port"),
], ids=["short-eui", "app-slash", "app-hash", "port-0", "port-224", "too-long", "id-plus", "id-empty",
        "tts-app-empty", "port-bool"])
def test_downlinks_that_cannot_be_encoded(encode: Callable[[], object], message: str) -> None:
    with pytest.raises(DownlinkError, match=message):
        encode()
    assert chirpstack_downlink(CS_APP, "A840414BD187106E", 223, bytes(MAX_DOWNLINK_BYTES))  # the limits themselves
