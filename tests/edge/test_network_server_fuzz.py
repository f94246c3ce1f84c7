"""Random topics and payloads to the network-server parsers: an NsUplink or NsMessageError, never another exception.

The bridge parses whatever arrives on the server's topics inside paho's network thread; any other
exception would be caught by MqttLink's guard but counted as a callback error instead of a bad
message. Inputs mix plain random bytes and text with documents of the servers' shape whose fields
hold the right thing mostly and junk sometimes, so the field checks deep in the parsers run too.

CI runs SMARTCITY_FUZZ_EXAMPLES examples per target (default 300, derandomized); a long run is
``SMARTCITY_FUZZ_EXAMPLES=100000 pytest tests/edge/test_network_server_fuzz.py``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.network_server import NsMessageError, NsUplink, parse_chirpstack_uplink, parse_tts_uplink

EXAMPLES = int(os.environ.get("SMARTCITY_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_EUIS = st.one_of(st.binary(min_size=8, max_size=8).map(bytes.hex), st.binary(min_size=8, max_size=8).map(
    lambda b: b.hex().upper()), st.from_regex(r"\A[0-9A-Za-z]{0,18}\Z"))
# Topic and payload draw from the same few EUIs and device IDs, so that they agree often enough
# for the parsers to get past that check to the fields.
_SAME_EUI = st.sampled_from(["a840414bd187106e", "A840414BD187106E", "a840414bd187106f"])
_SAME_ID = st.sampled_from(["dev-1", "dev-2"])
_scalars = st.one_of(st.none(), st.booleans(), st.floats(), st.integers(-(2**70), 2**70),
                     st.integers(10**300, 10**301), st.text(max_size=12), _EUIS)
_junk = _scalars | st.lists(_scalars, max_size=3) | st.dictionaries(st.text(max_size=6), _scalars, max_size=3)


def _or_junk(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid values mostly, junk one time in ten (not one_of: Hypothesis would favour the junk)."""
    return st.integers(0, 9).flatmap(lambda i: _junk if i == 5 else valid)


_b64 = st.one_of(st.binary(max_size=24).map(lambda b: base64.b64encode(b).decode()),
                 st.binary(max_size=24).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
                 st.from_regex(r"\A[A-Za-z0-9+/=_-]{0,20}\Z"), st.text(max_size=8))
_counters = st.one_of(st.integers(-2, 2**32 + 2), st.integers(0, 2**32).map(str), st.sampled_from(["", "0x10", "٣"]))
_times = st.one_of(st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,14})?"
                                 r"(Z|[+-][0-9]{2}:[0-9]{2})?\Z"), st.text(max_size=30))
_numbers = st.one_of(st.integers(-200, 20), st.floats(), st.integers(10**308, 10**310).map(lambda n: -n))

_cs_rx = st.fixed_dictionaries({}, optional={"gatewayId": _or_junk(_EUIS), "rssi": _or_junk(_numbers),
                                             "snr": _or_junk(_numbers), "context": _b64})
_cs_fields = {
    "time": _or_junk(_times),
    "deviceInfo": _or_junk(st.fixed_dictionaries({"devEui": _or_junk(_SAME_EUI | _EUIS)},
                                                 optional={"deviceName": st.text(max_size=8)})),
    "fCnt": _or_junk(_counters),
    "fPort": _or_junk(st.integers(-1, 300)),
    "data": _or_junk(_b64),
    "object": _junk,
    "rxInfo": _or_junk(st.lists(_cs_rx | _junk, max_size=3)),
}
_tts_rx = st.fixed_dictionaries({}, optional={
    "gateway_ids": _or_junk(st.fixed_dictionaries({}, optional={"gateway_id": st.text(max_size=8), "eui": _EUIS})),
    "rssi": _or_junk(_numbers), "snr": _or_junk(_numbers)})
_tts_fields = {
    "end_device_ids": _or_junk(st.fixed_dictionaries({
        "device_id": _or_junk(_SAME_ID), "dev_eui": _or_junk(_SAME_EUI | _EUIS)})),
    "received_at": _or_junk(_times),
    "uplink_message": _or_junk(st.fixed_dictionaries({}, optional={
        "f_port": _or_junk(st.integers(-1, 300)), "f_cnt": _or_junk(_counters), "frm_payload": _or_junk(_b64),
        "decoded_payload": _junk, "received_at": _or_junk(_times),
        "rx_metadata": _or_junk(st.lists(_tts_rx | _junk, max_size=3))})),
}


def _documents(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[bytes | str]:
    """Documents with every field (most often) or any subset, as bytes or str; sometimes anything at all."""
    docs = st.integers(0, 4).flatmap(
        lambda i: st.fixed_dictionaries(fields) if i else st.fixed_dictionaries({}, optional=fields))
    dumped = st.tuples(docs.map(json.dumps), st.booleans()).map(lambda p: p[0].encode() if p[1] else p[0])
    return st.integers(0, 9).flatmap(lambda i: (st.binary(max_size=64) | st.text(max_size=64)
                                                | _junk.map(json.dumps)) if i == 0 else dumped)


_levels = st.text(st.characters(blacklist_characters="/"), max_size=10)
_cs_topics = st.integers(0, 9).flatmap(lambda i: st.builds(
    lambda eui, ev: f"application/app-1/device/{eui}/{ev}", _SAME_EUI if i < 7 else _EUIS,
    st.just("event/up") if i < 7 else st.sampled_from(["event/join", "event/txack", "command/down", "event", "x"]))
    if i < 9 else st.lists(_levels, max_size=8).map("/".join) | st.text(max_size=40))
_tts_topics = st.integers(0, 9).flatmap(lambda i: st.builds(
    lambda dev, ev: f"v3/app@tenant/devices/{dev}/{ev}", _SAME_ID if i < 7 else st.text(max_size=6),
    st.just("up") if i < 7 else st.sampled_from(["join", "down/sent", "down/push", "", "up/x"]))
    if i < 9 else st.lists(_levels, max_size=8).map("/".join) | st.text(max_size=40))

TARGETS: list[tuple[str, Callable[[str, bytes | str], NsUplink], st.SearchStrategy[Any], st.SearchStrategy[Any]]] = [
    ("chirpstack", parse_chirpstack_uplink, _cs_topics, _documents(_cs_fields)),
    ("tts", parse_tts_uplink, _tts_topics, _documents(_tts_fields)),
]


@pytest.mark.parametrize(("parse", "topics", "payloads"), [pytest.param(p, t, d, id=n) for n, p, t, d in TARGETS])
@FUZZ
@given(data=st.data())
def test_parser_raises_only_its_own_error(parse: Callable[[str, bytes | str], NsUplink],
                                          topics: st.SearchStrategy[str], payloads: st.SearchStrategy[bytes | str],
                                          data: st.DataObject) -> None:
    topic, payload = data.draw(topics, label="topic"), data.draw(payloads, label="payload")
    try:
        up = parse(topic, payload)
    except NsMessageError as exc:
        assert str(exc)  # every refusal says what is wrong
        return
    # What comes out is what the bridge relies on.
    assert len(up.dev_eui) == 16 and up.dev_eui == up.dev_eui.upper()
    assert up.fcnt is None or 0 <= up.fcnt <= 0xFFFFFFFF
    assert up.fport is None or 0 <= up.fport <= 255
    assert isinstance(up.payload, bytes)
    assert up.received is None or isinstance(up.received, float)
