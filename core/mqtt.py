"""paho-mqtt clients configured the one way every service needs: MQTT 5, auth, backoff."""

from __future__ import annotations

import ssl

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.settings import MqttSettings

# A persistent session keeps QoS 1 messages queued at the broker while a service restarts.
SESSION_EXPIRY_SECONDS = 24 * 3600


def new_client(settings: MqttSettings, client_id: str, *, manual_ack: bool = False) -> paho.Client:
    """A client with credentials, optional TLS and exponential reconnect backoff; not yet connected."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5, manual_ack=manual_ack
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls_ca:
        client.tls_set(ca_certs=settings.tls_ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    # paho doubles the delay up to max_delay: no fixed-rate reconnect storm after a broker outage.
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


def connect_properties(session_expiry: int = SESSION_EXPIRY_SECONDS) -> Properties:
    """CONNECT properties asking the broker to keep the session across disconnects."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry
    return props


def connect(client: paho.Client, settings: MqttSettings, *, persistent: bool = True) -> None:
    """Start connecting in the background (loop_start must follow); reconnects are automatic."""
    client.connect_async(
        settings.host, settings.port, keepalive=30, clean_start=not persistent,
        properties=connect_properties() if persistent else None,
    )
