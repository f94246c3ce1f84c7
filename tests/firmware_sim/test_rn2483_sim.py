"""The simulated RN2483 firmware and the Air, over a real pty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import serial

from firmware_sim.air import Air
from firmware_sim.pty_port import PtyPort
from firmware_sim.rn2483 import MAC_PAUSE_MS, VERSION, RN2483Sim
from tests.firmware_sim.support import downlink

NODE = "0A0B0C01"


class Modem:
    """The simulated modem plus a pyserial handle on its pty and a node that records downlinks."""

    def __init__(self, rx_queue: int) -> None:
        self.port = PtyPort("rn2483")
        self.air = Air()
        self.sim = RN2483Sim(self.port, self.air, rx_queue=rx_queue)
        self.downlinks: list[bytes] = []
        self.air.join(NODE, self.downlinks.append)
        self.sim.start()
        self.edge = serial.Serial(self.port.path, 57600, timeout=1.0)

    def ask(self, command: str) -> str:
        self.edge.write(command.encode() + b"\r\n")
        return self.edge.readline().decode()

    def setup(self) -> None:
        assert self.ask("sys reset") == VERSION + "\r\n"
        assert self.ask("mac pause") == f"{MAC_PAUSE_MS}\r\n"
        assert self.ask("radio set wdt 0") == "ok\r\n"

    def close(self) -> None:
        self.edge.close()
        self.sim.stop()
        self.port.close()


@pytest.fixture(params=[4])
def modem(request: pytest.FixtureRequest) -> Iterator[Modem]:
    m = Modem(rx_queue=request.param)
    yield m
    m.close()


def test_init_sequence(modem: Modem) -> None:
    modem.setup()
    assert modem.ask("radio rx 0") == "ok\r\n"
    assert modem.sim.armed
    assert modem.ask("sys get ver") == VERSION + "\r\n"


def test_radio_commands_need_mac_pause(modem: Modem) -> None:
    assert modem.ask("sys reset") == VERSION + "\r\n"
    assert modem.ask("radio rx 0") == "busy\r\n"
    assert modem.ask("radio tx 01") == "busy\r\n"


@pytest.mark.parametrize("command", [
    "radio tx 0", "radio tx 0G", "radio tx", "radio rx", "radio rx -1", "radio rx 70000",
    "radio set wdt x", "sys", "hello", "radio tx " + "00" * 256,
])
def test_invalid_param(modem: Modem, command: str) -> None:
    modem.setup()
    assert modem.ask(command) == "invalid_param\r\n"


def test_received_packet_is_delivered_once_with_two_spaces(modem: Modem) -> None:
    modem.setup()
    assert modem.ask("radio rx 0") == "ok\r\n"
    modem.air.transmit(bytes.fromhex("0A0B0C010001017864"))
    assert modem.edge.readline() == b"radio_rx  0A0B0C010001017864\r\n"
    assert not modem.sim.armed  # one packet per radio rx
    modem.air.transmit(b"\x01")
    modem.edge.timeout = 0.2
    assert modem.edge.readline() == b""
    assert modem.sim.queued == 1
    # Re-arming delivers the packet that waited.
    assert modem.ask("radio rx 0") == "ok\r\n"
    assert modem.edge.readline() == b"radio_rx  01\r\n"


def test_rx_while_armed_is_busy_and_rxstop_disarms(modem: Modem) -> None:
    modem.setup()
    assert modem.ask("radio rx 0") == "ok\r\n"
    assert modem.ask("radio rx 0") == "busy\r\n"
    assert modem.ask("radio tx 01") == "busy\r\n"
    assert modem.ask("radio rxstop") == "ok\r\n"
    assert not modem.sim.armed
    assert modem.ask("radio rxstop") == "ok\r\n"


def test_queue_is_bounded_and_drops_the_oldest(modem: Modem) -> None:
    modem.setup()
    for i in range(6):
        modem.air.transmit(bytes([i]))
    assert modem.sim.queued == 4
    assert modem.sim.dropped == 2
    assert modem.ask("radio rx 0") == "ok\r\n"
    assert modem.edge.readline() == b"radio_rx  02\r\n"


@pytest.mark.parametrize("modem", [0], indirect=True)
def test_without_queue_packets_are_missed_while_not_listening(modem: Modem) -> None:
    modem.setup()
    modem.air.transmit(b"\x01")
    assert modem.sim.dropped == 1
    assert modem.ask("radio rx 0") == "ok\r\n"
    modem.edge.timeout = 0.2
    assert modem.edge.readline() == b""


def test_transmit_reaches_the_addressed_node(modem: Modem) -> None:
    modem.setup()
    frame = downlink(NODE, bytes.fromhex("017832"))
    assert modem.ask(f"radio tx {frame.hex().upper()}") == "ok\r\n"
    assert modem.edge.readline() == b"radio_tx_ok\r\n"
    assert modem.downlinks == [frame]  # the whole frame: the node checks its MIC with its own key
    assert modem.ask(f"radio tx FFFFFFFF{frame[4:].hex().upper()}") == "ok\r\n"
    assert modem.edge.readline() == b"radio_tx_ok\r\n"  # P2P has no acknowledgement
    assert modem.downlinks == [frame]
    assert (modem.air.downlinks, modem.air.unaddressed, modem.sim.transmitted) == (2, 1, 2)


def test_receive_watchdog_ends_with_radio_err(modem: Modem) -> None:
    modem.setup()
    assert modem.ask("radio set wdt 150") == "ok\r\n"
    assert modem.ask("radio rx 0") == "ok\r\n"
    assert modem.edge.readline() == b"radio_err\r\n"
    assert not modem.sim.armed


def test_air_rejects_duplicate_addresses() -> None:
    air = Air()
    air.join(NODE, lambda payload: None)
    with pytest.raises(ValueError, match="share LoRa address"):
        air.join(NODE.lower(), lambda payload: None)
    assert not air.downlink(b"\x01\x02")  # too short to carry an address
    air.transmit(b"\x01")  # no modem attached: goes nowhere, counted
    assert air.uplinks == 1
