"""RN2483 modem line parser."""

from __future__ import annotations

import pytest

from edge.rn2483 import (
    Busy,
    InvalidParam,
    MacPause,
    ModemError,
    ModemEvent,
    Ok,
    RadioErr,
    RadioRx,
    RadioTxOk,
    Version,
    parse_line,
)


@pytest.mark.parametrize(("line", "event"), [
    ("radio_rx  48656C6C6F", RadioRx(b"Hello")),
    ("radio_rx 48656C6C6F", RadioRx(b"Hello")),
    ("radio_rx  48656c6c6f\r\n", RadioRx(b"Hello")),
    ("radio_rx  0A0B0C010001017864", RadioRx(bytes.fromhex("0A0B0C010001017864"))),
    ("radio_err", RadioErr()),
    ("radio_tx_ok", RadioTxOk()),
    ("ok", Ok()),
    ("ok\r\n", Ok()),
    ("invalid_param", InvalidParam()),
    ("busy", Busy()),
    ("RN2483 1.0.5 Oct 31 2018 15:06:52", Version("RN2483 1.0.5 Oct 31 2018 15:06:52")),
    ("RN2483 1.0.1 Dec 15 2015 09:38:09", Version("RN2483 1.0.1 Dec 15 2015 09:38:09")),
    ("4294967245", MacPause(4294967245)),
    ("0", MacPause(0)),
])
def test_lines(line: str, event: ModemEvent) -> None:
    assert parse_line(line) == event


@pytest.mark.parametrize(("line", "fragment"), [
    ("radio_rx  48656C6C6", "odd number of hex digits"),
    ("radio_rx  48656C6C6G", "bad hex"),
    ("radio_rx  ", "not an RN2483 line"),
    ("radio_rx", "not an RN2483 line"),
    ("radio_rx  4865 6C6C", "not an RN2483 line"),
    ("OK", "not an RN2483 line"),
    ("4294967296", "not an RN2483 line"),
    ("-1", "not an RN2483 line"),
    ("RN2483", "not an RN2483 line"),
    ("", "not an RN2483 line"),
    ("mac_rx 1 AABB", "not an RN2483 line"),
])
def test_bad_lines(line: str, fragment: str) -> None:
    with pytest.raises(ModemError, match=fragment) as info:
        parse_line(line)
    assert repr(line) in str(info.value)
