"""core.mqtt clients against a real mosquitto: Nagle's algorithm is off on every client socket."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.mqtt import REFUSED_MAX_DELAY, Client, connect, new_client
from core.settings import MqttSettings
from deploy.mosquitto import Broker, start_mosquitto
from tests.conftest import settings_for, wait_for


@contextmanager
def connect_times(client: Client, settings: MqttSettings) -> Iterator[list[float]]:
    """Connect client in the background; yields the monotonic time of each (re)connect, disconnects after."""
    connects: list[float] = []
    client.on_connect = lambda *_args: connects.append(time.monotonic())
    connect(client, settings, persistent=False)
    client.loop_start()
    try:
        yield connects
    finally:
        client.disconnect()
        client.loop_stop()


def test_client_socket_has_tcp_nodelay(broker: Broker) -> None:
    settings = settings_for(broker, "operator")
    client = new_client(settings, "nodelay-test")
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    connect(client, settings, persistent=False)
    client.loop_start()
    try:
        assert connected.wait(10)
        sock = client.socket()
        assert sock is not None
        # Without it a command written right after an ack waits ~10 ms for the broker's next packet.
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        client.disconnect()
        client.loop_stop()


def test_reconnects_back_off_exponentially_with_jitter_and_start_again_after_a_connect(
        broker: Broker, tmp_path: Path) -> None:
    """The edge issue: a fixed-rate reconnect (ThingsBoard's 1 Hz) makes every gateway knock at once."""
    settings = settings_for(broker, "operator")
    client = new_client(settings, "backoff-test")
    client.reconnect_delay_set(min_delay=0.05, max_delay=0.4)  # type: ignore[arg-type]  # paho types them int
    with connect_times(client, settings) as connects:
        wait_for(lambda: connects, 10)
        broker.stop()
        wait_for(lambda: len(client.reconnect_waits) >= 6, 10)
        waits = list(client.reconnect_waits)[:6]
        for wait, bound in zip(waits, (0.05, 0.1, 0.2, 0.4, 0.4, 0.4), strict=True):
            assert bound / 2 <= wait <= bound  # doubling up to the maximum, each wait jittered below its bound
        assert len({round(w / b, 6) for w, b in zip(waits, (0.05, 0.1, 0.2, 0.4, 0.4, 0.4), strict=True)}) > 1
        restarted = start_mosquitto(tmp_path / "broker-again", broker.users, port=broker.port)
        try:
            wait_for(lambda: len(connects) == 2, 10)
            client.reconnect_waits.clear()
            restarted.stop()
            wait_for(lambda: client.reconnect_waits, 10)
            assert client.reconnect_waits[0] <= 0.05  # after a good connection it starts from the minimum
        finally:
            restarted.stop()


def test_a_stopped_client_leaves_no_socket_open(broker: Broker) -> None:
    """paho keeps the socket pair that wakes its thread until garbage collection (an unclosed-socket warning)."""
    settings = settings_for(broker, "operator")
    client = new_client(settings, "sockpair-test")
    connect(client, settings, persistent=False)
    client.loop_start()
    try:
        wait_for(client.is_connected, 10)
        pair = (client._sockpairR, client._sockpairW)  # what paho would leave open
        assert all(s is not None and s.fileno() >= 0 for s in pair)
    finally:
        client.disconnect()
        client.loop_stop()
    assert all(s is not None and s.fileno() == -1 for s in pair)  # closed, not left to the collector


def test_a_client_is_back_within_two_seconds_of_a_restarted_broker_even_after_a_long_outage(
        broker: Broker, tmp_path: Path) -> None:
    """Security issue: after a mosquitto kill the clients came back 11 s after the broker did.

    With the default backoff (1 s doubling to 30 s) an outage of 10 s grows the wait to 8-16 s; while
    the attempts are refused (the broker's port is closed) the wait stays under REFUSED_MAX_DELAY.
    """
    settings = settings_for(broker, "operator")
    client = new_client(settings, "refused-test")
    with connect_times(client, settings) as connects:
        wait_for(lambda: connects, 10)
        broker.stop()
        time.sleep(10)  # attempts at ~1, 2, 4 s: the next unrefused bound would be 8 s, then 16 s
        assert len(client.reconnect_waits) >= 5
        assert max(list(client.reconnect_waits)[1:]) <= REFUSED_MAX_DELAY
        back = time.monotonic()
        restarted = start_mosquitto(tmp_path / "broker-again", broker.users, port=broker.port)
        try:
            wait_for(lambda: len(connects) == 2, 10)
            assert connects[1] - back <= 2.0
        finally:
            restarted.stop()


def test_a_timed_out_or_closed_attempt_keeps_the_full_backoff() -> None:
    """Only a refused attempt shortens the wait: a network that is down must not be hammered."""
    client = new_client(MqttSettings("127.0.0.1", 1), "backoff-policy")
    try:
        for refused, expected_bound in ((False, 1), (False, 2), (False, 4), (True, REFUSED_MAX_DELAY),
                                        (False, 16), (False, 30), (True, REFUSED_MAX_DELAY), (False, 30)):
            client.last_attempt_refused = refused
            client._thread_terminate = True  # type: ignore[attr-defined]  # return at once instead of sleeping
            client._reconnect_wait()  # type: ignore[attr-defined]
            wait = client.reconnect_waits[-1]
            assert expected_bound / 2 <= wait <= expected_bound
    finally:
        client.loop_stop()
