"""The publisher's bounds, without a broker: the outgoing queue, a lost connection, the command line."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from prometheus_client import generate_latest

from api.sta_mqtt import main
from api.sta_mqtt.service import StaMqttConfig, StaMqttService
from core.errors import ConfigError
from core.registry import WatchedRegistry
from core.senml import Reading, encode
from core.settings import MqttSettings


def message(topic: str, payload: bytes) -> paho.MQTTMessage:
    msg = paho.MQTTMessage(topic=topic.encode())
    msg.payload = payload
    return msg


def readings(n: int) -> bytes:
    return encode([Reading("vs-sl-101", "power", float(i), time.time() + i * 0.001, "W") for i in range(n)], 1)


@pytest.fixture
def service(registry_file: Path) -> StaMqttService:
    """A service that never connects (port 9 is discard): publishes fail as when the broker is away."""
    return StaMqttService(MqttSettings("127.0.0.1", 9), WatchedRegistry(registry_file),
                          StaMqttConfig(base_url="http://x/v1.1", max_backlog=10))


def test_observations_beyond_the_backlog_bound_are_dropped_and_counted(service: StaMqttService,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[str] = []
    monkeypatch.setattr(service.link, "publish", lambda topic, _payload, _qos: published.append(topic))
    service._on_message(message("smartcity/v1/gw/gw-vs-01/readings", readings(3)))
    assert len(published) == 6 and service.metrics.counts.observations == 3
    monkeypatch.setattr(service, "backlog", lambda: 10)  # paho holds max_backlog packets unsent
    service._on_message(message("smartcity/v1/gw/gw-vs-01/readings", readings(4)))
    assert len(published) == 6
    assert service.metrics.counts.dropped_backlog == 4 and service.metrics.counts.observations == 3


def test_while_disconnected_a_packs_observations_are_dropped_and_counted(service: StaMqttService) -> None:
    # The real link, never connected: QoS 0 publishes are refused (PublishError) and nothing queues up.
    service._on_message(message("smartcity/v1/gw/gw-vs-01/readings", readings(5)))
    counts = service.metrics.counts
    assert counts.dropped_disconnected == 5 and counts.observations == 0
    assert service.backlog() == 0
    assert service.health()["status"] == "failing"


def test_a_message_on_another_channel_is_a_bad_message(service: StaMqttService) -> None:
    service._on_message(message("smartcity/v1/gw/gw-vs-01/status", readings(1)))
    service._on_message(message("elsewhere/readings", readings(1)))
    assert service.metrics.counts.bad_messages == 2 and service.metrics.counts.dropped_disconnected == 0


def test_the_counts_are_exposed_to_prometheus(service: StaMqttService) -> None:
    service._on_message(message("smartcity/v1/gw/gw-ws-01/readings", readings(2)))  # wrong gateway
    text = generate_latest(service.metrics.registry).decode()
    assert 'smartcity_sta_mqtt_rejected_records_total{reason="wrong_gateway"} 2.0' in text
    assert "smartcity_sta_mqtt_messages_total 1.0" in text
    assert "smartcity_sta_mqtt_outgoing_queue 0.0" in text


def args(**kw: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    main.add_arguments(parser)
    ns = parser.parse_args([])
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def test_the_public_url_is_required_and_becomes_the_service_root() -> None:
    with pytest.raises(ConfigError, match="--public-url"):
        main.config_from_args(args(public_url=""))
    assert main.config_from_args(args(public_url="https://data.example.nl/")).base_url == \
        "https://data.example.nl/v1.1"
    assert main.config_from_args(args(public_url="https://d.nl/api/v1.1")).base_url == "https://d.nl/api/v1.1"
    config = main.config_from_args(args(public_url="http://h", no_collection_topic=True, max_backlog=5))
    assert not config.collection_topic and config.max_backlog == 5
    with pytest.raises(ConfigError, match="max-backlog"):
        main.config_from_args(args(public_url="http://h", max_backlog=0))
