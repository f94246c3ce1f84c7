"""Random input to every parser and decoder: a result or the module's own error, never another exception.

A gateway parses bytes from radios, lines from UARTs and JSON from MQTT; an exception other than the
one its caller catches kills a reader thread or a network loop. Each target below names the error its
callers catch. Inputs mix plain random bytes/text with generators that know a little of each grammar,
so that the deeper branches (number conversions, hex, base fields) are reached too.

CI runs SMARTCITY_FUZZ_EXAMPLES examples per target (default 300, derandomized, so it is repeatable);
the bench run uses ``SMARTCITY_FUZZ_EXAMPLES=100000 pytest tests/edge/test_parser_fuzz.py`` (about 40
minutes on a 2-core host for all targets; ``-k rg15`` and the like pick one).
The crashes it found are kept as regression tests at the end.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import commands, jsonfast, senml, senml_columns, topics
from edge import cayenne_lpp, device_codecs, lora_frame, rak3172, rg15, rn2483

EXAMPLES = int(os.environ.get("SMARTCITY_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- bytes: LoRa frames and CayenneLPP payloads ---

_LPP_TYPES = sorted(int(t) for t in cayenne_lpp.LppType)
# (channel, type) pairs a device layout uses, so that decode_metrics converts real fields.
_LAYOUT_KEYS = sorted({key for layout in device_codecs.UPLINK_LAYOUT.values() for key in layout})
_LONGEST = max(cayenne_lpp.value_size(t) for t in _LPP_TYPES)


def _entry(channel: int, lpp_type: int, raw: bytes) -> bytes:
    size = cayenne_lpp.value_size(lpp_type) if lpp_type in _LPP_TYPES else len(raw)
    return bytes((channel, lpp_type)) + raw[:size]


# Entries of the right size: of a layout's (channel, type), of any known type, or of any type byte.
# Tuples and map rather than composite/flatmap: the same inputs at a third of Hypothesis's overhead.
_value_bytes = st.binary(min_size=_LONGEST, max_size=_LONGEST)
_layout_entry = st.tuples(st.sampled_from(_LAYOUT_KEYS), _value_bytes).map(lambda p: _entry(*p[0], p[1]))
_lpp_entry = st.one_of(
    _layout_entry,
    st.tuples(st.integers(0, 255), st.sampled_from(_LPP_TYPES), _value_bytes).map(lambda p: _entry(*p)),
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=_LONGEST)).map(lambda p: _entry(*p)),
)
_lpp_payloads = st.one_of(
    st.binary(max_size=96),
    st.lists(_lpp_entry, max_size=8).map(b"".join),
    st.lists(_layout_entry, max_size=8).map(b"".join),
    st.tuples(st.lists(_lpp_entry, max_size=8), st.binary(min_size=1, max_size=3)).map(
        lambda p: b"".join(p[0]) + p[1]),
)
_frames = st.one_of(st.binary(max_size=96), st.tuples(st.binary(min_size=8, max_size=8), _lpp_payloads,
                                                      st.binary(min_size=4, max_size=4)).map(b"".join))

# --- lines: what the serial ports hand on (ASCII with U+FFFD for bad bytes), and any text ---

_port_text = st.text(st.characters(codec="ascii") | st.just("\ufffd"), max_size=80)
_any_text = st.text(max_size=80)
# Mostly plain numbers; sometimes other Unicode digits (\d matches them, int() and float() take
# them) or long runs. SerialLink hands on at most MAX_LINE (1024) bytes a line, so runs stay below.
_digits = st.one_of(
    st.integers(0, 10**6).map(str), st.integers(0, 2**40).map(str), st.from_regex(r"\A\d{1,4}\Z"),
    st.integers(13, 1000).map(lambda n: "7" * n),
)
_number = st.one_of(_digits, _digits, st.tuples(_digits, _digits).map(".".join), _digits.map(lambda d: "." + d),
                    _digits.map(lambda d: "-" + d), st.sampled_from(["", ".", "-", "1e5", "nan", "inf"]))
_hex = st.one_of(st.binary(max_size=40).map(bytes.hex), st.binary(max_size=40).map(lambda b: b.hex().upper()),
                 st.from_regex(r"\A[0-9A-Fa-fG-Zx]{0,41}\Z"))
_space = st.sampled_from([" ", "  ", "", "\t"])


def _joined(parts: st.SearchStrategy[list[str]]) -> st.SearchStrategy[str]:
    return parts.map("".join)


# Units of one system mostly (the parser refuses a mix), sometimes any unit at all.
_rg15_units = st.one_of(
    st.sampled_from([("mm", "mm", "mm", "mmph"), ("in", "in", "in", "iph"), ("MM", "mm", "Mm", "MMPH")]),
    st.tuples(*[st.sampled_from(["mm", "in", "x", ""])] * 3, st.sampled_from(["mmph", "iph", "mph", ""])),
)
_rg15_lines = st.one_of(
    _port_text,
    _any_text,
    st.builds(lambda a, e, t, r, u, s: f"Acc{s}{a}{s}{u[0]},{s}EventAcc {e} {u[1]}, TotalAcc{s}{t} {u[2]}, "
              f"RInt {r}{s}{u[3]}", _number, _number, _number, _number, _rg15_units, _space),
    _joined(st.lists(st.sampled_from([";", "SW", "Emitters", "EmTotal", "DIP", "PwrDays", "Reset", "Event",
                                      "LensBad", "EmSat", "TooCold", "Baud", "p", "c", "m", "i", "h", "l",
                                      ",", " ", "Acc", "mm", "in"]) | _number, max_size=8)),
)
_rn2483_lines = st.one_of(
    _port_text,
    _any_text,
    st.builds(lambda s, h: f"radio_rx{s}{h}", st.sampled_from([" ", "  ", "\t", ""]), _hex),
    st.builds(lambda h: f"radio_rx  {h}", _port_text),
    st.builds(lambda chip, v, rest: f"{chip} {v}{rest}", st.sampled_from(["RN2483", "RN2903", "RN2", "rn2483"]),
              _joined(st.lists(_digits | st.just("."), max_size=6)), _port_text),
    _number,
    st.sampled_from(["radio_err", "radio_tx_ok", "ok", "invalid_param", "busy", "4294967295", "4294967296"]),
)
_rak_header = st.builds(lambda a, b, s: f"+EVT:RXP2P,{s}RSSI {a},{s}SNR {b}", _number, _number, _space)
_rak_data = _hex.map(lambda h: f"+EVT:{h}")
_rak_line = st.one_of(
    _port_text,
    _any_text,
    st.builds(lambda a, b, h: f"+EVT:RXP2P:{a}:{b}:{h}", _number, _number, _hex),
    _rak_header,
    _rak_data,
    st.from_regex(r"\AAT_[A-Z_]{0,20}\Z") | st.from_regex(r"\AAT_[A-Za-z_ ]{0,20}\Z"),
    st.sampled_from(["OK", "", "  ", "+EVT:TXP2P DONE", "+EVT:RXP2P RECEIVE TIMEOUT"]),
)
# A session of lines for one parser, with header + data pairs (sometimes split by a blank line).
_rak_sessions = st.lists(st.one_of(
    _rak_line.map(lambda line: [line]),
    st.tuples(_rak_header, st.sampled_from([[], [""], ["OK"]]), _rak_data).map(lambda p: [p[0], *p[1], p[2]]),
), max_size=6).map(lambda groups: [line for group in groups for line in group])

# --- JSON: SenML packs, commands and acks ---

# JSON integers far beyond float range too: the standard library parses any size (orjson refuses
# integers past 64 bits).
_json_scalars = st.one_of(
    st.none(), st.booleans(), st.floats(), st.integers(-(2**70), 2**70), st.integers(-(10**300), 10**300),
    st.integers(10**400, 10**401),
    st.text(max_size=12),
    st.sampled_from(["dim", "applied", "rejected", "expired", "failed", "lamp-1", "gw-1/", "Cel", ""]),
)
_json_keys = st.one_of(
    st.sampled_from(["bn", "bt", "bu", "n", "v", "vb", "vs", "t", "u", "seq",
                     "action", "params", "level", "expires_at", "issued_at", "device", "origin", "id",
                     "status", "detail"]),
    st.text(max_size=4),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_json_keys, inner, max_size=8),
    max_leaves=24,
)
_ids = st.one_of(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z"), st.from_regex(r"\A[\w.-]{0,70}\Z"))
_finite = st.floats(allow_nan=False, allow_infinity=False)
_times = st.one_of(_finite, st.integers(-(2**40), 2**40), st.sampled_from([1.7e9, 0, 2**28, 1e11, -1e11]))


# Small JSON values of any type: what a field holds when it holds the wrong thing.
_junk = _json_scalars | st.lists(_json_scalars, max_size=2) | st.dictionaries(_json_keys, _json_scalars, max_size=2)


def _or_junk(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's valid values mostly, a wrong value one time in ten."""
    # Not one_of(valid, junk): Hypothesis favours the first branches, and junk would dominate.
    return st.integers(0, 9).flatmap(lambda i: _junk if i == 5 else valid)


