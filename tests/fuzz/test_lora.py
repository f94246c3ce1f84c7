"""LoRa P2P frames (edge.lora_frame, LoraConverter with a real KeyRing) and LoRaWAN network-server uplinks.

Frames and messages come in sessions: authentic ones interleaved with random bytes, bit-flipped,
truncated, forged (wrong key), replayed and foreign ones. Invariants: nothing raises; every
authentic frame or uplink gives exactly its readings (the bad ones around it do not disturb it);
every bad one gives none and is counted exactly once (P2P) or at least once (network server).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from core.senml import Reading
from core.settings import MqttSettings
from edge import lora_frame
from edge.cayenne_lpp import LppType, LppValue, encode
from edge.converters import LoraConverter
from edge.edge_device import EdgeDevice
from edge.lora_keys import KeyRing
from edge.network_server import Flavour
from edge.ns_bridge import NetworkServerBridge
from tests.edge.test_network_server_fuzz import _cs_fields, _cs_topics, _documents, _tts_fields, _tts_topics
from tests.fuzz.support import FUZZ, mutated_bytes

LIGHT_ADDRESS, COUNTER_ADDRESS = "0A0B0C01", "0A0B0C02"
KEY = bytes(range(16))
DEVICES = [EdgeDevice("light-1", "street_light", "lora", address=LIGHT_ADDRESS),
           EdgeDevice("counter-1", "occupancy", "lora", address=COUNTER_ADDRESS)]  # no key: "no_key"
LIGHT_PAYLOAD = encode([LppValue(1, LppType.PERCENTAGE, 20), LppValue(2, LppType.POWER, 9)])
LIGHT_READINGS = {("light-1", "dim_level", 20.0), ("light-1", "power", 9.0)}

# --- lora_frame directly ---

_valid_frames = st.builds(lambda a, f, p: lora_frame.encode_uplink(a.hex(), f, p, KEY),
                          st.binary(min_size=4, max_size=4), st.integers(0, lora_frame.FCNT_MAX),
                          st.binary(max_size=40))
# (authentic frame, what arrives): unchanged, mutated, or random bytes (no authentic frame).
_arrivals = st.integers(0, 9).flatmap(
    lambda i: _valid_frames.map(lambda f: (f, f)) if i < 3
    else st.binary(max_size=80).map(lambda b: (None, b)) if i > 7
    else _valid_frames.flatmap(lambda f: st.tuples(st.just(f), mutated_bytes(st.just(f)))))


@FUZZ
@given(arrival=_arrivals)
def test_a_frame_splits_or_is_refused_and_only_an_unchanged_frame_verifies(arrival: tuple[bytes | None, bytes]) -> None:
    authentic, frame = arrival
    try:
        up = lora_frame.decode_uplink(frame)
    except lora_frame.FrameError as exc:
        assert len(frame) < 12 and f"frame of {len(frame)} bytes" in str(exc)
        return
    assert up.message + up.mic == frame and len(up.address) == 8 and up.address == frame[:4].hex().upper()
    assert 0 <= up.fcnt <= lora_frame.FCNT_MAX
    # A changed frame never verifies (but by a 2^-32 chance of the 4-byte MIC); an unchanged one always does.
    assert lora_frame.verify(up, KEY) is (frame == authentic) or authentic is None
    assert lora_frame.verify(up, bytes(16)) is False or authentic is None
    assert lora_frame.decode_downlink(frame).message == up.message


# --- LoraConverter: sessions of authentic and bad frames ---

_bad_kinds = st.sampled_from(["random", "mutated", "forged", "replay", "foreign", "no_key", "short"])
_session = st.lists(st.one_of(st.just(("good", b"")),
                              st.tuples(_bad_kinds, st.binary(max_size=40)),
                              st.tuples(st.just("mutated"), st.binary(max_size=1))), min_size=1, max_size=12)
_mutations = st.lists(mutated_bytes(st.just(b"\x00" * 24)), min_size=12, max_size=12)


@FUZZ
@given(session=_session, noise=_mutations, data=st.data())
def test_lora_converter_keeps_every_authentic_frame_and_counts_each_bad_one(
        session: list[tuple[str, bytes]], noise: list[bytes], data: st.DataObject) -> None:
    conv = LoraConverter(DEVICES, KeyRing(devices={LIGHT_ADDRESS: KEY}))
    fcnt, good, bad = 0, 0, 0
    sent: list[bytes] = []
    for i, (drawn, raw) in enumerate(session):
        kind = drawn
        if kind == "good":
            fcnt += 1
            frame = lora_frame.encode_uplink(LIGHT_ADDRESS, fcnt, LIGHT_PAYLOAD, KEY)
        elif kind == "mutated":
            authentic = lora_frame.encode_uplink(LIGHT_ADDRESS, fcnt + 1, LIGHT_PAYLOAD, KEY)
            frame = data.draw(mutated_bytes(st.just(authentic)), label=f"mutated {i}")
            if frame == authentic:  # a mutation that changed nothing: an authentic frame after all
                fcnt, kind = fcnt + 1, "good"
        elif kind == "forged":
            frame = lora_frame.encode_uplink(LIGHT_ADDRESS, fcnt + 1, LIGHT_PAYLOAD, bytes(16))
        elif kind == "replay":
            frame = sent[-1] if sent else lora_frame.encode_uplink(LIGHT_ADDRESS, 0, LIGHT_PAYLOAD, KEY)
            if not sent and fcnt == 0:  # counter 0 with nothing accepted yet is fresh, not a replay
                fcnt, kind = 0, "good_zero"
        elif kind == "foreign":
            frame = lora_frame.encode_uplink("DEADBEEF", fcnt + 1, raw, KEY)
        elif kind == "no_key":
            frame = lora_frame.encode_uplink(COUNTER_ADDRESS, fcnt + 1, raw, KEY)
        elif kind == "short":
            frame = raw[:11]
        else:
            frame = raw + noise[i]
        before = sum(conv.problems.values())
        readings = conv.convert(frame, 1_700_000_000.0 + i)
        if kind in ("good", "good_zero"):
            assert {(r.device, r.metric, r.value) for r in readings} == LIGHT_READINGS, (kind, frame.hex())
            assert conv.last_fcnt == (LIGHT_ADDRESS, fcnt)
            assert sum(conv.problems.values()) == before
            sent.append(frame)
            good += 1
        elif kind == "random" and readings:
            continue  # random bytes that decode as a frame of a device are vanishingly rare: no claim
        else:
            assert readings == [] and conv.last_fcnt is None, (kind, frame.hex())
            assert sum(conv.problems.values()) == before + 1, (kind, dict(conv.problems))
            bad += 1
    assert sum(conv.problems.values()) == bad and conv.lost_frames == 0 and good == len(sent)
    assert set(conv.problems) <= {"bad_frame", "foreign_address", "no_key", "bad_mic", "replay"}


# --- the network-server bridge: sessions of good uplinks and fuzzed messages ---

EUI = "A840414BD187106E"  # one of the EUIs the edge fuzz strategies use, so fuzzed messages reach this device
APPLICATIONS: dict[Flavour, str] = {"chirpstack": "app-1", "tts": "app@tenant"}
NS_PAYLOAD = bytes.fromhex("01783202800009")  # dim 50 %, 9 W
NS_READINGS = {("light-1", "dim_level", 50.0), ("light-1", "power", 9.0)}
NOW = 1_718_873_318.0


def _good_uplink(flavour: Flavour, fcnt: int) -> tuple[str, bytes]:
    data = base64.b64encode(NS_PAYLOAD).decode()
    if flavour == "chirpstack":
        doc: dict[str, Any] = {"deviceInfo": {"devEui": EUI.lower()}, "fPort": 1, "data": data, "fCnt": fcnt}
        return f"application/app-1/device/{EUI.lower()}/event/up", json.dumps(doc).encode()
    up = {"f_port": 1, "frm_payload": data, "f_cnt": fcnt}
    doc = {"end_device_ids": {"device_id": "dev-1", "dev_eui": EUI}, "uplink_message": up}
    return "v3/app@tenant/devices/dev-1/up", json.dumps(doc).encode()


def _bytes(payload: bytes | str) -> bytes:
    return payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload


_FUZZED = {
    "chirpstack": st.tuples(_cs_topics, _documents(_cs_fields).map(_bytes)),
    "tts": st.tuples(_tts_topics, _documents(_tts_fields).map(_bytes)),
}


def _message(flavour: Flavour) -> st.SearchStrategy[tuple[str, Any]]:
    good = st.just(("good", None))
    mutated = st.tuples(st.just("mutated"), st.just(None))
    fuzzed = st.tuples(st.just("fuzzed"), _FUZZED[flavour])
    return st.integers(0, 9).flatmap(lambda i: good if i < 3 else mutated if i < 5 else fuzzed)


def _session_test(flavour: Flavour, data: st.DataObject) -> None:
    stored: list[tuple[list[Reading], tuple[str, int] | None]] = []
    bridge = NetworkServerBridge("gw-1", flavour, MqttSettings(), APPLICATIONS[flavour],
                                 [EdgeDevice("light-1", "street_light", "lorawan", dev_eui=EUI)],
                                 lambda readings, fcnt: stored.append((readings, fcnt)), clock=lambda: NOW)
    last = None
    for i in range(data.draw(st.integers(1, 10), label="messages")):
        kind, fuzzed = data.draw(_message(flavour), label=f"message {i}")
        # The next good counter: above the last one stored (whatever a fuzzed message got accepted),
        # or a new session (far below) after the top of the 32-bit range.
        fcnt = 1 if last is None or last + 1 > lora_frame.FCNT_MAX else last + 1
        topic, payload = _good_uplink(flavour, fcnt)
        if kind == "mutated":
            payload = data.draw(mutated_bytes(st.just(payload)), label=f"mutated {i}")
        elif kind == "fuzzed":
            topic, payload = fuzzed
        before = (len(stored), bridge.uplinks, bridge.ignored, sum(bridge.problems.values()))
        bridge.handle_message(topic, payload)  # raises nothing: an exception fails the example
        after = (len(stored), bridge.uplinks, bridge.ignored, sum(bridge.problems.values()))
        if kind == "good":
            readings, counter = stored[-1]
            assert {(r.device, r.metric, r.value) for r in readings} == NS_READINGS
            assert all(r.time == NOW for r in readings) and counter == (EUI, fcnt)
            assert after[1] == before[1] + 1 and after[3] == before[3]
        else:
            # Nothing vanishes silently: stored, ignored (not an uplink) or counted as a problem.
            assert after[1] + after[2] + after[3] > before[1] + before[2] + before[3], (topic, payload[:200])
        if len(stored) > before[0] and stored[-1][1] is not None and stored[-1][1][0] == EUI:
            last = max(stored[-1][1][1], 0)


@FUZZ
@given(data=st.data())
def test_chirpstack_bridge_keeps_good_uplinks_and_counts_the_rest(data: st.DataObject) -> None:
    _session_test("chirpstack", data)


@FUZZ
@given(data=st.data())
def test_tts_bridge_keeps_good_uplinks_and_counts_the_rest(data: st.DataObject) -> None:
    _session_test("tts", data)
