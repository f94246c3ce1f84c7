"""The simulated RAK3172 (RUI3) firmware and the Air, over a real pty and pyserial."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import serial

from firmware_sim.air import Air
from firmware_sim.pty_port import PtyPort
from firmware_sim.rak3172 import P2P_MODE, P2PSettings, RAK3172Sim, ReceiveForm, boot_banner, parse_p2p
from tests.firmware_sim.support import downlink, wait_for

NODE = "0A0B0C01"
OK = b"\r\nOK\r\n"  # RUI3 frames every status with CRLF on both sides
BUSY = b"\r\nAT_BUSY_ERROR\r\n"
PARAM = b"\r\nAT_PARAM_ERROR\r\n"
BANNER = b"".join(line.encode() + b"\r\n" for line in boot_banner(P2P_MODE))


class Module:
    """The simulated module plus a pyserial handle on its pty and a node that records downlinks."""

    def __init__(self, rx_queue: int = 4, airtime: float = 0.01, **kwargs: object) -> None:
        self.port = PtyPort("rak3172")
        self.air = Air()
        self.sim = RAK3172Sim(self.port, self.air, rx_queue=rx_queue, airtime=airtime,
                              **kwargs)  # type: ignore[arg-type]
        self.downlinks: list[bytes] = []
        self.air.join(NODE, self.downlinks.append)
        self.sim.start()
        self.edge = serial.Serial(self.port.path, 115200, timeout=1.0)

    def ask(self, command: str) -> bytes:
        """Every byte up to and including the status line that answers command."""
        self.edge.write(command.encode() + b"\r\n")
        return self.until_status()

    def until_status(self) -> bytes:
        got = b""
        while not re.search(rb"\r\n(OK|AT_[A-Z_]+)\r\n$", got):
            line = self.edge.readline()
            assert line, f"no status within the timeout; got {got!r}"
            got += line
        return got

    def setup(self) -> None:
        """P2P mode (from the factory LoRaWAN mode: the stack restarts, banner before OK)."""
        assert self.ask("AT+NWM=0") == BANNER + OK

    def close(self) -> None:
        self.edge.close()
        self.sim.stop()
        self.port.close()


@pytest.fixture
def module() -> Iterator[Module]:
    m = Module()
    yield m
    m.close()


def test_init_sequence_bytes(module: Module) -> None:
    assert module.ask("AT") == OK
    module.setup()
    assert module.ask("AT+NWM=0") == OK  # already in P2P: no restart
    assert module.ask("AT+PRECV=0") == OK
    assert module.ask("AT+P2P=869525000:9:250:1:12:20") == OK
    assert module.sim.p2p == P2PSettings(869_525_000, 9, 250, 1, 12, 20)
    assert module.ask("AT+P2P=?") == b"AT+P2P=869525000:9:250:1:12:20\r\n" + OK
    assert module.ask("AT+PRECV=65534") == OK
    assert module.sim.armed and module.sim.rx_mode == 65534
    assert module.ask("AT+NWM=?") == b"AT+NWM=0\r\n" + OK


def test_commands_are_case_insensitive(module: Module) -> None:
    assert module.ask("at+nwm=0") == BANNER + OK
    assert module.ask("at+psend=0a0b") == OK
    assert module.edge.readline() == b"+EVT:TXP2P DONE\r\n"


@pytest.mark.parametrize("value", [
    "868000000:7:125:0:8",  # a field missing
    "868000000:7:125:0:8:14:1",
    "100000000:7:125:0:8:14",  # below what the SX1262 tunes
    "868000000:4:125:0:8:14",
    "868000000:13:125:0:8:14",
    "868000000:7:100:0:8:14",
    "868000000:7:125:4:8:14",
    "868000000:7:125:0:1:14",
    "868000000:7:125:0:8:23",
    "868000000:7:125:0:8:-1",
    "868 MHz:7:125:0:8:14",
])
def test_bad_p2p_settings_are_param_errors(module: Module, value: str) -> None:
    module.setup()
    assert module.ask(f"AT+P2P={value}") == PARAM
    assert module.sim.p2p == P2PSettings()
    assert parse_p2p(value) is None


def test_p2p_commands_are_busy_outside_p2p_mode(module: Module) -> None:
    for command in ("AT+P2P=868000000:7:125:0:8:14", "AT+PRECV=65534", "AT+PSEND=0102"):
        assert module.ask(command) == BUSY
    assert module.sim.rejected == 3


@pytest.mark.parametrize("command", ["AT+PSEND=0", "AT+PSEND=0G", "AT+PSEND=", "AT+PSEND=" + "00" * 256,
                                     "AT+PRECV=70000", "AT+PRECV=-1", "AT+PRECV=x", "AT+NWM=3"])
def test_param_errors(module: Module, command: str) -> None:
    module.setup()
    assert module.ask(command) == PARAM


def test_unknown_command(module: Module) -> None:
    assert module.ask("AT+HELLO") == b"\r\nAT_COMMAND_NOT_FOUND\r\n"
    assert module.ask("\xc1T") == b"\r\nAT_COMMAND_NOT_FOUND\r\n"  # a first byte the UART garbled


def test_one_line_receive_is_continuous(module: Module) -> None:
    module.setup()
    assert module.ask("AT+PRECV=65534") == OK
    module.air.transmit(bytes.fromhex("48656C6C6F"))
    rssi, snr = module.sim.last_signal or (0, 0)
    assert module.edge.readline() == f"+EVT:RXP2P:{rssi}:{snr}:48656C6C6F\r\n".encode()
    assert -120 <= rssi <= -30 and -12 <= snr <= 12
    module.air.transmit(b"\x01")  # still listening: no PRECV needed in between
    assert re.fullmatch(rb"\+EVT:RXP2P:-\d+:-?\d+:01\r\n", module.edge.readline())
    assert module.sim.armed and module.sim.delivered == 2


def test_two_line_receive_form(module: Module) -> None:
    module.sim.receive_form = ReceiveForm.TWO_LINE
    module.setup()
    assert module.ask("AT+PRECV=65534") == OK
    module.air.transmit(bytes.fromhex("48656C6C6F"))
    rssi, snr = module.sim.last_signal or (0, 0)
    assert module.edge.readline() == f"+EVT:RXP2P, RSSI {rssi}, SNR {snr}\r\n".encode()
    assert module.edge.readline() == b"+EVT:48656C6C6F\r\n"


def test_frames_of_many_nodes_are_relayed_in_order(module: Module) -> None:
    module.setup()
    assert module.ask("AT+PRECV=65534") == OK
    frames = [bytes.fromhex(f"0A0B0C{n:02X}") + bytes([n]) * n for n in range(1, 9)]
    for frame in frames:
        module.air.transmit(frame)
    got = [module.edge.readline().decode().rstrip("\r\n").rsplit(":", 1)[1] for _ in frames]
    assert got == [f.hex().upper() for f in frames]


def test_send_needs_the_receiver_stopped_and_leaves_it_off(module: Module) -> None:
    module.setup()
    assert module.ask("AT+PRECV=65534") == OK
    frame = downlink(NODE, bytes.fromhex("017832"))
    assert module.ask(f"AT+PSEND={frame.hex().upper()}") == BUSY  # RUI3: receiving blocks sending
    assert module.ask("AT+PRECV=0") == OK
    assert module.ask(f"AT+PSEND={frame.hex().upper()}") == OK
    assert module.edge.readline() == b"+EVT:TXP2P DONE\r\n"
    assert module.downlinks == [frame]
    assert not module.sim.armed
    module.air.transmit(b"\x05")  # lands while the radio is idle: waits in the queue
    assert module.sim.queued == 1
    assert module.ask("AT+PRECV=65534") == OK
    assert re.fullmatch(rb"\+EVT:RXP2P:-\d+:-?\d+:05\r\n", module.edge.readline())
    assert module.sim.transmitted == 1


def test_commands_during_a_transmission_are_busy() -> None:
    m = Module(airtime=0.4)
    try:
        m.setup()
        assert m.ask("AT+PSEND=0102") == OK
        assert m.sim.transmitting
        assert m.ask("AT+PRECV=65534") == BUSY
        assert m.ask("AT+PSEND=0102") == BUSY
        assert m.ask("AT") == OK  # the UART still answers
        assert m.edge.readline() == b"+EVT:TXP2P DONE\r\n"
        assert m.ask("AT+PRECV=65534") == OK
    finally:
        m.close()


def test_receive_window_and_single_packet(module: Module) -> None:
    module.setup()
    assert module.ask("AT+PRECV=100") == OK
    assert module.edge.readline() == b"+EVT:RXP2P RECEIVE TIMEOUT\r\n"
    assert not module.sim.armed
    assert module.ask("AT+PRECV=65535") == OK
    module.air.transmit(b"\x07")
    assert module.edge.readline().endswith(b":07\r\n")
    assert not module.sim.armed  # one packet, then off


def test_queue_is_bounded_and_drops_the_oldest(module: Module) -> None:
    module.setup()
    for i in range(6):
        module.air.transmit(bytes([i]))
    assert (module.sim.queued, module.sim.dropped) == (4, 2)
    assert module.ask("AT+PRECV=65534") == OK
    assert [module.edge.readline()[-4:-2] for _ in range(4)] == [b"02", b"03", b"04", b"05"]


def test_without_queue_packets_are_missed_while_not_listening() -> None:
    m = Module(rx_queue=0)
    try:
        m.setup()
        m.air.transmit(b"\x01")
        assert m.sim.dropped == 1
        assert m.ask("AT+PRECV=65534") == OK
        m.edge.timeout = 0.2
        assert m.edge.readline() == b""
    finally:
        m.close()


def test_echo_toggles(module: Module) -> None:
    assert module.ask("ATE") == OK  # typed while echo was still off
    assert module.ask("AT+NWM=0") == b"AT+NWM=0\r\n" + BANNER + OK
    assert module.ask("ATE") == b"ATE\r\n" + OK  # typed while echo was on
    assert module.ask("AT") == OK


def test_reset_prints_the_banner_and_stops_receiving_but_keeps_the_settings(module: Module) -> None:
    module.setup()
    assert module.ask("AT+P2P=868100000:12:125:0:8:14") == OK
    assert module.ask("AT+PRECV=65534") == OK
    module.sim.reset()
    assert b"".join(module.edge.readline() for _ in range(4)) == BANNER
    assert not module.sim.armed
    assert module.sim.work_mode == P2P_MODE and module.sim.p2p.spreading_factor == 12
    module.edge.write(b"ATZ\r\n")  # the reset command: the banner is its only answer
    assert b"".join(module.edge.readline() for _ in range(4)) == BANNER
    assert module.sim.resets == 3  # the NWM change, reset(), ATZ
    assert module.ask("AT+PRECV=65534") == OK


def test_injected_bytes_arrive_verbatim(module: Module) -> None:
    module.sim.inject(b"\xff\xfe\x00noise\r\n")
    assert module.edge.readline() == b"\xff\xfe\x00noise\r\n"
    assert wait_for(lambda: module.port.bytes_out >= 10)
