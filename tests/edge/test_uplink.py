"""The gateway's MQTT uplink against a real mosquitto."""

import signal
import time

import pytest

from core import jsonfast, mqtt, senml, topics
from core.commands import Ack, AckStatus, Action, Command, parse_ack
from core.senml import Reading
from core.topics import Channel
from deploy.mosquitto import start_mosquitto
from deploy.processes import new_password
from edge.durable_queue import DurableQueue
from edge.uplink import Uplink
from tests.conftest import settings_for, wait_for

pytestmark = pytest.mark.integration

GW = "gw-vs-01"


class Subscriber:
    def __init__(self, broker, topic_filter):
        self.messages = []
        self.client = mqtt.new_client(settings_for(broker, "operator"), f"sub-{new_password()[:8]}")
        self.client.on_message = lambda _c, _u, m: self.messages.append(m)
        self.client.on_connect = lambda c, *_: c.subscribe(topic_filter, qos=1)
        # A persistent session: messages published while it reconnects after a broker restart
        # are queued for it (the broker saves sessions to its persistence file on shutdown).
        mqtt.connect(self.client, settings_for(broker, "operator"))
        self.client.loop_start()
        wait_for(self.client.is_connected, 5)
        time.sleep(0.2)

    def payloads(self, channel):
        return [jsonfast.loads(m.payload) for m in self.messages if m.topic.endswith(channel.value)]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def uplink_parts(broker, tmp_path):
    commands = []
    queue = DurableQueue(tmp_path / "queue.sqlite")
    uplink = Uplink(GW, settings_for(broker, GW), queue, commands.append, flush_interval=0.05)
    yield uplink, queue, commands
    uplink.stop()
    queue.close()


def test_birth_is_retained_and_batches_carry_increasing_sequence_numbers(broker, uplink_parts):
    uplink, buffer, _ = uplink_parts
    uplink.start()
    wait_for(uplink.connected.is_set, 5)
    buffer.extend([Reading("vs-sl-101", "power", 1.0, 1e9)])
    wait_for(lambda: uplink.batches_sent == 1, 5)
    buffer.extend([Reading("vs-sl-101", "power", 2.0, 1e9 + 1)])
    wait_for(lambda: uplink.batches_sent == 2, 5)
    sub = Subscriber(broker, f"smartcity/v1/gw/{GW}/#")  # subscribes late: only the retained status
    try:
        wait_for(lambda: sub.payloads(Channel.STATUS), 5)
        assert sub.payloads(Channel.STATUS)[0]["state"] == "online"
    finally:
        sub.close()
    assert uplink.seq == 2


def test_commands_are_handed_over_and_bad_ones_counted(broker, uplink_parts, mqtt_client):
    uplink, _, commands = uplink_parts
    uplink.start()
    wait_for(uplink.connected.is_set, 5)
    time.sleep(0.2)
    rules = mqtt_client("rules")
    cmd = Command("vs-sl-101", Action.DIM, {"level": 20}, "rule:test")
    rules.publish(topics.topic(GW, Channel.COMMANDS), b"{broken", qos=1)
    rules.publish(topics.topic(GW, Channel.COMMANDS), cmd.to_json(), qos=1)
    wait_for(lambda: commands, 5)
    assert commands == [cmd]
    assert uplink.bad_commands == 1


def test_readings_wait_out_a_broker_outage(tmp_path, broker, uplink_parts):
    uplink, buffer, _ = uplink_parts
    uplink.start()
    wait_for(uplink.connected.is_set, 5)
    sub = Subscriber(broker, topics.topic(GW, Channel.READINGS))
    broker.stop()
    wait_for(lambda: not uplink.connected.is_set(), 5)
    buffer.extend([Reading("vs-sl-101", "power", float(i), 1e9 + i) for i in range(20)])
    time.sleep(0.3)
    assert len(buffer) == 20  # kept until the broker acknowledges them
    restarted = start_mosquitto(tmp_path / "broker", broker.users, port=broker.port)
    try:
        wait_for(lambda: sub.payloads(Channel.READINGS), 15)
        sub.close()
        got = [r.value for m in sub.messages for r in senml.decode(m.payload).readings]
        assert got == [float(i) for i in range(20)]
    finally:
        uplink.stop()
        restarted.stop()


def test_seq_carries_on_after_a_restart_and_the_birth_says_where(broker, tmp_path):
    """A restarted agent must not count from 0 again: the platform would see no gap (fault probe)."""
    sub = Subscriber(broker, f"smartcity/v1/gw/{GW}/#")
    try:
        for run in range(2):
            queue = DurableQueue(tmp_path / "queue.sqlite")
            uplink = Uplink(GW, settings_for(broker, GW), queue, lambda _c: None, flush_interval=0.05)
            uplink.start()
            wait_for(uplink.connected.is_set, 5)
            queue.extend([Reading("vs-sl-101", "power", float(run), 1e9 + run)])
            wait_for(lambda uplink=uplink: uplink.batches_sent == 1, 5)
            uplink.stop()
            queue.close()
        wait_for(lambda: len(sub.payloads(Channel.READINGS)) == 2, 5)
        seqs = [senml.decode(m.payload).seq for m in sub.messages if m.topic.endswith("readings")]
        assert seqs == [0, 1]
        births = [p["seq"] for p in sub.payloads(Channel.STATUS) if p["state"] == "online"]
        assert births[-1] == 1
    finally:
        sub.close()


def test_a_batch_the_broker_refuses_stays_in_the_queue_and_is_counted(broker, tmp_path):
    """An operator's ACL change (reloaded on SIGHUP) makes mosquitto answer PUBACK 'Not authorized'."""
    queue = DurableQueue(tmp_path / "queue.sqlite")
    uplink = Uplink(GW, settings_for(broker, GW), queue, lambda _c: None, flush_interval=0.05)
    uplink.start()
    try:
        wait_for(uplink.connected.is_set, 5)
        acl = broker.config_path.parent / "acl"
        acl.write_text(acl.read_text().replace("pattern write smartcity/v1/gw/%u/readings\n", ""))
        broker.child.process.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        queue.extend([Reading("vs-sl-101", "power", 1.0, 1e9)])
        wait_for(lambda: uplink.refused_batches == 1, 5)
        assert uplink.batches_sent == 0
        assert len(queue) == 1  # kept for the next start, not counted as delivered
    finally:
        uplink.stop(drain_seconds=0)
        queue.close()


def test_acks_carry_their_time_strictly_increasing(broker, uplink_parts):
    """The ingest stores an ack at its `at`: redelivered, it is the same point; two acks never share a time."""
    uplink, _, _ = uplink_parts
    uplink.start()
    wait_for(uplink.connected.is_set, 5)
    sub = Subscriber(broker, f"smartcity/v1/gw/{GW}/acks")
    try:
        before = time.time()
        for i in range(5):  # faster than the clock moves: the times must still differ
            uplink.send_ack(Ack(f"c-{i}", "vs-sl-101", AckStatus.APPLIED, "ok"))
        wait_for(lambda: len(sub.payloads(Channel.ACKS)) == 5, 5)
        times = [a["at"] for a in sub.payloads(Channel.ACKS)]
        assert times == sorted(set(times)) and before - 1 < times[0] and times[-1] < time.time() + 1
        assert [parse_ack(m.payload).at for m in sub.messages] == times  # as the ingest parses them
    finally:
        sub.close()
