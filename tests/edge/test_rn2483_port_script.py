"""RN2483Port against a scripted modem on a real pty: exact command order, races and failures."""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Iterator

import pytest

from edge.rn2483_port import RN2483Port
from edge.serial_link import Backoff
from firmware_sim.pty_port import PtyPort
from firmware_sim.rn2483 import VERSION
from tests.firmware_sim.support import wait_for

FRAME = bytes.fromhex("0A0B0C0101783C")
UPLINK = "0A0B0C010007017850"


class Script:
    """The test plays the modem: it reads each command and writes the replies."""

    def __init__(self) -> None:
        self.pty = PtyPort("scripted")

    def expect(self, command: str, timeout: float = 2.0) -> None:
        line = self.pty.read_line(timeout)
        assert line == command.encode(), f"expected {command!r}, got {line!r}"

    def say(self, *lines: str) -> None:
        for line in lines:
            self.pty.write_line(line)

    def initialise(self) -> None:
        self.expect("sys reset")
        self.say(VERSION)
        self.expect("mac pause")
        self.say("4294967245")
        self.expect("radio set wdt 0")
        self.say("ok")
        self.expect("radio rx 0")
        self.say("ok")

    def quiet(self, seconds: float = 0.2) -> None:
        line = self.pty.read_line(seconds)
        assert line is None, f"unexpected command {line!r}"


class Sender(threading.Thread):
    """Runs port.send on its own thread, as the edge agent's downlink path would."""

    def __init__(self, port: RN2483Port, frame: bytes, timeout: float = 2.0) -> None:
        super().__init__(name="test-sender", daemon=True)
        self.port, self.frame, self.timeout = port, frame, timeout
        self.result: bool | None = None

    def run(self) -> None:
        self.result = self.port.send(self.frame, timeout=self.timeout)


@pytest.fixture
def script() -> Iterator[Script]:
    s = Script()
    yield s
    s.pty.close()


@pytest.fixture
def frames() -> queue.Queue[bytes]:
    return queue.Queue()


@pytest.fixture
def port(script: Script, frames: queue.Queue[bytes]) -> Iterator[RN2483Port]:
    p = RN2483Port(script.pty.path, lambda frame, when: frames.put(frame), reply_timeout=0.5,
                   backoff=Backoff(0.02, 0.1, rng=random.Random(0)))
    p.start()
    script.initialise()
    assert p.wait_ready(2.0)
    yield p
    p.stop()


def test_initialisation_then_receive_and_rearm(script: Script, port: RN2483Port,
                                                frames: queue.Queue[bytes]) -> None:
    script.say(f"radio_rx  {UPLINK}")
    script.expect("radio rx 0")
    script.say("ok")
    assert frames.get(timeout=2.0) == bytes.fromhex(UPLINK)
    script.say(f"radio_rx {UPLINK}")  # one space: older firmware / manual typo
    script.expect("radio rx 0")
    script.say("ok")
    assert frames.get(timeout=2.0) == bytes.fromhex(UPLINK)
    assert port.frames == 2 and port.errors == 0


def test_transmit_sequence(script: Script, port: RN2483Port) -> None:
    sender = Sender(port, FRAME)
    sender.start()
    script.expect("radio rxstop")
    script.say("ok")
    script.expect(f"radio tx {FRAME.hex().upper()}")
    script.say("ok", "radio_tx_ok")
    script.expect("radio rx 0")
    script.say("ok")
    sender.join(2.0)
    assert sender.result is True
    assert (port.tx_ok, port.tx_failed) == (1, 0)
    script.quiet()


def test_uplink_arriving_while_the_transmission_is_set_up_is_kept(
        script: Script, port: RN2483Port, frames: queue.Queue[bytes]) -> None:
    sender = Sender(port, FRAME)
    sender.start()
    script.expect("radio rxstop")
    # The packet landed just before the modem processed rxstop.
    script.say(f"radio_rx  {UPLINK}", "ok")
    script.expect(f"radio tx {FRAME.hex().upper()}")  # no "radio rx 0" in between
    script.say("ok", "radio_tx_ok")
    script.expect("radio rx 0")  # the sender re-arms once, after the transmission
    script.say("ok")
    sender.join(2.0)
    assert sender.result is True
    assert frames.get(timeout=1.0) == bytes.fromhex(UPLINK)
    script.quiet()


def test_radio_err_after_tx_fails_the_send_and_rearms(script: Script, port: RN2483Port) -> None:
    sender = Sender(port, FRAME)
    sender.start()
    script.expect("radio rxstop")
    script.say("ok")
    script.expect(f"radio tx {FRAME.hex().upper()}")
    script.say("ok", "radio_err")
    script.expect("radio rx 0")
    script.say("ok")
    sender.join(2.0)
    assert sender.result is False
    assert port.tx_failed == 1 and port.rx_errors == 0


