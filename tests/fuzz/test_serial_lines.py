"""Serial lines from the RG-15 rain gauge and the LoRa modems (RN2483, RAK3172): a result or the module's error.

A reader thread parses every line a UART hands on; anything but the documented error would kill it.
Inputs: the grammar-aware generators of tests/edge/test_parser_fuzz.py, valid lines mutated (nasty
tokens, truncation, case flips) and plain text. Invariants beyond "no other exception": a refusal
names the line, a reading is finite, non-negative and metric, a received packet is the hex it carried.
"""

from __future__ import annotations

import math

from hypothesis import example, given
from hypothesis import strategies as st

from edge import rak3172, rg15, rn2483
from tests.edge.test_parser_fuzz import _any_text, _port_text, _rak_sessions, _rg15_lines, _rn2483_lines
from tests.fuzz.support import FUZZ, grammar_and_noise, mutated_text

_VALID_RG15 = st.sampled_from([
    "Acc  0.00 mm, EventAcc  0.00 mm, TotalAcc  1.23 mm, RInt  0.00 mmph",
    "Acc 0.001 in, EventAcc 0.001 in, TotalAcc 0.001 in, RInt 0.001 iph",
    ";Hydreon RG-15", "SW 1.000", "Emitters 9 10, EmTotal 19", "Baud 9600", "p", "Reset P", "LensBad, EmSat",
])
_VALID_RN = st.sampled_from(["radio_rx  0102ABCDEF", "radio_err", "radio_tx_ok", "ok", "invalid_param", "busy",
                             "RN2483 1.0.5 Oct 31 2018 15:06:52", "4294967245"])
_VALID_RAK = st.sampled_from(["+EVT:RXP2P:-40:7:0102AB", "+EVT:RXP2P, RSSI -40, SNR 7", "+EVT:0102AB", "OK",
                              "AT_PARAM_ERROR", "+EVT:TXP2P DONE", "+EVT:RXP2P_RECEIVE_TIMEOUT"])

rg15_inputs = grammar_and_noise(_rg15_lines, mutated_text(_VALID_RG15), _port_text | _any_text)
rn_inputs = grammar_and_noise(_rn2483_lines, mutated_text(_VALID_RN), _port_text | _any_text)
rak_inputs = grammar_and_noise(_rak_sessions, st.lists(mutated_text(_VALID_RAK), max_size=6),
                               st.lists(_port_text | _any_text, max_size=4))


@FUZZ
@given(line=rg15_inputs)
@example(line="Acc " + "9" * 309 + " mm, EventAcc 0.00 mm, TotalAcc 0.00 mm, RInt 0.00 mmph")
@example(line="Acc 1 mm, EventAcc 1 in, TotalAcc 1 mm, RInt 1 mmph")
def test_rg15_line_is_a_reading_an_info_or_a_named_refusal(line: str) -> None:
    try:
        result = rg15.parse_line(line)
    except rg15.RG15Error as exc:
        assert repr(line) in str(exc) or "out of range" in str(exc)  # the refusal names the line or number
        return
    if isinstance(result, rg15.RG15Reading):
        assert all(math.isfinite(v) and v >= 0 for v in result.metrics().values()), result
    else:
        assert isinstance(result, rg15.RG15Info) and result.text == line.strip()


@FUZZ
@given(line=rn_inputs)
@example(line="radio_rx  " + "0" * 4001)
@example(line="4294967296")
def test_rn2483_line_is_an_event_or_a_named_refusal(line: str) -> None:
    try:
        event = rn2483.parse_line(line)
    except rn2483.ModemError as exc:
        assert repr(line) in str(exc)
        return
    if isinstance(event, rn2483.RadioRx):
        assert event.payload.hex() == line.rsplit(maxsplit=1)[-1].lower()
    elif isinstance(event, rn2483.MacPause):
        assert 0 <= event.ms <= 0xFFFF_FFFF


@FUZZ
@given(lines=rak_inputs)
@example(lines=["+EVT:RXP2P:" + "1" * 4301 + ":0:00"])
@example(lines=["+EVT:RXP2P, RSSI -1, SNR 1", "", "+EVT:0A0B"])
def test_rak3172_session_gives_events_or_named_refusals(lines: list[str]) -> None:
    parser = rak3172.Rak3172Parser()  # one parser for the session: its header/data state is fuzzed too
    for line in lines:
        try:
            event = parser.feed(line)
        except rak3172.RakError as exc:
            assert repr(line) in str(exc)
            continue
        if isinstance(event, rak3172.Received):
            assert -9999 <= event.rssi <= 9999 and -9999 <= event.snr <= 9999
            assert event.payload.hex() == line.strip().rsplit(":", 1)[-1].lower()
