"""RAK3172Port over real ptys: against the simulated module and its nodes, and against a scripted module."""

from __future__ import annotations

import os
import queue
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.cayenne_lpp import decode
from edge.device_codecs import decode_metrics, encode_dim
from edge.lora_frame import decode_uplink
from edge.rak3172_port import P2PConfig, RAK3172Port
from edge.serial_link import Backoff
from firmware_sim.air import Air
from firmware_sim.city import NodeScheduler
from firmware_sim.pty_port import PtyPort
from firmware_sim.rak3172 import LORAWAN_MODE, P2P_MODE, P2PSettings, RAK3172Sim, ReceiveForm
from firmware_sim.street_light import StreetLightNode
from tests.firmware_sim.support import KEYS, LIGHT_ADDRESS, downlink, wait_for

ADDRESSES = (LIGHT_ADDRESS, "0A0B0C03", "0A0B0C04", "0A0B0C05")
BACKOFF = (0.02, 0.1)


class RecordingAir(Air):
    """The Air, remembering every uplink frame a node put on it (one scheduler thread sends them all)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    def transmit(self, frame: bytes) -> None:
        self.sent.append(frame)
        super().transmit(frame)


class Rig:
    """Module firmware on a pty, four street lights reporting every 0.2 s each, and the driver."""

    def __init__(self, form: ReceiveForm = ReceiveForm.ONE_LINE, *, path: str | None = None,
                 echo: bool = False, p2p: P2PConfig | None = None, start_port: bool = True) -> None:
        self.pty = PtyPort("rak3172")
        self.air = RecordingAir()
        # No receive queue: a packet sent while the driver has the receiver off is lost, so
        # the tests notice a missing AT+PRECV=65534.
        self.modem = RAK3172Sim(self.pty, self.air, rx_queue=0, receive_form=form, echo=echo)
        self.lights = [StreetLightNode(a, self.air, random.Random(i), key=_key(a), report_interval=0.2,
                                       confirm_delay=0.05) for i, a in enumerate(ADDRESSES)]
        self.scheduler = NodeScheduler("sim-nodes:test", list(self.lights))
        self.frames: queue.Queue[bytes] = queue.Queue()
        self.port = RAK3172Port(path or self.pty.path, lambda frame, when: self.frames.put(frame),
                                reply_timeout=0.5, backoff=Backoff(*BACKOFF, rng=random.Random(0)), p2p=p2p)
        self.modem.start()
        self.scheduler.start()
        if start_port:
            self.port.start()

    def relayed(self, count: int, air: RecordingAir | None = None) -> list[bytes]:
        """The next count frames; asserts they are exactly what the nodes sent, none lost or reordered."""
        got = [self.frames.get(timeout=2.0) for _ in range(count)]
        sent = list((air or self.air).sent)
        start = sent.index(got[0])
        assert sent[start:start + count] == got
        return got

    def drain(self) -> None:
        while not self.frames.empty():
            self.frames.get_nowait()

    def close(self) -> None:
        self.port.stop()
        self.scheduler.stop()
        self.modem.stop()
        self.pty.close()


def _key(address: str) -> bytes:
    key = KEYS.key_for(address)
    assert key is not None
    return key


BOTH_FORMS = pytest.mark.parametrize("rig", list(ReceiveForm), indirect=True)


@pytest.fixture
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    r = Rig(getattr(request, "param", ReceiveForm.ONE_LINE))
    assert r.port.wait_ready(2.0)
    yield r
    r.close()


@BOTH_FORMS
def test_both_receive_forms_end_to_end(rig: Rig) -> None:
    frames = rig.relayed(8)
    assert {decode_uplink(f).address for f in frames} > {LIGHT_ADDRESS}  # many nodes, one modem
    # The driver put the module in P2P mode with the field settings, receiving continuously.
    assert (rig.modem.work_mode, rig.modem.p2p, rig.modem.rx_mode) == (P2P_MODE, P2PSettings(), 65534)
    assert rig.port.frames >= 8 and rig.port.errors == 0 and rig.port.orphaned_headers == 0
    rssi, snr = rig.port.last_signal or (0, 0)
    assert -120 <= rssi <= -30 and -12 <= snr <= 12
    assert rig.modem.rearms == 1  # continuous receive: armed once, never per packet


def test_receive_form_can_change_mid_stream(rig: Rig) -> None:
    rig.relayed(3)
    rig.modem.receive_form = next(f for f in ReceiveForm if f is not rig.modem.receive_form)
    rig.drain()
    rig.relayed(5)
    assert rig.port.error_counts()["bad_line"] == 0


@BOTH_FORMS
def test_downlink_is_acknowledged_and_receiving_resumes(rig: Rig) -> None:
    rig.relayed(2)
    assert rig.port.send(downlink(LIGHT_ADDRESS, encode_dim(30)), timeout=2.0)
    assert rig.lights[0].level == 30  # the downlink reached the node before +EVT:TXP2P DONE
    assert (rig.port.tx_ok, rig.port.tx_failed, rig.modem.transmitted) == (1, 0, 1)
    assert wait_for(lambda: rig.modem.rx_mode == 65534)  # re-armed after the transmission
    levels = []
    while 30.0 not in levels:  # frames already in flight may still say 100
        frame = decode_uplink(rig.frames.get(timeout=2.0))
        if frame.address == LIGHT_ADDRESS:
            levels.append(decode_metrics("street_light", decode(frame.payload))["dim_level"])
    rig.drain()
    rig.relayed(4)


def test_receiving_continues_after_many_transmissions(rig: Rig) -> None:
    for level in (10, 20, 30, 40, 50):
        assert rig.port.send(downlink(LIGHT_ADDRESS, encode_dim(level)), timeout=2.0)
    assert rig.lights[0].level == 50
    assert (rig.port.tx_ok, rig.modem.transmitted) == (5, 5)
    assert wait_for(lambda: rig.modem.rearms == 6)  # the last re-arm goes out as send() returns
    rig.drain()
    rig.relayed(4)


def test_module_refusing_commands_fails_the_send_and_is_initialised_again(rig: Rig) -> None:
    rig.modem.work_mode = LORAWAN_MODE  # someone switched it to LoRaWAN behind the gateway's back
    assert not rig.port.send(downlink(LIGHT_ADDRESS, encode_dim(30)), timeout=2.0)
    assert rig.port.at_errors["AT_BUSY_ERROR"] >= 1 and rig.port.tx_failed == 1
    # The re-arm is refused too: a module that will not listen is set up from scratch.
    assert wait_for(lambda: rig.port.ready and rig.port.reconnects == 1)
    assert rig.port.rearm_failures == 1
    assert (rig.modem.work_mode, rig.modem.rx_mode) == (P2P_MODE, 65534)
    rig.drain()
    rig.relayed(4)


@BOTH_FORMS
def test_garbage_lines_are_counted_and_the_reader_goes_on(rig: Rig) -> None:
    rig.relayed(2)
    for noise in (b"\xff\xfe\x00\r\n", b"+EVT:RXP2P:-28:5:XYZ\r\n", b"+EVT:TXP2P DONE\r\n",
                  b"\r\nOK\r\n", b"+EVT:0102\r\n", b"+EVT:RXP2P, RSSI -37, SNR 11\r\n\r\nOK\r\n"):
        rig.modem.inject(noise)
    # Noise, bad hex, a transmission that never was, two replies to nothing, data without a header.
    assert wait_for(lambda: rig.port.errors == 6)
    assert rig.port.orphaned_headers == 1  # the header whose data line never came
    rig.drain()
    rig.relayed(4)
    assert rig.port.reconnects == 0


@BOTH_FORMS
def test_module_reset_mid_stream_is_recovered(rig: Rig) -> None:
    rig.relayed(2)
    rig.modem.reset()  # a brown-out: banner, receiver off
    assert wait_for(lambda: rig.port.ready and rig.port.reconnects == 1)
    assert rig.port.resets == 1 and rig.port.errors == 0  # one restart, though the banner has four lines
    assert rig.modem.rx_mode == 65534
    rig.drain()
    rig.relayed(4)


def test_echo_left_on_is_tolerated() -> None:
    r = Rig(echo=True)
    try:
        assert r.port.wait_ready(5.0)
        r.relayed(3)
        # A bound, not a speed: with echo on, the send waits for the echoed lines (slow on a loaded machine).
        assert r.port.send(downlink(LIGHT_ADDRESS, encode_dim(40)), timeout=5.0)
        assert wait_for(lambda: r.port.echoes == 7)  # 4 to initialise, 3 to send (the last as send returns)
        assert r.port.errors == 0
    finally:
        r.close()


def test_custom_radio_settings_reach_the_module() -> None:
    r = Rig(p2p=P2PConfig(869_525_000, 9, 250, 1, 12, 20))
    try:
        assert r.port.wait_ready(2.0)
        assert r.modem.p2p == P2PSettings(869_525_000, 9, 250, 1, 12, 20)
    finally:
        r.close()


def test_reconnects_when_the_port_comes_back(tmp_path: Path) -> None:
    # /dev/serial/by-id style: the edge opens a stable symlink, the device behind it changes.
    link = tmp_path / "ttyRAK"
    first = Rig(start_port=False)
    os.symlink(first.pty.path, link)
    first.port = RAK3172Port(str(link), lambda frame, when: first.frames.put(frame), reply_timeout=0.5,
                             backoff=Backoff(*BACKOFF, rng=random.Random(0)))
    second: Rig | None = None
    first.port.start()
    try:
        assert first.port.wait_ready(2.0)
        first.relayed(2)
        first.modem.stop()  # unplugged: the pty disappears under the open port
        first.pty.close()
        assert wait_for(lambda: not first.port.ready)
        second = Rig(start_port=False)  # a fresh module, still in its factory LoRaWAN mode
        os.unlink(link)
        os.symlink(second.pty.path, link)
        assert wait_for(lambda: first.port.ready and first.port.reconnects == 1)
        assert second.modem.work_mode == P2P_MODE and second.modem.rx_mode == 65534
        first.drain()
        got = [first.frames.get(timeout=2.0) for _ in range(3)]
        assert all(f in second.air.sent for f in got)
    finally:
        first.port.stop()
        if second is not None:
            second.close()
        first.close()


def test_callback_failure_does_not_stop_the_reader(rig: Rig) -> None:
    calls: list[bytes] = []

    def flaky(frame: bytes, when: float) -> None:
        calls.append(frame)
        if len(calls) == 1:
            raise RuntimeError("consumer bug")

    rig.port.stop()
    port = RAK3172Port(rig.pty.path, flaky, backoff=Backoff(*BACKOFF, rng=random.Random(0)))
    port.start()
    try:
        assert wait_for(lambda: len(calls) >= 3)
        assert port.callback_errors == 1 and port.error_counts()["callback"] == 1
    finally:
        port.stop()


def test_send_checks_the_frame_and_fails_when_not_ready(rig: Rig) -> None:
    with pytest.raises(ValueError, match="1-255 bytes"):
        rig.port.send(b"", timeout=0.1)
    with pytest.raises(ValueError, match="1-255 bytes"):
        rig.port.send(bytes(256), timeout=0.1)
    rig.port.stop()
    assert not rig.port.send(b"\x01", timeout=0.1)
    assert rig.port.tx_failed == 1


@pytest.mark.parametrize(("settings", "message"), [
    ({"frequency": 100_000_000}, "frequency must be 150000000-960000000 Hz: 100000000"),
    ({"spreading_factor": 13}, "spreading_factor must be 5-12: 13"),
    ({"bandwidth": 200}, "bandwidth must be 125, 250 or 500 kHz: 200"),
    ({"coding_rate": 4}, "coding_rate must be 0-3: 4"),
    ({"preamble": 1}, "preamble must be 2-65535: 1"),
    ({"power": 30}, "power must be 5-22 dBm: 30"),
])
def test_radio_settings_are_checked_at_construction(settings: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        P2PConfig(**settings)
    assert P2PConfig().command() == "AT+P2P=868000000:7:125:0:8:14"


# --- against a scripted module: exact command order and the replies a simulator does not give ---

FRAME = bytes.fromhex("0A0B0C0101783C")
UPLINK = "0A0B0C010007017850"
INIT = ("AT+NWM=0", "AT+PRECV=0", "AT+P2P=868000000:7:125:0:8:14", "AT+PRECV=65534")


class Script:
    """The test plays the module: it reads each command and writes the replies."""

    def __init__(self) -> None:
        self.pty = PtyPort("scripted")

    def expect(self, command: str, timeout: float = 2.0) -> None:
        line = self.pty.read_line(timeout)
        assert line == command.encode(), f"expected {command!r}, got {line!r}"

    def status(self, code: str = "OK") -> None:
        self.pty.write(f"\r\n{code}\r\n".encode())

    def initialise(self) -> None:
        for command in INIT:
            self.expect(command)
            self.status()


class Sender(threading.Thread):
    """Runs port.send on its own thread, as the edge agent's downlink path would."""

    def __init__(self, port: RAK3172Port, timeout: float = 2.0) -> None:
        super().__init__(name="test-sender", daemon=True)
        self.port, self.timeout = port, timeout
        self.result: bool | None = None
        self.start()

    def run(self) -> None:
        self.result = self.port.send(FRAME, timeout=self.timeout)


