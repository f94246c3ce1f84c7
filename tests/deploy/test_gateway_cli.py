"""`smartcity gateway add|revoke|list` against a real mosquitto: credentials that work at once, confined by
the ACL's patterns, revocation that disconnects, and refusals that change nothing."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from api.operators.audit import AuditLog
from core import mqtt, topics
from core.registry import Registry
from core.settings import MqttSettings
from core.topics import Channel
from deploy.mosquitto import Broker, start_mosquitto
from deploy.processes import new_password
from edge.gateway_config import load_config, mqtt_settings
from smartcity.cli import main as smartcity_main
from smartcity.data import demo_registry_path
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

GW, OTHER = "gw-vs-01", "gw-ws-01"  # the demo city's two gateways
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Setup:
    broker: Broker
    passwd: Path
    pid_file: Path
    out: Path
    audit: Path

    def files(self) -> list[str]:
        return ["--password-file", str(self.passwd), "--pid-file", str(self.pid_file), "--audit", str(self.audit)]

    def add_args(self, gateway: str = GW, ports: tuple[str, ...] = ("lora=/dev/ttyUSB0", "rg15=/dev/ttyAMA0"),
                 ns: bool = True) -> list[str]:
        return ["gateway", "add", gateway, "--registry", str(demo_registry_path()), *self.files(),
                "--broker-host", self.broker.host, "--broker-port", str(self.broker.port), "--out-dir", str(self.out),
                *(a for p in ports for a in ("--port", p)),
                *(("--network-server", "chirpstack", "--ns-host", "ns.example", "--ns-application", "app-1")
                  if ns else ())]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """mosquitto with the services' accounts and gateway OTHER; GW has no account yet. Its pid file is ours."""
    users = {u: new_password() for u in ("ingest", "operator", OTHER)}
    broker = start_mosquitto(tmp_path / "broker", users)
    assert broker.config_path is not None
    pid_file = tmp_path / "mosquitto.pid"
    pid_file.write_text(f"{broker.child.pid}\n")
    yield Setup(broker, broker.config_path.parent / "passwd", pid_file, tmp_path / "out", tmp_path / "audit.sqlite")
    broker.stop()


def cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    """Run `smartcity ARGV` in this process: exit status and everything it printed."""
    status = smartcity_main(argv)
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@dataclass
class Peer:
    """A connected client recording what it receives and its connection results."""

    client: paho.Client
    results: list[Any] = field(default_factory=list)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    gone: bool = False

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def got(self, topic: str, payload: bytes) -> bool:
        return (topic, payload) in self.received


def connect(broker: Broker, settings: MqttSettings, subscribe: tuple[str, ...] = ()) -> Peer:
    client = mqtt.new_client(settings, f"t-{settings.username}-{time.time_ns()}")
    peer = Peer(client)

    def on_connect(c: paho.Client, _u: object, _f: object, rc: Any, _p: object) -> None:
        peer.results.append(rc)
        for t in subscribe:
            c.subscribe(t, qos=1)

    def on_disconnect(*_a: object) -> None:
        peer.gone = True

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_message = lambda _c, _u, m: peer.received.append((m.topic, m.payload))
    client.connect(broker.host, broker.port)
    client.loop_start()
    wait_for(lambda: peer.results, 5)
    return peer


def publish(peer: Peer, topic: str, payload: bytes) -> None:
    info = peer.client.publish(topic, payload, qos=1)
    info.wait_for_publish(5)
    assert info.rc == paho.MQTT_ERR_SUCCESS


def publish_refused(peer: Peer, topic: str, payload: bytes) -> object:
    """Publish at QoS 1 and return the broker's PUBACK reason code."""
    acked: list[object] = []
    peer.client.on_publish = lambda _c, _u, _mid, rc, _p: acked.append(rc)
    peer.client.publish(topic, payload, qos=1)
    wait_for(lambda: acked, 5)
    return acked[0]


def account(s: Setup, user: str) -> MqttSettings:
    return MqttSettings(s.broker.host, s.broker.port, user, s.broker.users[user])


def installed(s: Setup, gateway: str = GW) -> Path:
    """The written config, with the LoRa key file the installer puts next to it (the CLI does not write keys)."""
    directory = s.out / gateway
    keys = directory / "lora-keys.json"
    keys.write_text(json.dumps({"master": "ab" * 32}))
    keys.chmod(0o600)
    return directory / "gateway.toml"


