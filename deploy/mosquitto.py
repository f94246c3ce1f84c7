"""The broker: mosquitto's configuration and ACL policy, and running it on loopback for the demo and tests.

The durability settings are written by one function, `durability_settings`, so the demo, the test
fixtures and the production sample (deploy/samples/mosquitto.conf, checked by a test) cannot drift.

The platform's broker has no anonymous listener: every listener takes the password file and the ACL,
and refuses anonymous clients. Optionally a second listener speaks TLS with the deployment's server
certificate (deploy/certificates.py); its security settings are then the listener's own
(``per_listener_settings true``), each listener naming the same password file and ACL. Anonymous
open-data consumers of the SensorThings MQTT extension have a broker of their own, fed by a bridge
(deploy/mosquitto_open_data.py): mosquitto's client ids are broker-wide, so an anonymous client on
this broker could take over a gateway's or a service's id.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from deploy.certificates import BrokerCerts
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
    There is no write grant at all: only the sta-mqtt account, on the platform's broker, writes
    these topics (the bridge copies them in). A client that gives a user name here gets no grant
    either (the file has no user blocks), so it reads nothing: the listener is for anonymous reading.
    """
    return ("# generated by smartcity: the SensorThings MQTT extension's open-data listener\n"
            f"topic read {STA_TOPIC_ROOT}/#\n")


# Connections the open-data listener takes at most: anonymous clients must not exhaust the broker's
# descriptors, which the gateways and services need.
DEFAULT_OPEN_DATA_MAX_CONNECTIONS = 1000


