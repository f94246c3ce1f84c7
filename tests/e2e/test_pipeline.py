"""The whole pipeline, each service in its own process as in production:
simulated firmware -> pseudo-terminals -> edge agents -> mosquitto -> ingest -> InfluxDB,
and rules -> commands -> edge -> LoRa downlink -> the simulated light's next readings.

The registry's lorawan lights take the other path: their nodes' frames reach a simulated network
server (ChirpStack v4 with the RN2483 run, The Things Stack v3 with the RAK3172 run), which
publishes them as its MQTT integration does, and each edge agent's bridge reads them; commands go
back as the server's downlinks. The server's integration shares the platform's broker here, with
the accounts network-server and ns-bridge of deploy/mosquitto.py.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from core import topics
from core.commands import Action, Command
from core.settings import NS_MQTT_ENV, InfluxSettings, influx_to_env, mqtt_to_env
from core.topics import Channel
from deploy.mosquitto import NETWORK_SERVER_USER, NS_BRIDGE_USER, start_mosquitto
from deploy.processes import free_port, new_password, spawn
from edge.lora_keys import KeyRing
from tests.conftest import SERVICE_USERS, settings_for, wait_for

pytestmark = pytest.mark.integration

# Presence in the last 1.2 s (a window of 12 buckets of 0.1 s) -> 100 %, else 20 %.
FAST_RULES = """
version = 2
[[rules]]
name = "presence-lighting"
kind = "occupancy"
group_by = "wijk"
values.present = { metric = "presence", fn = "max", over = 1.2 }
when = "present > 0"
urgent = true
on_activate = [{ command = "dim", params = { level = 100 }, targets = { kind = "street_light" } }]
on_clear = [{ command = "dim", params = { level = 20 }, targets = { kind = "street_light" } }]
"""


# Both servers' flavours run end to end: one with each modem run. An application per gateway, as
# the demo has, so that a gateway's bridge receives its own devices' uplinks only.
NETWORK_SERVERS = {"rn2483": ("chirpstack", "e2e-{gateway}"), "rak3172": ("tts", "e2e-{gateway}@gemeente")}
LORAWAN_LIGHTS = {"vs-sl-204": "gw-vs-01", "vs-sl-205": "gw-vs-01", "ws-sl-204": "gw-ws-01", "ws-sl-205": "gw-ws-01"}


def points(influx, q):
    return [row for s in influx.query(q) for row in s.rows()]


@pytest.fixture
def broker(tmp_path, demo_registry):
    """The conftest's broker with the network server's two accounts as well (it shares the broker here)."""
    users = {u: new_password() for u in (*demo_registry.gateways, *SERVICE_USERS, NETWORK_SERVER_USER,
                                         NS_BRIDGE_USER)}
    b = start_mosquitto(tmp_path / "broker", users)
    yield b
    b.stop()


@pytest.fixture(params=["rn2483", "rak3172"])
def pipeline(request, tmp_path, broker, influxd, influx, demo_registry):  # noqa: PLR0917 - pytest fixtures
    children = []
    keys = tmp_path / "lora-keys.json"
    KeyRing.generate().save(keys)
    flavour, application = NETWORK_SERVERS[request.param]
    network_server = ["--network-server", flavour, "--ns-application", application]

    def service(name, args, user, ns_user=None):
        env = dict(os.environ)
        env["SMARTCITY_LORA_KEYS"] = str(keys)
        if user:
            env.update(mqtt_to_env(settings_for(broker, user)))
        if ns_user:
            env.update(mqtt_to_env(settings_for(broker, ns_user), prefix=NS_MQTT_ENV))
        env.update(influx_to_env(InfluxSettings(influxd.url, influx.config.database)))
        child = spawn(name, [sys.executable, "-m", "smartcity", args[0], *args[1:]], tmp_path / f"{name}.log", env)
        children.append(child)
        return child

    port_map = tmp_path / "ports.json"
    rules = tmp_path / "rules.toml"
    rules.write_text(FAST_RULES)
    modem = ["--lora-modem", request.param]
    sim = service("sim", ["sim", *modem, "--port-map", str(port_map), "--report-interval", "0.3",
                          "--busy-seconds", "3", "--quiet-seconds", "5", "--seed", "7", *network_server],
                  None, NETWORK_SERVER_USER)
    wait_for(port_map.exists, 15)
    for gw in demo_registry.gateways:
        service(f"edge-{gw}", ["edge", *modem, "--gateway", gw, "--port-map", str(port_map), "--flush-interval", "0.2",
                               "--rg15-poll-interval", "0.5", "--status-interval", "1",
                               "--state-dir", str(tmp_path / "state"), *network_server], gw, NS_BRIDGE_USER)
    service("ingest", ["ingest", "--worker", "e2e", "--state-dir", str(tmp_path / "state"), "--max-latency", "0.1"],
            "ingest")
    service("rules", ["rules", "--rules", str(rules), "--client-id", "e2e-rules", "--tick", "0.05",
                      "--state-dir", str(tmp_path / "state")],
            "rules")
    yield {"sim": sim, "children": children, "port_map": json.loads(port_map.read_text()), "flavour": flavour}
    for child in children:
        child.stop()
    for child in children:
        assert child.process.returncode == 0, f"{child.name} exited {child.process.returncode}:\n{child.log_tail()}"
        assert "Traceback" not in child.log_path.read_text(), child.log_tail(40)


def test_readings_flow_in_and_a_rule_dims_a_light_as_its_next_readings_show(pipeline, influx, demo_registry):
    expected = {"street_light": 16, "rain_gauge": 2, "occupancy": 4, "traffic_light": 2, "parking_spot": 2}

    def every_device_reported():
        counts = {}
        for kind in expected:
            counts[kind] = len(points(influx, f'SELECT last(*) FROM "{kind}" GROUP BY "device"'))
        return counts == expected

    wait_for(every_device_reported, 30)
    # Each agent announced itself with its (retained) birth message.
    online = points(influx, """SELECT last("online") FROM "gateway_status" GROUP BY "gateway" """)
    assert [r["last"] for r in online] == [True, True]
    # A light behind the network server is stored as a modem light is: same measurement, same fields,
    # the registry's tags of its own gateway and wijk.
    for light in LORAWAN_LIGHTS:
        assert lorawan_fields(influx, light) == lorawan_fields(influx, "vs-sl-201"), light
    tags = influx.query("""SELECT last("power") FROM "street_light" WHERE "device" = 'ws-sl-205' """
                        """GROUP BY "gateway", "wijk" """)
    assert [(s.tags["gateway"], s.tags["wijk"]) for s in tags] == [("gw-ws-01", "WK062901")]

    # The rule dims some wijk to 20 % (a light is commanded, acknowledges, and then reports 20 %).
    dim_commands = """SELECT first("level") FROM "command" WHERE "level" = 20.0 GROUP BY "device" """
    wait_for(lambda: points(influx, dim_commands), 30)
    dimmed_after = {}
    for s in influx.query(dim_commands):
        dimmed_after[s.tags["device"]] = s.values[0][0]
    light, issued_ms = sorted(dimmed_after.items())[0]

    def light_reports_20():
        rows = points(influx, f"""SELECT "dim_level", "power" FROM "street_light" WHERE "device" = '{light}' """
                              f"AND time > {issued_ms}ms")
        return [r for r in rows if r["dim_level"] == 20.0]

    dimmed_rows = wait_for(light_reports_20, 20)
    # Power follows the dim level: a 20 % LED draws far less than the rated ~40 W.
    assert all(r["power"] < 15 for r in dimmed_rows)
    applied = f"""SELECT "id" FROM "command_ack" WHERE "device" = '{light}' AND "status" = 'applied' """
    wait_for(lambda: points(influx, applied), 10)
    # Every wijk's sensors eventually see people again, and its lights come back to 100 %.
    wait_for(lambda: points(influx, f"""SELECT "dim_level" FROM "street_light" WHERE "device" = '{light}' """
                                    f"AND \"dim_level\" = 100.0 AND time > {issued_ms}ms"), 30)

    # The rule dims the lorawan lights of its wijk too: the command goes out as the network
    # server's downlink, and is applied once the lamp's next uplink (through the server) shows it.
    for lorawan_light in ("vs-sl-205", "ws-sl-204"):
        command_id, when_ms = wait_for(lambda d=lorawan_light: dim_applied(influx, d, 20.0), 30)
        # The ack goes out at once; the report that confirmed it comes with the gateway's next batch.
        reported = wait_for(lambda d=lorawan_light, t=when_ms: points(
            influx, f"""SELECT "dim_level", "power" FROM "street_light" WHERE "device" = '{d}' """
                    f"""AND "dim_level" = 20.0 AND time >= {t}ms"""), 10)
        assert all(r["power"] < 15 for r in reported), (lorawan_light, command_id)
    # Each bridge took uplinks of its own devices only and refused none (counters of the status).
    health = influx.query("""SELECT last("ns_uplinks"), last("lorawan_devices_unbridged") FROM "gateway_health" """
                          """GROUP BY "gateway" """)
    assert {s.tags["gateway"]: s.values[-1][1] > 0 and s.values[-1][2] == 0 for s in health} == {
        "gw-vs-01": True, "gw-ws-01": True}
    rejected = [k for s in influx.query("""SELECT * FROM "gateway_health" """) for row in s.rows()
                for k, v in row.items() if k.startswith("ns_rejected_") and v]
    assert rejected == []


def lorawan_fields(influx, device):
    """The street_light fields a device has reported (their names)."""
    rows = points(influx, f"""SELECT last(*) FROM "street_light" WHERE "device" = '{device}' """)
    return sorted(k for r in rows for k, v in r.items() if k != "time" and v is not None)


def dim_applied(influx, device, level):
    """(command id, ms since epoch when it was issued) of a dim to level that the device's gateway acked applied."""
    commands = points(influx, f"""SELECT "id", "level" FROM "command" WHERE "device" = '{device}' """
                              f"""AND "level" = {level} """)
    for c in commands:
        acks = points(influx, f"""SELECT "status", "detail" FROM "command_ack" WHERE "id" = '{c["id"]}' """)
        if any(a["status"] == "applied" and f"dim_level {level:g}" in a["detail"] for a in acks):
            return c["id"], c["time"]  # the client asks for epoch=ms
    return None


