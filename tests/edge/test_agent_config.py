"""`smartcity edge --config FILE` against simulated firmware on real ptys and a real broker: the agent
follows config edits without a restart, keeps its setup on a bad edit, and publishes its health counters."""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import jsonfast, mqtt, senml
from core.commands import Action, Command
from core.registry import load
from deploy.processes import new_password, spawn
from edge.gateway_config import config_from_registry, load_config
from edge.lora_keys import KeyRing
from firmware_sim.air import Air
from firmware_sim.city import NodeScheduler
from firmware_sim.pty_port import PtyPort
from firmware_sim.rg15 import RG15Sim
from firmware_sim.rn2483 import RN2483Sim
from firmware_sim.street_light import StreetLightNode
from smartcity.data import demo_registry_path
from tests.conftest import settings_for, wait_for

pytestmark = pytest.mark.integration

GW = "gw-vs-01"
LIGHTS = {"vs-sl-101": "06260001", "vs-sl-102": "06260002"}


class Watcher:
    """Everything the gateway publishes: readings per device and the latest status."""

    def __init__(self, broker) -> None:
        self.devices: dict[str, int] = {}
        self.status: dict[str, object] = {}
        self.acks: list[dict[str, object]] = []
        self._lock = threading.Lock()
        settings = settings_for(broker, "operator")
        self.client = mqtt.new_client(settings, f"watcher-{new_password()[:6]}")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(f"smartcity/v1/gw/{GW}/#", qos=1)
        mqtt.connect(self.client, settings, persistent=False)
        self.client.loop_start()
        wait_for(self.client.is_connected, 5)

    def _on_message(self, _c: object, _u: object, msg) -> None:
        with self._lock:
            if msg.topic.endswith("/readings"):
                for r in senml.decode(msg.payload).readings:
                    self.devices[r.device] = self.devices.get(r.device, 0) + 1
            elif msg.topic.endswith("/status"):
                self.status = jsonfast.loads(msg.payload)
            elif msg.topic.endswith("/acks"):
                self.acks.append(jsonfast.loads(msg.payload))

    def health(self) -> dict[str, float]:
        with self._lock:
            return dict(self.status.get("health") or {})  # type: ignore[call-overload]

    def count(self, device: str) -> int:
        with self._lock:
            return self.devices.get(device, 0)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def config_text(broker, tmp_path: Path, ports: tuple[str, str], lights: list[str], extra: str = "") -> str:
    lora, rg15 = ports
    password = tmp_path / "mqtt-password"
    password.write_text(broker.users[GW])
    password.chmod(0o600)
    devices = "".join(f'[[devices]]\nid = "{d}"\nkind = "street_light"\nlink = "lora"\naddress = "{LIGHTS[d]}"\n\n'
                      for d in lights)
    return f"""version = 1
gateway = "{GW}"
{extra}
[mqtt]
host = "{broker.host}"
port = {broker.port}
password_file = "mqtt-password"

[queue]
flush_interval = "0.2s"

[lora]
port = "{lora}"
modem = "rn2483"
keys = "lora-keys.json"

[serial.rg15]
path = "{rg15}"
poll_interval = "0.5s"

[[devices]]
id = "vs-rg-001"
kind = "rain_gauge"
link = "serial"
port = "rg15"

{devices}"""


def replace(path: Path, text: str) -> None:
    # As an editor or a provisioning tool does: write beside, then rename over the old file.
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


@pytest.fixture
def city(tmp_path: Path) -> Iterator[dict[str, object]]:
    keys = KeyRing.generate()
    keys.save(tmp_path / "lora-keys.json")
    lora, rain = PtyPort("lora"), PtyPort("rg15")
    air = Air()
    modem = RN2483Sim(lora, air, rx_queue=8)
    gauge = RG15Sim(rain, random.Random(3), tick=0.2, time_scale=60.0)
    nodes = [StreetLightNode(address, air, random.Random(i), key=keys.key_for(address) or b"", report_interval=0.3)
             for i, address in enumerate(LIGHTS.values())]
    scheduler = NodeScheduler("test-nodes", nodes)  # type: ignore[arg-type]
    for part in (modem, gauge, scheduler):
        part.start()
    yield {"lora": lora.path, "rg15": rain.path, "nodes": dict(zip(LIGHTS, nodes, strict=True))}
    for part in (scheduler, modem, gauge):
        part.stop()
    lora.close()
    rain.close()