@pytest.mark.parametrize("rejection", ["invalid_param", "busy"])
def test_rejected_tx_fails_the_send_and_rearms(script: Script, port: RN2483Port, rejection: str) -> None:
    sender = Sender(port, FRAME)
    sender.start()
    script.expect("radio rxstop")
    script.say("ok")
    script.expect(f"radio tx {FRAME.hex().upper()}")
    script.say(rejection)
    script.expect("radio rx 0")
    script.say("ok")
    sender.join(2.0)
    assert sender.result is False


def test_silent_modem_fails_the_send_and_is_reset(script: Script, port: RN2483Port) -> None:
    sender = Sender(port, FRAME, timeout=0.3)
    sender.start()
    script.expect("radio rxstop")  # ... and never answer
    sender.join(2.0)
    assert sender.result is False
    # The reply FIFO can no longer be trusted: the driver reconnects and initialises again.
    line = script.pty.read_line(2.0)
    if line == b"radio rx 0":  # the re-arm may go out before the reconnect
        line = script.pty.read_line(2.0)
    assert line == b"sys reset"
    script.say(VERSION)
    script.expect("mac pause")
    script.say("4294967245")
    script.expect("radio set wdt 0")
    script.say("ok")
    script.expect("radio rx 0")
    script.say("ok")
    assert wait_for(lambda: port.ready and port.reconnects == 1)


def test_receive_error_rearms(script: Script, port: RN2483Port) -> None:
    script.say("radio_err")
    script.expect("radio rx 0")
    script.say("ok")
    assert wait_for(lambda: port.rx_errors == 1)


def test_bad_lines_are_counted_and_reception_goes_on(script: Script, port: RN2483Port,
                                                     frames: queue.Queue[bytes]) -> None:
    # A garbled frame: the modem's receiver went off after it, so the driver listens again.
    script.say("radio_rx  XYZ")
    script.expect("radio rx 0")
    script.say("ok")
    script.say("radio_tx_ok", "ok", "garbage")
    # After the unknown line it re-arms too, just in case; busy says the receiver was on: no failure.
    script.expect("radio rx 0")
    script.say("busy")
    script.say(f"radio_rx  {UPLINK}")
    script.expect("radio rx 0")
    script.say("ok")
    assert frames.get(timeout=2.0) == bytes.fromhex(UPLINK)
    # Bad hex, a tx result without a transmission, a reply to no command, an unknown line.
    assert port.errors == 4
    assert port.rearm_failures == 0


def test_failed_rearm_is_counted(script: Script, port: RN2483Port, frames: queue.Queue[bytes]) -> None:
    script.say(f"radio_rx  {UPLINK}")
    script.expect("radio rx 0")
    script.say("busy")
    frames.get(timeout=2.0)
    assert wait_for(lambda: port.rearm_failures == 1)


def test_modem_restart_is_detected_and_the_modem_initialised_again(script: Script, port: RN2483Port) -> None:
    script.say(VERSION)  # a brown-out reset: radio settings are gone
    script.initialise()
    assert wait_for(lambda: port.ready and port.reconnects == 1)


def test_initialisation_rejected_is_retried(script: Script, frames: queue.Queue[bytes]) -> None:
    p = RN2483Port(script.pty.path, lambda frame, when: frames.put(frame), reply_timeout=0.5,
                   backoff=Backoff(0.02, 0.1, rng=random.Random(0)))
    p.start()
    try:
        script.expect("sys reset")
        script.say("noise", VERSION)  # noise before the banner is skipped (and counted)
        script.expect("mac pause")
        script.say("4294967245")
        script.expect("radio set wdt 0")
        script.say("invalid_param")
        script.initialise()  # the driver starts over
        assert p.wait_ready(2.0)
        assert p.errors == 1
    finally:
        p.stop()


def test_send_during_initialisation_fails_without_touching_the_modem(
        script: Script, frames: queue.Queue[bytes]) -> None:
    p = RN2483Port(script.pty.path, lambda frame, when: frames.put(frame), reply_timeout=2.0,
                   backoff=Backoff(0.02, 0.1, rng=random.Random(0)))
    p.start()
    try:
        script.expect("sys reset")  # ... the banner has not come yet
        assert not p.send(FRAME, timeout=0.2)
        script.quiet(0.3)  # no rxstop / tx / rx mixed into the initialisation
        script.say(VERSION)
        script.expect("mac pause")
    finally:
        p.stop()
