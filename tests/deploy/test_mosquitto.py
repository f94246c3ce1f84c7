"""The broker's durability settings, proven on a real mosquitto killed with SIGKILL."""

import socket
import time
from pathlib import Path

import pytest

from core import mqtt
from core.mqtt import new_client
from core.settings import MqttSettings
from deploy import mosquitto
from deploy.mosquitto import durability_settings, start_mosquitto
from deploy.processes import free_port, new_password
from tests.conftest import settings_for, wait_for

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "samples" / "mosquitto.conf"


def test_the_production_sample_has_every_durability_setting():
    sample = {line.strip() for line in SAMPLE.read_text().splitlines()}
    missing = [s for s in durability_settings() if s not in sample]
    assert missing == []
    assert "allow_anonymous false" in sample


@pytest.mark.integration
def test_queued_qos1_messages_survive_a_kill_9_of_the_broker(tmp_path):
    """Defect 6: without autosave mosquitto saved only every 30 minutes; a kill -9 lost queued commands."""
    users = {"operator": new_password(), "rules": new_password()}
    broker = start_mosquitto(tmp_path, users)
    got = []

    def subscriber():
        client = mqtt.new_client(settings_for(broker, "operator"), "durable-sub")
        client.on_message = lambda _c, _u, m: got.append(m.payload)
        client.on_connect = lambda c, *_: c.subscribe("smartcity/v1/gw/gw-vs-01/commands", qos=1)
        mqtt.connect(client, settings_for(broker, "operator"))  # a persistent session
        client.loop_start()
        wait_for(client.is_connected, 5)
        return client

    sub = subscriber()
    time.sleep(0.3)
    sub.disconnect()
    sub.loop_stop()
    pub = mqtt.new_client(settings_for(broker, "rules"), "pub")
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    for i in range(66):
        pub.publish("smartcity/v1/gw/gw-vs-01/commands", f"command {i}".encode(), qos=1).wait_for_publish(5)
    pub.disconnect()
    pub.loop_stop()
    time.sleep(2.5)  # > autosave_interval: the queue is on disk now
    broker.kill()
    broker = start_mosquitto(tmp_path, users, port=broker.port)
    try:
        sub = subscriber()
        wait_for(lambda: len(got) == 66, 10)
        assert sorted(got) == sorted(f"command {i}".encode() for i in range(66))
        sub.disconnect()
        sub.loop_stop()
    finally:
        broker.stop()


def test_a_port_taken_before_mosquitto_binds_it_is_chosen_again(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The race start_influxd met in CI: a free port chosen, then taken by another process first."""
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()  # it accepts connections but never speaks MQTT: not a broker
    taken = squatter.getsockname()[1]
    ports = iter([taken])

    def choose(host: str = "127.0.0.1") -> int:
        return next(ports, None) or free_port(host)

    monkeypatch.setattr(mosquitto, "free_port", choose)
    try:
        broker = mosquitto.start_mosquitto(tmp_path, {"operator": "pw-" + "x" * 20})
        try:
            assert broker.port != taken
            client = new_client(MqttSettings(broker.host, broker.port, "operator", "pw-" + "x" * 20), "probe-test")
            assert client.connect(broker.host, broker.port) == 0
            client.disconnect()
        finally:
            broker.stop()
    finally:
        squatter.close()