def test_add_gives_a_working_account_confined_by_the_acl_pattern_without_a_restart(
        setup: Setup, capsys: pytest.CaptureFixture[str], demo_registry: Registry) -> None:
    s = setup
    pid, acl_before = s.broker.child.pid, (s.passwd.parent / "acl").read_bytes()
    status, printed = cli(capsys, s.add_args())
    assert status == 0, printed
    password_path = s.out / GW / "mqtt-password"
    password = password_path.read_text().strip()
    assert len(password) >= 32 and password not in printed
    assert password not in s.passwd.read_text()  # only its hash
    assert password_path.stat().st_mode & 0o777 == 0o600
    # The edge's own loader accepts the file (files checked too: the password file's mode) and names GW's devices.
    config = load_config(installed(s))
    assert config.gateway == GW
    assert [d.id for d in config.devices] == [d.id for d in demo_registry.devices_of(GW)]
    settings = mqtt_settings(config)
    assert (settings.host, settings.port, settings.username, settings.password) == (
        s.broker.host, s.broker.port, GW, password)

    watcher = connect(s.broker, account(s, "operator"), ("smartcity/#",))
    gw = connect(s.broker, settings, (topics.topic(GW, Channel.COMMANDS), topics.topic(OTHER, Channel.COMMANDS)))
    assert not gw.results[0].is_failure, gw.results
    try:
        time.sleep(0.2)  # the subscriptions are in place (mosquitto grants both: reading is checked per message)
        publish(watcher, topics.topic(OTHER, Channel.COMMANDS), b"not-yours")
        publish(watcher, topics.topic(GW, Channel.COMMANDS), b"yours")
        wait_for(lambda: gw.got(topics.topic(GW, Channel.COMMANDS), b"yours"), 5)
        assert [p for _t, p in gw.received] == [b"yours"]  # in order from one publisher: the other's came first
        publish(gw, topics.topic(GW, Channel.READINGS), b"mine")
        wait_for(lambda: watcher.got(topics.topic(GW, Channel.READINGS), b"mine"), 5)
        for channel in (Channel.READINGS, Channel.STATUS, Channel.ACKS):
            # MQTT 5: mosquitto answers "Not authorized" and then drops the connection (2.0.11), so one each.
            forger = connect(s.broker, settings)
            assert str(publish_refused(forger, topics.topic(OTHER, channel), b"forged")) == "Not authorized"
            forger.stop()
        last = connect(s.broker, settings)
        publish(last, topics.topic(GW, Channel.STATUS), b"after")
        last.stop()
        # The broker decided on each forged message before it answered; a delivered one would be queued first.
        wait_for(lambda: watcher.got(topics.topic(GW, Channel.STATUS), b"after"), 5)
        assert [(t_, p) for t_, p in watcher.received if p == b"forged"] == []
    finally:
        gw.stop()
        watcher.stop()
    # No restart, and the ACL file was not touched: the pattern lines are the gateway's "ACL entry".
    assert s.broker.child.pid == pid and s.broker.child.running()
    assert (s.passwd.parent / "acl").read_bytes() == acl_before

    status, printed = cli(capsys, ["gateway", "list", "--registry", str(demo_registry_path()),
                                   "--password-file", str(s.passwd)])
    assert status == 0
    rows = {line.split()[0]: line.split()[1] for line in printed.splitlines() if line.startswith("gw-")}
    assert rows == {GW: "yes", OTHER: "yes"}