@pytest.fixture
def script() -> Iterator[Script]:
    s = Script()
    yield s
    s.pty.close()


@pytest.fixture
def scripted(script: Script) -> Iterator[tuple[RAK3172Port, queue.Queue[bytes]]]:
    frames: queue.Queue[bytes] = queue.Queue()
    p = RAK3172Port(script.pty.path, lambda frame, when: frames.put(frame), reply_timeout=0.5,
                    backoff=Backoff(*BACKOFF, rng=random.Random(0)))
    p.start()
    script.initialise()
    assert p.wait_ready(2.0)
    yield p, frames
    p.stop()


def test_transmit_sequence_keeps_a_packet_that_lands_while_stopping(
        script: Script, scripted: tuple[RAK3172Port, queue.Queue[bytes]]) -> None:
    port, frames = scripted
    sender = Sender(port)
    script.expect("AT+PRECV=0")
    script.pty.write_line(f"+EVT:RXP2P:-40:7:{UPLINK}")  # landed just before the module stopped listening
    script.status()
    script.expect(f"AT+PSEND={FRAME.hex().upper()}")
    script.status()
    script.pty.write_line("+EVT:TXP2P DONE")
    script.expect("AT+PRECV=65534")
    script.status()
    sender.join(2.0)
    assert sender.result is True
    assert frames.get(timeout=1.0) == bytes.fromhex(UPLINK) and port.last_signal == (-40, 7)
    assert script.pty.read_line(0.2) is None  # nothing more