_command_fields = {
    "action": _or_junk(st.sampled_from([a.value for a in commands.Action])),
    "params": _or_junk(st.fixed_dictionaries({"level": _or_junk(st.integers(-5, 105) | _finite)})),
    "expires_at": _or_junk(st.none() | _times),
    "issued_at": _or_junk(_times),
    "device": _or_junk(_ids),
    "origin": _or_junk(st.text(max_size=8)),
    "id": _or_junk(st.text(max_size=8)),
    "status": _or_junk(st.sampled_from([s.value for s in commands.AckStatus])),
    "detail": _junk,
}
# Every field present (so validation reaches the last checks), or any subset of them.
_command_objects = st.fixed_dictionaries(_command_fields) | st.fixed_dictionaries({}, optional=_command_fields)
_base_fields = {
    "bn": _or_junk(_ids.map(lambda i: i + "/") | _ids),
    "bt": _or_junk(_times),
    "bu": _or_junk(st.none() | st.sampled_from(["Cel", "%", ""])),
    "t": _or_junk(_times),
    "u": _or_junk(st.none() | st.text(max_size=4)),
    "seq": _or_junk(st.integers(-3, 2**63)),
}
_senml_records = st.one_of(*[
    st.fixed_dictionaries({"n": _or_junk(_ids), key: _or_junk(value)}, optional=_base_fields)
    for key, value in (("v", _finite | st.integers(-(2**53), 2**53)), ("vb", st.booleans()),
                       ("vs", st.text(max_size=8)))
], st.fixed_dictionaries({}, optional=_base_fields))