@dataclass(frozen=True, slots=True)
class OpenDataListener:
    """The anonymous read-only listener of the SensorThings MQTT extension, on the open-data broker.

    Only the open-data broker (deploy/mosquitto_open_data.py) has it, never the platform's: client
    ids are broker-wide in mosquitto 2.0, so an anonymous client with the id of a platform client
    (a gateway's, an ingest worker's) would disconnect it and, with a clean start, end its session
    and the QoS 1 messages queued in it. On a broker of its own, anonymous clients share ids only
    with each other and with the bridge (whose id is random).
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


# The oldest TLS a listener accepts: 1.0 and 1.1 are deprecated (RFC 8996).
MIN_TLS_VERSION = "tlsv1.2"


@dataclass(frozen=True, slots=True)
class TlsListener:
    """The broker's TLS listener: its port and the deployment's certificates (deploy/certificates.py)."""

    port: int
    certs: BrokerCerts


def _auth_settings(password_file: Path, acl_file: Path) -> list[str]:
    return ["allow_anonymous false", f"password_file {password_file}", f"acl_file {acl_file}"]


def tls_listener_settings(listener: TlsListener, host: str, password_file: Path, acl_file: Path) -> list[str]:
    """The TLS listener block: the same password file and ACL as the plain listener, TLS 1.2 at least."""
    return [
        f"listener {listener.port} {host}",
        *_auth_settings(password_file, acl_file),
        # cafile is for client certificates; none is required (require_certificate stays false):
        # clients log in with their password, over a connection that verified the broker.
        f"cafile {listener.certs.ca_cert}",
        f"certfile {listener.certs.server_cert}",
        f"keyfile {listener.certs.server_key}",
        f"tls_version {MIN_TLS_VERSION}",
    ]


def broker_config(*, host: str, port: int, password_file: Path, acl_file: Path, persistence_dir: Path,
                  max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
                  autosave_seconds: int = DEFAULT_AUTOSAVE_SECONDS,
                  tls: TlsListener | None = None) -> str:
    """A complete mosquitto.conf for one loopback listener with password auth and ACLs, and optionally TLS.

    With tls, a second listener speaks TLS. Security settings are then per listener (mosquitto 2.0
    ``per_listener_settings true``): each listener names its own allow_anonymous, password file and
    ACL, placed after its ``listener`` line, so neither is ever open to anonymous clients.
    """
    lines = ["per_listener_settings true"] if tls is not None else []
    lines += [f"listener {port} {host}", *_auth_settings(password_file, acl_file)]
    if tls is not None:
        lines += tls_listener_settings(tls, host, password_file, acl_file)
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
    # The anonymous SensorThings listener: only the open-data broker (deploy/mosquitto_open_data.py) has one.
    open_data_port: int | None = None
    tls_port: int | None = None  # the TLS listener, if started with one
    tls_ca: Path | None = None  # the CA that issued its certificate: what clients are given to trust

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
            return _answers_probe(sock)
    except OSError:
        return False


def _answers_probe(sock: socket.socket) -> bool:
    sock.sendall(_PROBE)
    return sock.recv(4)[:1] == b"\x20"  # CONNACK


def tls_listening(host: str, port: int, ca_file: Path) -> bool:
    """True once mosquitto answers on port over TLS with a certificate that ca_file's CA issued.

    The host name is not checked here (the caller may probe by an address the certificate does
    not name); clients check it.
    """
    context = ssl.create_default_context(cafile=str(ca_file))
    context.check_hostname = False
    try:
        with socket.create_connection((host, port), timeout=0.5) as raw, \
                context.wrap_socket(raw, server_hostname=host) as sock:
            return _answers_probe(sock)
    except OSError:  # ssl.SSLError is one
        return False


def broker_ready(broker: Broker) -> bool:
    """True once every listener of broker answers (the TLS one over TLS)."""
    ports = [broker.port]
    if broker.open_data_port is not None and broker.open_data_port != broker.port:
        ports.append(broker.open_data_port)
    if not all_listening(broker.host, ports):
        return False
    if broker.tls_port is None or broker.tls_ca is None:
        return True
    return tls_listening(broker.host, broker.tls_port, broker.tls_ca)


def write_accounts(conf_dir: Path, users: dict[str, str], acl_text: str) -> tuple[Path, Path]:
    """A broker's password file (users: name -> password, hashed by mosquitto_passwd) and ACL file, both
    0600, in conf_dir (created): their paths."""
    passwd_tool = find_binary("mosquitto_passwd", "apt-get install mosquitto")
    conf_dir.mkdir(parents=True, exist_ok=True)
    passwd = conf_dir / "passwd"
    passwd.write_text("")
    passwd.chmod(0o600)
    for user, password in users.items():
        subprocess.run([passwd_tool, "-b", str(passwd), user, password], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    acl = conf_dir / "acl"
    acl.write_text(acl_text)
    acl.chmod(0o600)
    return passwd, acl


def start_mosquitto(state_dir: Path, users: dict[str, str], *, port: int | None = None,
                    host: str = "127.0.0.1", timeout: float = 10.0,
                    max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES, tls: BrokerCerts | None = None,
                    tls_port: int | None = None, extra_acl: str = "") -> Broker:
    """Start mosquitto on loopback with password auth; users maps name -> password.

    extra_acl is appended to the ACL file: the site bridges' stanzas (deploy/mosquitto_sites.py bridge_acl).

    tls (deploy/certificates.py ensure_broker_certs) adds a TLS listener, on tls_port or a free one,
    with the same accounts and ACL. Started again on the same state_dir and ports, it resumes from
    its persistence file.
    """
    if tls_port is not None and tls is None:
        raise ValueError("tls_port needs tls: the broker's certificates (deploy/certificates.py)")
    binary = find_binary("mosquitto", "apt-get install mosquitto (scripts/demo and scripts/test do this)")
    conf_dir = state_dir / "mosquitto"
    passwd, acl = write_accounts(conf_dir, users, acl_policy(u for u in users if u in SERVICE_GRANTS)
                                 + (f"\n{extra_acl}" if extra_acl else ""))
    conf = conf_dir / "mosquitto.conf"
    for attempt in range(1, PORT_ATTEMPTS + 1):
        chosen = port or free_port(host)
        listener = None
        if tls is not None:
            listener = TlsListener(tls_port or _other_free_port(host, chosen), tls)
        conf.write_text(broker_config(host=host, port=chosen, password_file=passwd, acl_file=acl,
                                      persistence_dir=conf_dir, max_queued_bytes=max_queued_bytes, tls=listener))
        child = spawn("mosquitto", [binary, "-c", str(conf)], conf_dir / "mosquitto.log")
        broker = Broker(host, chosen, users, child, conf, tls_port=listener.port if listener else None,
                        tls_ca=tls.ca_cert if tls else None)
        try:
            wait_until(child, partial(broker_ready, broker), timeout)
            break
        except ServiceError:
            # A free port can be taken by another process before mosquitto binds it (as influxd met
            # in CI): with ports of our choosing, choose again. Ports the caller gave are kept.
            chose_all = port is None and (listener is None or tls_port is None)
            if not chose_all or "in use" not in child.log_tail() or attempt == PORT_ATTEMPTS:
                raise
            log.warning("mosquitto: a chosen port (%s, TLS %s) was taken before it bound; choosing again",
                        chosen, broker.tls_port)
    log.info("mosquitto pid %d listening on %s:%d%s", child.pid, host, chosen,
             f", TLS on {listener.port}" if listener else "")
    return broker


def _other_free_port(host: str, taken: int) -> int:
    """A free port that is not taken (free_port may hand out the same port twice before either binds)."""
    while True:
        candidate = free_port(host)
        if candidate != taken:
            return candidate


def restart_spec(broker: Broker, timeout: float = 10.0) -> ChildSpec:
    """How a supervisor (deploy/supervisor.py) starts this running broker again after it died.

    The same config file, so the same ports (the TLS one too, with the certificate files as they are
    now), ACL and persistence directory (it resumes from its store) and the password file as it is
    now, with the gateways provisioned since the first start (it is not rewritten from the users
    given then). Ready once every listener answers (the TLS one over TLS); broker.child follows the
    new process. Works for the open-data broker (deploy/mosquitto_open_data.py) too.
    """
    if broker.config_path is None:
        raise ServiceError(f"{broker.child.name}: no config file to restart it with")
    binary = find_binary("mosquitto", "apt-get install mosquitto (scripts/demo and scripts/test do this)")

    def started(child: ChildProcess) -> None:
        broker.child = child

    return ChildSpec(broker.child.name, [binary, "-c", str(broker.config_path)], broker.child.log_path,
                     ready=partial(broker_ready, broker), ready_timeout=timeout, on_start=started)