@pytest.mark.parametrize("code", ["AT_PARAM_ERROR", "AT_BUSY_ERROR", "AT_COMMAND_NOT_FOUND"])
def test_rejected_psend_fails_the_send_and_rearms(
        script: Script, scripted: tuple[RAK3172Port, queue.Queue[bytes]], code: str) -> None:
    port, _ = scripted
    sender = Sender(port)
    script.expect("AT+PRECV=0")
    script.status()
    script.expect(f"AT+PSEND={FRAME.hex().upper()}")
    script.status(code)
    script.expect("AT+PRECV=65534")
    script.status()
    sender.join(2.0)
    assert sender.result is False
    assert port.at_errors == {code: 1} and port.error_counts()[code] == 1
    assert port.reconnects == 0  # a rejection is an answer: the reply FIFO is still in step


def test_silent_module_fails_the_send_and_is_initialised_again(
        script: Script, scripted: tuple[RAK3172Port, queue.Queue[bytes]]) -> None:
    port, _ = scripted
    sender = Sender(port, timeout=0.3)
    script.expect("AT+PRECV=0")  # ... and never answer
    sender.join(2.0)
    assert sender.result is False
    line = script.pty.read_line(2.0)
    if line == b"AT+PRECV=65534":  # the re-arm may go out before the reconnect
        line = script.pty.read_line(2.0)
    assert line == INIT[0].encode()
    script.status()
    for command in INIT[1:]:
        script.expect(command)
        script.status()
    assert wait_for(lambda: port.ready and port.reconnects == 1)


def test_receive_timeout_rearms(script: Script, scripted: tuple[RAK3172Port, queue.Queue[bytes]]) -> None:
    port, _ = scripted
    script.pty.write_line("+EVT:RXP2P RECEIVE TIMEOUT")
    script.expect("AT+PRECV=65534")
    script.status()
    assert wait_for(lambda: port.rx_errors == 1)


def test_rejected_initialisation_is_retried(script: Script) -> None:
    p = RAK3172Port(script.pty.path, lambda frame, when: None, reply_timeout=0.5,
                    backoff=Backoff(*BACKOFF, rng=random.Random(0)))
    p.start()
    try:
        script.expect(INIT[0])
        script.pty.write_line("RAKwireless RAK3172-E Example")  # the mode change restarts the stack
        script.status()
        script.expect(INIT[1])
        script.status()
        script.expect(INIT[2])
        script.status("AT_BUSY_ERROR")
        script.initialise()  # the driver starts over
        assert p.wait_ready(2.0)
        assert (p.resets, p.errors, p.at_errors) == (0, 0, {"AT_BUSY_ERROR": 1})
    finally:
        p.stop()