def _json_payloads(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes | str]:
    """Mostly documents of the expected shape, as bytes or str; some plain bytes, text and other JSON."""
    # Dumped by the standard library, so NaN and Infinity literals appear too.
    dumped = st.tuples(st.one_of(documents, documents, _json_values).map(json.dumps), st.booleans()).map(
        lambda p: p[0].encode() if p[1] else p[0])
    return st.one_of(st.binary(max_size=64), _any_text, *[dumped] * 4)


_command_payloads = _json_payloads(_command_objects)
_senml_payloads = _json_payloads(st.lists(_senml_records, min_size=1, max_size=5)
                                 | st.lists(_senml_records | _json_values, max_size=5))


@contextmanager
def json_backend(name: str) -> Iterator[None]:
    """Parse JSON with orjson (servers) or the standard library (a gateway without the orjson wheel)."""
    if name == "stdlib":
        with mock.patch.object(jsonfast, "loads", jsonfast.stdlib_loads):
            yield
    else:
        yield  # orjson is installed in the test environment (the server extra)


# --- the targets ---


@dataclass(frozen=True)
class Target:
    """One parser: what it is fed, how it is called, and the error its callers catch."""

    name: str
    inputs: st.SearchStrategy[Any]
    call: Callable[[Any], object]
    error: type[Exception]
    json: bool = False  # run under both JSON backends


def _device_codecs_all(payload: bytes) -> None:
    for kind in (*device_codecs.UPLINK_LAYOUT, "rain_gauge", "no-such-kind"):
        with suppress(device_codecs.CodecError):
            device_codecs.decode_payload(kind, payload)
        with suppress(device_codecs.CodecError):
            device_codecs.decode_metrics(kind, cayenne_lpp.decode_partial(payload).values)
    device_codecs.decode_dim(payload)


def _frame_both_ways(frame: bytes) -> None:
    with suppress(lora_frame.FrameError):
        lora_frame.decode_downlink(frame)
    up = lora_frame.decode_uplink(frame)
    # Verifying a frame of any content with a well-formed key answers, it does not raise.
    assert lora_frame.verify(up, bytes(16)) in (True, False)


def _lpp_both(payload: bytes) -> None:
    # decode_partial never raises for bad bytes: it reports them in .error; decode raises that error.
    values, error = cayenne_lpp.decode_partial(payload)
    assert error is None or isinstance(error, cayenne_lpp.LppError)
    assert cayenne_lpp.decode(payload) == values


def _senml_both(payload: bytes | str) -> None:
    # senml.decode builds on decode_columns; both are called so a failure names the layer.
    senml_columns.decode_columns(payload, now=1_700_000_000.0)
    senml.decode(payload, now=1_700_000_000.0)


def _command_and_ack(payload: bytes | str) -> None:
    with suppress(commands.CommandError):
        commands.parse_command(payload)
    commands.parse_ack(payload)


def _rak_feed(lines: list[str]) -> None:
    parser = rak3172.Rak3172Parser()  # one parser for a whole session: its two-line state is fuzzed too
    for line in lines:
        with suppress(rak3172.RakError):
            parser.feed(line)