def test_revoke_disconnects_the_gateway_refuses_it_after_and_leaves_the_others(
        setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    s = setup
    assert cli(capsys, s.add_args())[0] == 0
    settings = mqtt_settings(load_config(installed(s)))
    pid = s.broker.child.pid
    gw = connect(s.broker, settings)
    other = connect(s.broker, account(s, OTHER))
    watcher = connect(s.broker, account(s, "operator"), ("smartcity/#",))
    assert not gw.results[0].is_failure and not other.results[0].is_failure
    try:
        status, printed = cli(capsys, ["gateway", "revoke", GW, *s.files()])
        assert status == 0, printed
        me = f"local:{pwd.getpwuid(os.getuid()).pw_name}"
        assert f"who={me} action=gateway.revoke target={GW} result=ok" in printed  # the stderr audit line
        # mosquitto 2.0 re-checks connected clients on SIGHUP and drops those whose account is gone.
        wait_for(lambda: gw.gone, 5)
        gw.client.loop_stop()
        refused = connect(s.broker, settings)
        refused.client.loop_stop()
        assert refused.results[0].is_failure, refused.results  # not authorised
        # The other gateway kept its connection and still publishes.
        publish(other, topics.topic(OTHER, Channel.READINGS), b"still here")
        wait_for(lambda: watcher.got(topics.topic(OTHER, Channel.READINGS), b"still here"), 5)
        assert not other.gone
        assert s.broker.child.pid == pid
        # Idempotent: a second revoke has nothing to do, and says so.
        status, printed = cli(capsys, ["gateway", "revoke", GW, *s.files()])
        assert status == 1 and f"gateway {GW} has no broker account" in printed
    finally:
        other.stop()
        watcher.stop()
    log = AuditLog(s.audit)
    try:
        entries = list(reversed(log.entries(10)))
        assert log.verify() == (len(entries), None)
    finally:
        log.close()
    assert [(e.who, e.action, e.target, e.result, e.address) for e in entries] == [
        (me, "gateway.provision", GW, "ok", "local"), (me, "gateway.revoke", GW, "ok", "local"),
        (me, "gateway.revoke", GW, "not found", "local")]


def test_adding_again_replaces_the_password(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    s = setup
    assert cli(capsys, s.add_args())[0] == 0
    old = mqtt_settings(load_config(installed(s)))
    connected = connect(s.broker, old)
    assert not connected.results[0].is_failure
    status, printed = cli(capsys, s.add_args())
    assert status == 0 and "password replaced" in printed
    wait_for(lambda: connected.gone, 5)  # on reload mosquitto also drops a client whose password changed
    connected.client.loop_stop()
    new = mqtt_settings(load_config(installed(s)))
    assert new.password != old.password
    assert [line.split(":")[0] for line in s.passwd.read_text().splitlines()].count(GW) == 1
    refused = connect(s.broker, old)
    refused.client.loop_stop()
    assert refused.results[0].is_failure
    ok = connect(s.broker, new)
    assert not ok.results[0].is_failure
    ok.stop()


def _unchanged(s: Setup, before: bytes, gateway: str = GW) -> None:
    assert s.passwd.read_bytes() == before
    assert not (s.out / gateway).exists()


@pytest.mark.parametrize(("gateway", "message"), [
    ("gw-nope", "no gateway gw-nope in the registry"),
    ("ingest", "ingest is a service account, not a gateway"),
])
def test_a_gateway_that_may_not_have_an_account_is_refused(
        setup: Setup, capsys: pytest.CaptureFixture[str], gateway: str, message: str) -> None:
    before = setup.passwd.read_bytes()
    status, printed = cli(capsys, setup.add_args(gateway))
    assert status == 2 and message in printed
    assert f"action=gateway.provision target={gateway} result=" in printed  # the refusal is audited too
    _unchanged(setup, before, gateway)


def test_missing_or_stale_pid_file_changes_nothing(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    s = setup
    before = s.passwd.read_bytes()
    s.pid_file.unlink()
    status, printed = cli(capsys, s.add_args())
    assert status == 2 and "could not be told to reload" in printed and "nothing was changed" in printed
    _unchanged(s, before)
    dead = subprocess.Popen(["true"])  # a pid that no longer runs
    dead.wait()
    s.pid_file.write_text(f"{dead.pid}\n")
    status, printed = cli(capsys, s.add_args())
    assert status == 2 and "No such process" in printed
    _unchanged(s, before)
    assert cli(capsys, ["gateway", "revoke", OTHER, *s.files()])[0] == 2  # revoke checks it first too
    assert s.passwd.read_bytes() == before


def test_missing_ports_or_network_server_change_nothing(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    s = setup
    before = s.passwd.read_bytes()
    status, printed = cli(capsys, s.add_args(ports=("lora=/dev/ttyUSB0",)))
    assert status == 2 and "--port rg15=/dev/..." in printed
    _unchanged(s, before)
    status, printed = cli(capsys, s.add_args(ports=("lora=/dev/ttyUSB0", "rg15=/dev/ttyAMA0", "rg16=/dev/ttyS1")))
    assert status == 2 and "no device of it uses port(s) rg16" in printed
    _unchanged(s, before)
    status, printed = cli(capsys, s.add_args(ns=False))
    assert status == 2 and "lorawan devices" in printed and "--network-server" in printed
    _unchanged(s, before)


def test_an_unwritable_password_file_changes_nothing(setup: Setup, tmp_path: Path) -> None:
    s = setup
    ro = tmp_path / "ro"
    ro.mkdir()
    passwd = ro / "passwd"
    shutil.copy(s.passwd, passwd)
    before = passwd.read_bytes()
    argv = [sys.executable, "-m", "smartcity.cli", *s.add_args()]
    argv[argv.index(str(s.passwd))] = str(passwd)
    # root writes anything: run the CLI without the capability that lets it (file modes then apply to it too).
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []
    if prefix and shutil.which("setpriv") is None:
        pytest.fail("running as root without setpriv, so file modes would not bind the CLI: run scripts/bootstrap "
                    "(apt-get install util-linux)")
    passwd.chmod(0o444)
    ro.chmod(0o555)
    try:
        done = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    finally:
        ro.chmod(0o755)
        passwd.chmod(0o600)
    assert passwd.read_bytes() == before
    assert not (s.out / GW).exists()
    assert list(ro.iterdir()) == [passwd]  # no temporary or lock file left behind
    assert done.returncode == 2, done.stderr
    assert "is not writable" in done.stderr and "nothing was changed" in done.stderr


def test_a_password_file_that_fails_at_the_last_step_leaves_no_gateway_files(
        setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    s = setup
    before = s.passwd.read_bytes()
    # Writable (the check before passes) but its lock cannot be taken: the gateway's files, already staged, go.
    lock = s.passwd.with_name(f".{s.passwd.name}.lock")
    lock.mkdir()
    status, printed = cli(capsys, s.add_args())
    assert status == 2 and "cannot be locked" in printed and "nothing was changed" in printed
    _unchanged(s, before)
    s.out.mkdir(exist_ok=True)
    (s.out / GW).mkdir()  # a directory that was there stays, empty: only what this run made goes
    assert cli(capsys, s.add_args())[0] == 2
    assert list((s.out / GW).iterdir()) == []
