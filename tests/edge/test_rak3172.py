"""RAK3172 (RUI3) P2P line parser, both receive forms."""

from __future__ import annotations

import pytest

from edge.rak3172 import AtError, Ok, Rak3172Parser, RakError, Received, RxTimeout, TxDone


def test_one_line_receive_form() -> None:
    assert Rak3172Parser().feed("+EVT:RXP2P:-28:5:48656C6C6F") == Received(b"Hello", -28, 5)


def test_one_line_receive_negative_snr() -> None:
    assert Rak3172Parser().feed("+EVT:RXP2P:-112:-7:0A0B\r\n") == Received(b"\x0a\x0b", -112, -7)


def test_two_line_manual_form() -> None:
    parser = Rak3172Parser()
    assert parser.feed("+EVT:RXP2P, RSSI -37, SNR 11") is None
    assert parser.feed("+EVT:48656C6C6F") == Received(b"Hello", -37, 11)
    # The header is used once: a second data line has none.
    with pytest.raises(RakError, match="without a receive header"):
        parser.feed("+EVT:48656C6C6F")


def test_two_line_form_survives_a_blank_line() -> None:
    parser = Rak3172Parser()
    assert parser.feed("+EVT:RXP2P, RSSI -90, SNR -3") is None
    assert parser.feed("") is None
    assert parser.feed("+EVT:AA") == Received(b"\xaa", -90, -3)


def test_both_forms_interleaved() -> None:
    parser = Rak3172Parser()
    lines = ["+EVT:RXP2P:-28:5:01", "+EVT:RXP2P, RSSI -37, SNR 11", "+EVT:02", "+EVT:RXP2P:-30:6:03"]
    events = [e for e in map(parser.feed, lines) if e is not None]
    assert events == [Received(b"\x01", -28, 5), Received(b"\x02", -37, 11), Received(b"\x03", -30, 6)]


def test_orphaned_header_is_counted_and_the_next_line_still_parsed() -> None:
    parser = Rak3172Parser()
    assert parser.feed("+EVT:RXP2P, RSSI -37, SNR 11") is None
    assert parser.feed("OK") == Ok()
    assert parser.orphaned_headers == 1


@pytest.mark.parametrize(("line", "event"), [
    ("OK", Ok()),
    ("+EVT:TXP2P DONE", TxDone()),
    ("+EVT:RXP2P RECEIVE TIMEOUT", RxTimeout()),
    ("AT_PARAM_ERROR", AtError("AT_PARAM_ERROR")),
    ("AT_BUSY_ERROR", AtError("AT_BUSY_ERROR")),
    ("AT_ERROR", AtError("AT_ERROR")),
])
def test_replies(line: str, event: object) -> None:
    assert Rak3172Parser().feed(line + "\r\n") == event


@pytest.mark.parametrize("line", [
    "+EVT:RXP2P:-28:5:4865C",  # odd hex
    "+EVT:RXP2P:-28:5:XYZ1",
    "+EVT:RXP2P:-28:48656C6C6F",  # snr missing
    "+EVT:RXP2P, RSSI -37",
    "ERROR",
    "ok",
    "+EVT:4G",
])
def test_bad_lines(line: str) -> None:
    with pytest.raises(RakError) as info:
        Rak3172Parser().feed(line)
    assert repr(line) in str(info.value)


def test_both_spellings_of_the_events_are_understood():
    """RUI3 3.2.0 dropped the spaces from its event names."""
    p = Rak3172Parser()
    assert isinstance(p.feed("+EVT:TXP2P DONE"), TxDone) and isinstance(p.feed("+EVT:TXP2P_DONE"), TxDone)
    assert isinstance(p.feed("+EVT:RXP2P_RECEIVE_TIMEOUT"), RxTimeout)
    assert isinstance(p.feed("+EVT:RXP2P RECEIVE TIMEOUT"), RxTimeout)