TARGETS = [
    Target("cayenne_lpp.decode", _lpp_payloads, _lpp_both, cayenne_lpp.LppError),
    Target("lora_frame.decode", _frames, _frame_both_ways, lora_frame.FrameError),
    Target("device_codecs", _lpp_payloads, _device_codecs_all, device_codecs.CodecError),
    Target("rg15.parse_line", _rg15_lines, rg15.parse_line, rg15.RG15Error),
    Target("rn2483.parse_line", _rn2483_lines, rn2483.parse_line, rn2483.ModemError),
    Target("rak3172.feed", _rak_sessions, _rak_feed, rak3172.RakError),
    Target("topics.parse", _port_text | _any_text | st.builds(
        lambda g, c: f"{topics.PREFIX}/{g}/{c}", _ids, st.sampled_from([*topics.Channel, "x", ""])),
        topics.parse, topics.TopicError),
    Target("senml.decode", _senml_payloads, _senml_both, senml_columns.SenMLError, json=True),
    Target("commands.parse", _command_payloads, _command_and_ack, commands.CommandError, json=True),
]
CASES = [pytest.param(t, backend, id=f"{t.name}-{backend}" if t.json else t.name)
         for t in TARGETS for backend in (("orjson", "stdlib") if t.json else ("-",))]


@pytest.mark.parametrize(("target", "backend"), CASES)
@FUZZ
@given(data=st.data())
def test_parser_raises_only_its_own_error(target: Target, backend: str, data: st.DataObject) -> None:
    value = data.draw(target.inputs, label="input")
    # The documented refusal is suppressed; any other exception propagates and fails the example.
    with json_backend(backend), suppress(target.error):
        target.call(value)


def test_every_error_is_a_value_error() -> None:
    # Callers that catch ValueError broadly must still see every refusal.
    assert all(issubclass(t.error, ValueError) for t in TARGETS)


# --- regressions: crashes this file found (fixed in core.commands, core.senml_columns, core.jsonfast,
# edge.rak3172 and edge.rg15) ---

_COMMAND = ('{{"action":"dim","params":{{"level":5}},"issued_at":{issued},{extra}'
            '"device":"lamp-1","origin":"o","id":"c1"}}')
_HUGE = "1" * 400  # a JSON integer beyond float range (about 1.8e308)


@pytest.mark.parametrize("payload", [
    _COMMAND.format(issued=_HUGE, extra=""),
    _COMMAND.format(issued="1", extra=f'"expires_at":{_HUGE},'),
], ids=["issued_at", "expires_at"])
def test_command_with_a_huge_integer_time(payload: str) -> None:
    with json_backend("stdlib"), pytest.raises(commands.CommandError):
        commands.parse_command(payload)


@pytest.mark.parametrize("record", [f'{{"n":"a","v":{_HUGE}}}', f'{{"bt":{_HUGE},"n":"a","v":1}}',
                                    f'{{"n":"a","v":1,"t":{_HUGE}}}'], ids=["v", "bt", "t"])
def test_senml_record_with_a_huge_integer(record: str) -> None:
    with json_backend("stdlib"):
        cols = senml_columns.decode_columns(f"[{record}]", now=1_700_000_000.0)
    assert len(cols.errors) == 1


@pytest.mark.parametrize("parse", [commands.parse_command, commands.parse_ack,
                                   lambda p: senml_columns.decode_columns(p, now=0.0)],
                         ids=["parse_command", "parse_ack", "decode_columns"])
def test_deeply_nested_json(parse: Callable[[str], object]) -> None:
    with json_backend("stdlib"), pytest.raises((commands.CommandError, senml_columns.SenMLError)):
        parse("[" * 5000 + "]" * 5000)


@pytest.mark.parametrize("line", ["+EVT:RXP2P:" + "1" * 4301 + ":0:00", "+EVT:RXP2P, RSSI " + "1" * 4301 + ", SNR 1"],
                         ids=["one-line", "header"])
def test_rak_line_with_a_huge_number(line: str) -> None:
    with suppress(rak3172.RakError):
        rak3172.Rak3172Parser().feed(line)


def test_rg15_line_with_a_huge_number() -> None:
    line = "Acc " + "9" * 309 + " mm, EventAcc 0.00 mm, TotalAcc 0.00 mm, RInt 0.00 mmph"
    with suppress(rg15.RG15Error):
        reading = rg15.parse_line(line)
        assert isinstance(reading, rg15.RG15Reading)
        assert all(math.isfinite(v) for v in reading.metrics().values())