def test_the_demo_runs_and_prints_its_summary(tmp_path):
    """Quick start 1, shortened: `smartcity demo --duration` starts everything and reports what it stored."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "smartcity", "demo", "--duration", "12", "--state-dir",
                             str(tmp_path / "state"), "--report-interval", "0.5", "--busy-seconds", "3",
                             "--quiet-seconds", "40", "--api-port", str(free_port())],
                            check=False, capture_output=True, text=True, timeout=90)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert time.monotonic() - started < 60
    assert "/v1/latest" in out and "InfluxDB" in out
    for kind, devices in (("street_light", 16), ("rain_gauge", 2), ("occupancy", 4)):
        line = next(line for line in out.splitlines() if line.strip().startswith(kind))
        reports = int(line.split()[1])
        assert reports > 0 and f"from {devices} devices" in line, out
    assert "commands sent" in out


def test_bike_priority_reaches_the_junction_and_is_acknowledged_once_it_reports_it(pipeline, influx, mqtt_client):
    """A bike-priority command goes out as a LoRa downlink; ``applied`` only once the controller reports it."""
    rules = mqtt_client("rules")
    started_ms = int(time.time() * 1000)
    # The agent is connected (its session, and so its command subscription, exists) once its readings arrive.
    wait_for(lambda: points(influx, """SELECT "cycle_time" FROM "traffic_light" WHERE "device" = 'ws-tl-101' """), 30)
    for enabled in (True, False):
        command = Command("ws-tl-101", Action.BIKE_PRIORITY, {"enabled": enabled}, "test", expires_at=time.time() + 30)
        rules.publish(topics.topic("gw-ws-01", Channel.COMMANDS), command.to_json(), qos=1).wait_for_publish(5)
        ack = f"""SELECT "status", "detail" FROM "command_ack" WHERE "id" = '{command.id}' """
        rows = wait_for(lambda q=ack: points(influx, q), 20)
        assert rows[0]["status"] == "applied", rows
        assert f"reports bike_priority {'on' if enabled else 'off'}" in rows[0]["detail"]
        # The controller's own readings show the state, with the longer cycle while cyclists have priority.
        state = wait_for(lambda e=enabled, since=started_ms: [
            r for r in points(influx, f"""SELECT "bike_priority", "cycle_time" FROM "traffic_light" """
                                      f"""WHERE "device" = 'ws-tl-101' AND time > {since}ms""")
            if r["bike_priority"] is e], 10)
        assert state[-1]["cycle_time"] == (110.0 if enabled else 90.0)
        started_ms = int(time.time() * 1000)
