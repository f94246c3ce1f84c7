"""core.mqtt clients against a real mosquitto: Nagle's algorithm is off on every client socket."""

from __future__ import annotations

import socket
import threading

from core.mqtt import connect, new_client
from deploy.mosquitto import Broker
from tests.conftest import settings_for


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
