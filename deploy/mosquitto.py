"""The broker: mosquitto's configuration and ACL policy, and running it on loopback for the demo and tests.

The durability settings are written by one function, `durability_settings`, so the demo, the test
fixtures and the production sample (deploy/samples/mosquitto.conf, checked by a test) cannot drift.

Optionally a second listener serves open-data consumers of the SensorThings MQTT extension
(api/sta_mqtt): anonymous, on a port of its own, its ACL admitting only reading ``v1.1/#``. Its
settings are the listener's own (``per_listener_settings true``), so the platform's listener keeps
its password file, ACL and refusal of anonymous clients exactly as without it.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from deploy.processes import ChildProcess, ServiceError, find_binary, free_port, spawn, wait_until
from deploy.supervisor import ChildSpec

log = logging.getLogger(__name__)

# A client (say an ingest worker that is down) may have this much queued before mosquitto drops
# new QoS 1 messages for it. max_queued_messages is 0 (unlimited) so that bytes are the one bound.
DEFAULT_MAX_QUEUED_BYTES = 256 * 1024 * 1024
# Seconds between saves of the persistent store (queued QoS 1 messages, sessions, retained).
# mosquitto rewrites the whole store on every save, so saving on every change would make a large
# backlog quadratic; one second bounds what a broker crash can lose to the last second.
DEFAULT_AUTOSAVE_SECONDS = 1


def durability_settings(max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
                        autosave_seconds: int = DEFAULT_AUTOSAVE_SECONDS) -> list[str]:
    """The config lines that keep QoS 1 messages: no silent queue drops, prompt saves, no Nagle delay."""
    return [
        "persistence true",
        # autosave_on_changes false: autosave_interval counts seconds (true would make it count changes).
        "autosave_on_changes false",
        f"autosave_interval {autosave_seconds}",
        # The default of 1000 silently drops QoS 1 messages for a subscriber that falls behind.
        "max_queued_messages 0",
        f"max_queued_bytes {max_queued_bytes}",
        "max_inflight_messages 100",
        # Without it Nagle's algorithm adds 10-40 ms to every small packet (commands, PUBACKs).
        "set_tcp_nodelay true",
    ]


# The LoRaWAN network server's accounts, for a setup on one machine (the demo, the end-to-end
# tests) where its MQTT integration shares the platform's broker. Production uses the network
# server's own broker (ChirpStack's mosquitto, The Things Stack's MQTT server) with accounts of
# its own: there the platform's broker has neither of these users.
NETWORK_SERVER_USER = "network-server"  # the (simulated) ChirpStack v4 or The Things Stack v3
NS_BRIDGE_USER = "ns-bridge"  # the edge agents' network-server bridges (edge/ns_bridge.py)
# The SensorThings MQTT publisher (api/sta_mqtt): the only account that may write the open-data topics,
# so what an anonymous consumer reads under v1.1/ comes from the platform and nobody else.
STA_MQTT_USER = "sta-mqtt"
STA_TOPIC_ROOT = "v1.1"  # OGC 18-088 section 14: topics are SERVICE_VERSION/RESOURCE_PATH
STA_BRIDGE_USER = "sta-bridge"  # the open-data broker's bridge into this one: reads v1.1/# only

# What each service account may do (mosquitto ACL "topic" lines); a user not listed gets nothing.
SERVICE_GRANTS: dict[str, tuple[str, ...]] = {
    "ingest": ("read smartcity/v1/gw/+/readings", "read smartcity/v1/gw/+/status",
               "read smartcity/v1/gw/+/commands", "read smartcity/v1/gw/+/acks"),
    "rules": ("read smartcity/v1/gw/+/readings", "write smartcity/v1/gw/+/commands",
              "read smartcity/v1/gw/+/acks"),
    "operator": ("readwrite smartcity/#",),
    # The API sends operators' manual commands and reads their acks; it reads no readings.
    "api": ("write smartcity/v1/gw/+/commands", "read smartcity/v1/gw/+/acks"),
    # It reads the readings through a share group of its own and republishes the public ones.
    STA_MQTT_USER: ("read smartcity/v1/gw/+/readings", f"write {STA_TOPIC_ROOT}/#"),
    # The bridge of the open-data broker (deploy/mosquitto_open_data.py) takes what sta-mqtt publishes.
    STA_BRIDGE_USER: (f"read {STA_TOPIC_ROOT}/#",),
    # The server owns its integration's tree: it publishes uplinks and events, reads downlinks.
    NETWORK_SERVER_USER: ("readwrite application/#", "readwrite v3/#"),
    # A bridge reads uplinks and joins and sends downlinks, nothing else: it cannot forge an
    # uplink (that would bypass the server's MIC check) nor touch the platform's topics.
    NS_BRIDGE_USER: (
        "read application/+/device/+/event/#",  # ChirpStack v4: up, join, ack, ...
        "write application/+/device/+/command/down",
        "read v3/+/devices/+/up",  # The Things Stack v3
        "read v3/+/devices/+/join",
        "write v3/+/devices/+/down/push",
        "write v3/+/devices/+/down/replace",
    ),
}


def acl_policy(service_users: Iterable[str]) -> str:
    """The ACL file: each gateway confined to its own topics, each service to the grants it needs."""
    # Gateways log in with their gateway id, and %u confines each to its own topics, so a
    # compromised cabinet cannot forge another gateway's readings or acks. (The patterns apply
    # to every account, so a service account has the topics of a "gateway" named like it, which
    # is in no registry: ingest refuses what arrives there.)
    lines = [
        "# generated by smartcity; gateways are confined to their own topics",
        "pattern write smartcity/v1/gw/%u/readings",
        "pattern write smartcity/v1/gw/%u/status",
        "pattern write smartcity/v1/gw/%u/acks",
        "pattern read smartcity/v1/gw/%u/commands",
        "",
    ]
    for user in service_users:
        lines.append(f"user {user}")
        lines.extend(f"topic {g}" for g in SERVICE_GRANTS.get(user, ()))
        lines.append("")
    return "\n".join(lines)


def open_data_acl() -> str:
    """The open-data listener's ACL: anonymous clients may read the SensorThings topics, nothing else.

    In a mosquitto ACL file the topic lines before any ``user`` line are the anonymous clients'.
    There is no write grant at all: only the sta-mqtt account, on the platform's listener, writes
    these topics. A client that gives a user name here gets no grant either (the file has no user
    blocks), so it reads nothing: the listener is for anonymous reading only.
    """
    return ("# generated by smartcity: the SensorThings MQTT extension's open-data listener\n"
            f"topic read {STA_TOPIC_ROOT}/#\n")


# Connections the open-data listener takes at most: anonymous clients must not exhaust the broker's
# descriptors, which the gateways and services need.
DEFAULT_OPEN_DATA_MAX_CONNECTIONS = 1000


@dataclass(frozen=True, slots=True)
class OpenDataListener:
    """The anonymous read-only listener of the SensorThings MQTT extension.

    Known limit (mosquitto 2.0): client ids are broker-wide, not per listener, so an anonymous
    client that connects here with the id of a platform client (a gateway's, an ingest worker's)
    disconnects that client and, with a clean start, ends its session and the QoS 1 messages
    queued in it (tests/deploy/test_mosquitto_sta_listener.py pins this with a strict xfail). The
    listener is therefore on loopback; to serve the public, run the open-data listener on a broker
    of its own that a bridge feeds with v1.1/# from this one (deploy/mosquitto_open_data.py), so
    that anonymous clients share client ids only with each other.
    """

    port: int
    acl_file: Path
    host: str = "127.0.0.1"
    max_connections: int = DEFAULT_OPEN_DATA_MAX_CONNECTIONS


def open_data_listener_settings(listener: OpenDataListener) -> list[str]:
    """The listener block: anonymous, its own ACL, QoS 0 only, a connection bound."""
    return [
        f"listener {listener.port} {listener.host}",
        "allow_anonymous true",
        f"acl_file {listener.acl_file}",
        # QoS 0 only: a consumer cannot make the broker queue messages for it while it is away
        # (max_queued_messages is unlimited for the platform's sake), and nothing is acknowledged.
        "max_qos 0",
        f"max_connections {listener.max_connections}",
    ]


def broker_config(*, host: str, port: int, password_file: Path, acl_file: Path, persistence_dir: Path,
                  max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
                  autosave_seconds: int = DEFAULT_AUTOSAVE_SECONDS,
                  open_data: OpenDataListener | None = None) -> str:
    """A complete mosquitto.conf for one loopback listener with password auth and ACLs.

    With open_data, a second listener for anonymous SensorThings consumers. Security settings are
    then per listener (mosquitto 2.0 ``per_listener_settings true``): each listener names its own
    allow_anonymous, password file and ACL, placed after its ``listener`` line.
    """
    lines = ["per_listener_settings true"] if open_data is not None else []
    lines += [
        f"listener {port} {host}",
        "allow_anonymous false",
        f"password_file {password_file}",
        f"acl_file {acl_file}",
    ]
    if open_data is not None:
        lines += open_data_listener_settings(open_data)
    lines += [
        *durability_settings(max_queued_bytes, autosave_seconds),
        f"persistence_location {persistence_dir}/",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if os.geteuid() == 0:
        # Run as the invoking user (root in CI) so it can write the state directory it was given.
        lines.append("user root")
    return "\n".join(lines) + "\n"


@dataclass
class Broker:
    """A running mosquitto with password authentication and per-gateway ACLs."""

    host: str
    port: int
    users: dict[str, str] = field(repr=False)
    child: ChildProcess
    config_path: Path | None = None
    open_data_port: int | None = None  # the anonymous SensorThings listener, if started with one

    def stop(self) -> None:
        """Stop the broker."""
        self.child.stop()

    def kill(self) -> None:
        """SIGKILL the broker (fault tests): it saves nothing on the way down."""
        self.child.process.kill()
        self.child.process.wait(10)


# An MQTT 3.1.1 CONNECT without credentials (client id "probe"): mosquitto answers it with a
# CONNACK (refused: no anonymous access), which proves that mosquitto itself holds the port.
_PROBE = bytes([0x10, 17, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 5, 0, 5]) + b"probe"
PORT_ATTEMPTS = 3


def all_listening(host: str, ports: list[int]) -> bool:
    """True once mosquitto answers on every one of ports."""
    return all(_listening(host, p) for p in ports)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(_PROBE)
            return sock.recv(4)[:1] == b"\x20"  # CONNACK
    except OSError:
        return False


def start_mosquitto(state_dir: Path, users: dict[str, str], *, port: int | None = None,
                    host: str = "127.0.0.1", timeout: float = 10.0,
                    max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES, open_data: bool = False,
                    open_data_port: int | None = None) -> Broker:
    """Start mosquitto on loopback with password auth; users maps name -> password.

    open_data (or an open_data_port) adds the anonymous read-only SensorThings listener, on
    open_data_port or a free one. Started again on the same state_dir and ports, it resumes from
    its persistence file.
    """
    binary = find_binary("mosquitto", "apt-get install mosquitto (scripts/demo and scripts/test do this)")
    passwd_tool = find_binary("mosquitto_passwd", "apt-get install mosquitto")
    conf_dir = state_dir / "mosquitto"
    conf_dir.mkdir(parents=True, exist_ok=True)
    passwd = conf_dir / "passwd"
    passwd.write_text("")
    passwd.chmod(0o600)
    for user, password in users.items():
        subprocess.run([passwd_tool, "-b", str(passwd), user, password], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    acl = conf_dir / "acl"
    acl.write_text(acl_policy(u for u in users if u in SERVICE_GRANTS))
    acl.chmod(0o600)
    open_acl = conf_dir / "open-data.acl"
    open_data = open_data or open_data_port is not None
    if open_data:
        open_acl.write_text(open_data_acl())
        open_acl.chmod(0o600)
    conf = conf_dir / "mosquitto.conf"
    for attempt in range(1, PORT_ATTEMPTS + 1):
        chosen = port or free_port(host)
        listener = None
        if open_data:
            listener = OpenDataListener(open_data_port or _other_free_port(host, chosen), open_acl, host)
        conf.write_text(broker_config(host=host, port=chosen, password_file=passwd, acl_file=acl,
                                      persistence_dir=conf_dir, max_queued_bytes=max_queued_bytes,
                                      open_data=listener))
        child = spawn("mosquitto", [binary, "-c", str(conf)], conf_dir / "mosquitto.log")
        ports = [chosen] if listener is None else [chosen, listener.port]
        try:
            wait_until(child, partial(all_listening, host, ports), timeout)
            break
        except ServiceError:
            # A free port can be taken by another process before mosquitto binds it (as influxd met
            # in CI): with ports of our choosing, choose again. Ports the caller gave are kept.
            chose_all = port is None and (listener is None or open_data_port is None)
            if not chose_all or "in use" not in child.log_tail() or attempt == PORT_ATTEMPTS:
                raise
            log.warning("mosquitto: a chosen port (%s) was taken before it bound; choosing again", ports)
    log.info("mosquitto pid %d listening on %s:%d%s", child.pid, host, chosen,
             f", open data on {listener.port}" if listener else "")
    return Broker(host, chosen, users, child, conf, listener.port if listener else None)


def _other_free_port(host: str, taken: int) -> int:
    """A free port that is not taken (free_port may hand out the same port twice before either binds)."""
    while True:
        candidate = free_port(host)
        if candidate != taken:
            return candidate


def restart_spec(broker: Broker, timeout: float = 10.0) -> ChildSpec:
    """How a supervisor (deploy/supervisor.py) starts this running broker again after it died.

    The same config file, so the same ports, ACL and persistence directory (it resumes from its store)
    and the password file as it is now, with the gateways provisioned since the first start (it is
    not rewritten from the users given then). Ready once every listener answers; broker.child follows
    the new process. Works for the open-data broker (deploy/mosquitto_open_data.py) too.
    """
    if broker.config_path is None:
        raise ServiceError(f"{broker.child.name}: no config file to restart it with")
    binary = find_binary("mosquitto", "apt-get install mosquitto (scripts/demo and scripts/test do this)")
    ports = [broker.port]
    if broker.open_data_port is not None and broker.open_data_port != broker.port:
        ports.append(broker.open_data_port)

    def started(child: ChildProcess) -> None:
        broker.child = child

    return ChildSpec(broker.child.name, [binary, "-c", str(broker.config_path)], broker.child.log_path,
                     ready=partial(all_listening, broker.host, ports), ready_timeout=timeout, on_start=started)