def test_the_agent_follows_its_config_file_and_reports_health(tmp_path, broker, city, mqtt_client):
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(config_text(broker, tmp_path, (city["lora"], city["rg15"]), ["vs-sl-101"]))
    watcher = Watcher(broker)
    agent = spawn("edge", [sys.executable, "-m", "smartcity", "edge", "--config", str(cfg), "--state-dir",
                           str(tmp_path / "state"), "--status-interval", "0.5", "--watch-interval", "0.2"],
                  tmp_path / "edge.log", {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        wait_for(lambda: watcher.count("vs-sl-101") > 5 and watcher.count("vs-rg-001") > 2, 20)
        # The second light is on the air but not in the config: its frames are foreign, never readings.
        wait_for(lambda: watcher.health().get("frames_rejected_foreign_address", 0) > 2, 10)
        assert watcher.count("vs-sl-102") == 0
        health = watcher.health()
        assert health["readings_published"] > 0 and health["mqtt_connects"] == 1 and health["queue_depth"] >= 0
        assert health["config_reloads"] == 0 and health["frames_rejected_bad_mic"] == 0

        replace(cfg, config_text(broker, tmp_path, (city["lora"], city["rg15"]), ["vs-sl-101", "vs-sl-102"]))
        wait_for(lambda: watcher.count("vs-sl-102") > 3, 10)
        wait_for(lambda: watcher.health().get("config_reloads") == 1, 5)
        # A command for the device the edit added is applied once the lamp reports it.
        command = Command("vs-sl-102", Action.DIM, {"level": 40}, "test", expires_at=time.time() + 20)
        mqtt_client("rules").publish(f"smartcity/v1/gw/{GW}/commands", command.to_json(), qos=1).wait_for_publish(5)
        wait_for(lambda: any(a["id"] == command.id and a["status"] == "applied" for a in watcher.acks), 10)
        assert city["nodes"]["vs-sl-102"].level == 40

        # A bad edit: counted, logged, and the running setup goes on as it was.
        replace(cfg, config_text(broker, tmp_path, (city["lora"], city["rg15"]), ["vs-sl-101"], extra="colour = 1"))
        wait_for(lambda: watcher.health().get("config_reload_failures") == 1, 5)
        before = watcher.count("vs-sl-102")
        wait_for(lambda: watcher.count("vs-sl-102") > before + 3, 10)
        assert "'colour': unknown key" in agent.log_path.read_text()

        # Removing the light again: its frames are foreign once more.
        replace(cfg, config_text(broker, tmp_path, (city["lora"], city["rg15"]), ["vs-sl-101"]))
        wait_for(lambda: watcher.health().get("config_reloads") == 2, 5)
        time.sleep(0.5)
        frozen = watcher.count("vs-sl-102")
        time.sleep(1.0)
        assert watcher.count("vs-sl-102") <= frozen + 6  # at most a batch that was on its way
        assert watcher.count("vs-sl-101") > 10
    finally:
        agent.stop()
        watcher.close()
    assert agent.process.returncode == 0, agent.log_tail()
    assert "Traceback" not in agent.log_path.read_text(), agent.log_tail(40)


def test_a_config_that_cannot_run_stops_the_start_with_its_reason(tmp_path, broker):
    cfg = tmp_path / "gateway.toml"
    KeyRing.generate().save(tmp_path / "lora-keys.json")
    cfg.write_text(config_text(broker, tmp_path, ("/dev/null", "/dev/null"), ["vs-sl-101"]).replace(
        'modem = "rn2483"', 'modem = "sx1276"'))
    result = subprocess.run([sys.executable, "-m", "smartcity", "edge", "--config", str(cfg)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "[lora] 'modem'" in result.stderr and "sx1276" in result.stderr


def test_a_command_sent_while_the_gateway_is_offline_is_applied_when_it_is_back(tmp_path, broker, city, mqtt_client):
    """The broker keeps the command in the agent's session; acked applied only once the lamp reports it."""
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(config_text(broker, tmp_path, (city["lora"], city["rg15"]), ["vs-sl-101", "vs-sl-102"]))
    watcher = Watcher(broker)
    argv = [sys.executable, "-m", "smartcity", "edge", "--config", str(cfg), "--state-dir", str(tmp_path / "state")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    agent = spawn("edge", argv, tmp_path / "edge.log", env)
    try:
        wait_for(lambda: watcher.count("vs-sl-101") > 3, 20)
        agent.stop()  # the gateway goes offline (its session stays at the broker)
        wait_for(lambda: watcher.status.get("state") == "offline", 5)
        command = Command("vs-sl-101", Action.DIM, {"level": 30}, "test", expires_at=time.time() + 60)
        mqtt_client("rules").publish(f"smartcity/v1/gw/{GW}/commands", command.to_json(), qos=1).wait_for_publish(5)
        time.sleep(1.0)
        assert city["nodes"]["vs-sl-101"].level == 100 and watcher.acks == []
        agent = spawn("edge-again", argv, tmp_path / "edge-again.log", env)
        wait_for(lambda: any(a["id"] == command.id for a in watcher.acks), 15)
        ack = next(a for a in watcher.acks if a["id"] == command.id)
        assert ack["status"] == "applied" and "dim_level 30 %" in ack["detail"]
        assert city["nodes"]["vs-sl-101"].level == 30
    finally:
        agent.stop()
        watcher.close()
    assert agent.process.returncode == 0, agent.log_tail()


def test_print_config_writes_the_file_that_runs_the_same_gateway(tmp_path, broker):
    """Moving a gateway from the registry and its ports to a config file of its own."""
    KeyRing.generate().save(tmp_path / "lora-keys.json")
    argv = [sys.executable, "-m", "smartcity", "edge", "--gateway", GW, "--port", "lora=/dev/ttyUSB0",
            "--port", "rg15=/dev/ttyAMA0", "--lora-keys", "lora-keys.json", "--state-dir", "state",
            "--print-config"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path)
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (elsewhere / "gateway.toml").write_text(result.stdout)
    written = load_config(elsewhere / "gateway.toml")  # read from another directory: same files
    full = load(demo_registry_path())
    # Without --network-server the agent leaves the lorawan devices out; so does the reference here.
    registry = dataclasses.replace(full, devices={k: d for k, d in full.devices.items() if d.link != "lorawan"})
    direct = config_from_registry(registry, GW, {"lora": "/dev/ttyUSB0", "rg15": "/dev/ttyAMA0"},
                                  lora_keys=tmp_path / "lora-keys.json", state_dir=tmp_path / "state")
    assert written == direct
    assert written.queue.path == tmp_path / "state" / "edge" / f"{GW}.sqlite"
