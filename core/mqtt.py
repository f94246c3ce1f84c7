"""paho-mqtt clients configured the one way every service needs: MQTT 5, auth, backoff.

MQTT 3.1.1 is available for brokers that speak nothing newer (The Things Stack's MQTT server):
pass ``protocol=MQTTv311``. 3.1.1 has no properties, so no session expiry or receive window is
sent; a 3.1.1 session is kept or not by the client's clean-session flag, set when it is created.
"""

from __future__ import annotations

import contextlib
import random
import socket
import ssl
import time
from collections import deque
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.settings import MqttSettings

# A persistent session keeps QoS 1 messages queued at the broker while a service restarts.
SESSION_EXPIRY_SECONDS = 24 * 3600
RECONNECT_MIN_DELAY, RECONNECT_MAX_DELAY = 1, 30  # seconds
# While attempts are refused (the host answers, its broker is not listening: a restart), retry at
# least this often, so a client is back within ~REFUSED_MAX_DELAY of the broker (security issue: 11 s).
REFUSED_MAX_DELAY = 1.0
# paho's states in which a reconnect wait ends at once (disconnect() or loop_stop() was called).
_STOPPING = (paho._ConnectionState.MQTT_CS_DISCONNECTING,  # type: ignore[attr-defined]
             paho._ConnectionState.MQTT_CS_DISCONNECTED)  # type: ignore[attr-defined]


class Client(paho.Client):
    """paho's client with jitter on its reconnect backoff.

    paho doubles the delay between attempts up to the maximum, but every client that lost the
    same broker then retries in lock step: sixty gateways of a city knock at the same instant,
    and again twice as late. Each wait here is drawn from [delay/2, delay] ("equal jitter"),
    which spreads them out while the exponential bound still holds. The delay starts from the
    minimum again after a successful connection (paho resets it on CONNACK).

    An attempt that was refused (TCP RST: the host is up and its broker is restarting) costs the
    broker nothing, so while attempts are refused the wait is capped at REFUSED_MAX_DELAY (still
    jittered): the client is back within about a second of the broker. A timeout (network down)
    or a broker that accepts the connection and then refuses the login keeps the full backoff.
    """

    _rng = random.Random()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reconnect_waits: deque[float] = deque(maxlen=32)  # the latest waits, for tests and diagnostics
        self.last_attempt_refused = False

    def reconnect(self) -> MQTTErrorCode:
        """paho's reconnect, noting whether the attempt was refused (the next wait depends on it)."""
        try:
            rc = super().reconnect()
        except ConnectionRefusedError:
            self.last_attempt_refused = True
            raise
        except OSError:
            self.last_attempt_refused = False
            raise
        self.last_attempt_refused = False
        return rc

    def loop_stop(self) -> MQTTErrorCode:
        """Stop the network thread, then close the socket pair paho made for waking it.

        paho leaves that pair open until the client is garbage collected, which shows as an
        unclosed-socket warning (and leaks two descriptors per stopped client meanwhile).
        """
        rc = super().loop_stop()
        if self._thread is None:  # ended (not stopped from its own callback)
            self._reset_sockets(sockpair_only=True)
        return rc

    def _reconnect_wait(self) -> None:
        with self._reconnect_delay_mutex:
            if self._reconnect_delay is None:
                self._reconnect_delay = self._reconnect_min_delay
            else:
                self._reconnect_delay = min(self._reconnect_delay * 2, self._reconnect_max_delay)
            bound: float = self._reconnect_delay
            if self.last_attempt_refused:
                bound = min(bound, REFUSED_MAX_DELAY)
            delay = bound * self._rng.uniform(0.5, 1.0)
        self.reconnect_waits.append(delay)
        deadline = time.monotonic() + delay
        # Short sleeps, so that stop() is not held up by a long wait (paho sleeps up to 1 s at a time too).
        while not self._thread_terminate and self._state not in _STOPPING:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.2))


def new_client(settings: MqttSettings, client_id: str, *, manual_ack: bool = False,
               protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
               clean_session: bool = True) -> paho.Client:
    """A client with credentials, optional TLS and exponential reconnect backoff; not yet connected.

    clean_session applies to MQTT 3.1.1 only (MQTT 5 decides at connect(), by session expiry).
    """
    if protocol == MQTTProtocolVersion.MQTTv5:
        client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, manual_ack=manual_ack)
    else:
        client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                        clean_session=clean_session, manual_ack=manual_ack)
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls_ca:
        client.tls_set(ca_certs=settings.tls_ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    # Doubling up to the maximum, with jitter (Client): no fixed-rate reconnect storm after an outage.
    client.reconnect_delay_set(min_delay=RECONNECT_MIN_DELAY, max_delay=RECONNECT_MAX_DELAY)
    client.on_socket_open = _no_delay
    return client


def _no_delay(_client: paho.Client, _userdata: Any, sock: Any) -> None:
    # paho leaves Nagle's algorithm on: a command written right after an acknowledgement then waits
    # for the broker's next packet (~10 ms at 20k readings/s, measured by bench/rules_service.py).
    # The broker side is set_tcp_nodelay (deploy/mosquitto.py); this is the client side.
    with contextlib.suppress(OSError, AttributeError):  # a unix or websocket transport has no Nagle
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def connect_properties(session_expiry: int = SESSION_EXPIRY_SECONDS,
                       receive_maximum: int | None = None) -> Properties:
    """CONNECT properties: keep the session across disconnects; optionally a receive window.

    Receive Maximum is how many unacknowledged QoS 1 messages the broker may send us at once.
    Without it mosquitto applies its max_inflight_messages (100), which caps a consumer that
    acknowledges only after writing a batch at 100 messages per batch.
    """
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry
    if receive_maximum is not None:
        props.ReceiveMaximum = receive_maximum
    return props


def connect(client: paho.Client, settings: MqttSettings, *, persistent: bool = True,
            receive_maximum: int | None = None) -> None:
    """Start connecting in the background (loop_start must follow); reconnects are automatic.

    On an MQTT 3.1.1 client persistent is ignored (its clean-session flag was set by new_client)
    and receive_maximum is refused: 3.1.1 cannot carry it.
    """
    if client.protocol != MQTTProtocolVersion.MQTTv5:
        if receive_maximum is not None:
            raise ValueError("receive_maximum is an MQTT 5 property; this client speaks MQTT 3.1.1")
        client.connect_async(settings.host, settings.port, keepalive=30)
        return
    if persistent or receive_maximum is not None:
        props = connect_properties(SESSION_EXPIRY_SECONDS if persistent else 0, receive_maximum)
    else:
        props = None
    client.connect_async(settings.host, settings.port, keepalive=30, clean_start=not persistent,
                         properties=props)
