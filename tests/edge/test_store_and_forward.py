"""A broker outage with a SIGKILL of the agent in the middle: no reading lost, none twice at the consumer.

The outage lasts SMARTCITY_FAULT_OUTAGE seconds (8 in CI; the issue's 60 with SMARTCITY_FAULT_OUTAGE=60).
"""

import os
import sys
import time
from pathlib import Path

import pytest

from core import mqtt, senml
from deploy.mosquitto import start_mosquitto
from deploy.processes import new_password, spawn
from tests.conftest import settings_for, wait_for

pytestmark = pytest.mark.integration

OUTAGE = float(os.environ.get("SMARTCITY_FAULT_OUTAGE", "8"))
REPO = Path(__file__).resolve().parents[2]


class Consumer:
    """A persistent-session subscriber recording every (device, time) it receives, duplicates included."""

    def __init__(self, broker):
        self.keys: list[tuple[str, float]] = []
        settings = settings_for(broker, "operator")
        self.client = mqtt.new_client(settings, f"consumer-{new_password()[:6]}")
        self.client.on_message = lambda _c, _u, m: self.keys.extend(
            (r.device, r.time) for r in senml.decode(m.payload).readings)
        self.client.on_connect = lambda c, *_: c.subscribe("smartcity/v1/gw/gw-vs-01/readings", qos=1)
        self.client.reconnect_delay_set(0.2, 1)
        mqtt.connect(self.client, settings)
        self.client.loop_start()
        wait_for(self.client.is_connected, 5)
        time.sleep(0.3)

    def indices(self, device):
        return [round((t - 1_700_000_000.0) * 1000) for d, t in self.keys if d == device]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def feeder(tmp_path, broker, device):
    env = {**os.environ, "PYTHONPATH": str(REPO), "SMARTCITY_MQTT_HOST": broker.host,
           "SMARTCITY_MQTT_PORT": str(broker.port), "SMARTCITY_MQTT_USERNAME": "gw-vs-01",
           "SMARTCITY_MQTT_PASSWORD": broker.users["gw-vs-01"]}
    count = tmp_path / f"{device}.count"
    child = spawn(f"feeder-{device}", [sys.executable, "-m", "tests.edge.feeder", str(tmp_path / "queue.sqlite"),
                                       device, str(count)], tmp_path / f"feeder-{device}.log", env=env)
    return child, count


def test_a_broker_outage_with_a_sigkill_of_the_agent_loses_and_duplicates_nothing(tmp_path, broker):
    consumer = Consumer(broker)
    first, first_count = feeder(tmp_path, broker, "vs-sl-101")
    second = None
    try:
        wait_for(lambda: len(consumer.keys) > 20, 10)
        broker.stop()
        time.sleep(OUTAGE / 2)
        first.process.kill()  # SIGKILL mid-outage: whatever it accepted is in its queue on disk
        first.process.wait(5)
        accepted_first = int(first_count.read_text())
        second, second_count = feeder(tmp_path, broker, "vs-sl-102")  # the restarted agent, same queue
        time.sleep(OUTAGE / 2)
        broker = start_mosquitto(tmp_path / "broker", broker.users, port=broker.port)
        # The restarted agent reconnects with backoff and sends its backlog; once it has caught up with
        # the killed agent's backlog and its own, stop it cleanly (SIGTERM).
        wait_for(lambda: len(set(consumer.indices("vs-sl-101"))) >= accepted_first, 60)
        wait_for(lambda: len(consumer.indices("vs-sl-102")) >= int(second_count.read_text()) - 50, 60)
        second.stop()
        accepted_second = int(second_count.read_text())
        wait_for(lambda: len(consumer.indices("vs-sl-102")) >= accepted_second, 30)
        got_first = consumer.indices("vs-sl-101")
        # The killed agent may have accepted one reading more than its count file says (killed in between).
        assert accepted_first <= len(set(got_first)) <= accepted_first + 1
        assert sorted(set(got_first)) == list(range(len(set(got_first))))
        assert sorted(consumer.indices("vs-sl-102")) == list(range(accepted_second))
        assert len(consumer.keys) == len(set(consumer.keys)), "a reading arrived twice"
    finally:
        first.stop()
        if second is not None:
            second.stop()
        consumer.close()
        broker.stop()
