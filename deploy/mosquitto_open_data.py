"""The open-data broker: a mosquitto of its own for anonymous SensorThings consumers, fed by a bridge.

The platform's broker (deploy/mosquitto.py) has no anonymous listener: mosquitto 2.0 has one
client id space per broker, so an anonymous client there that connected with a gateway's or an
ingest worker's id would disconnect it, and with a clean start end its session. A broker of its
own keeps anonymous clients among themselves. Its one link to the platform is a bridge that logs
in to the platform's broker as sta-bridge (read v1.1/# only) and copies the v1.1/ topics in, at
QoS 0, over the platform's TLS listener when asked (``tls=True``). The bridge's local client id is
random: an anonymous client that took it would cut the feed (until the bridge reconnects), never
the platform.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from deploy.mosquitto import (
    STA_BRIDGE_USER,
    STA_TOPIC_ROOT,
    Broker,
    OpenDataListener,
    all_listening,
    open_data_acl,
    open_data_listener_settings,
)
from deploy.processes import find_binary, free_port, spawn, wait_until

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BridgeTarget:
    """The platform's broker as the bridge reaches it."""

    host: str
    port: int
    password: str  # of the sta-bridge account
    tls_ca: str | None = None  # the platform's CA, when the bridge goes over TLS


def open_data_broker_config(listener: OpenDataListener, platform: BridgeTarget, local_clientid: str) -> str:
    """mosquitto.conf of the open-data broker: the anonymous listener and the bridge that feeds it."""
    lines = [
        *open_data_listener_settings(listener),
        # Nothing worth keeping: QoS 0 only, and anonymous sessions must not pile up on disk.
        "persistence false",
        "set_tcp_nodelay true",
        "connection smartcity-platform",
        f"address {platform.host}:{platform.port}",
        # bridge_insecure stays false: the bridge checks that the certificate names platform.host.
        *([f"bridge_cafile {platform.tls_ca}", "bridge_tls_version tlsv1.2"] if platform.tls_ca else []),
        f"remote_username {STA_BRIDGE_USER}",
        f"remote_password {platform.password}",
        f"remote_clientid {local_clientid}",
        f"local_clientid {local_clientid}",
        "bridge_protocol_version mqttv50",
        "cleansession true",  # what was published while the bridge was down is not replayed
        "try_private false",
        # The bridge's state messages would be refused by the platform's ACL, and mosquitto 2.0 drops a
        # connection whose publish is refused: with notifications on, the bridge never stays up.
        "notifications false",
        f"topic {STA_TOPIC_ROOT}/# in 0",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    return "\n".join(lines) + "\n"


def start_open_data_broker(state_dir: Path, platform: Broker, *, port: int | None = None,
                           host: str = "127.0.0.1", timeout: float = 10.0, tls: bool = False) -> Broker:
    """Start the open-data broker on loopback, bridged to platform (whose users must include sta-bridge).

    With tls the bridge uses the platform's TLS listener and verifies it against platform.tls_ca (the
    certificate must name platform.host). The bridge connects within moments of the start; what
    sta-mqtt publishes before that is not forwarded (QoS 0 live data).
    """
    if tls and (platform.tls_port is None or platform.tls_ca is None):
        raise ValueError("tls: the platform's broker has no TLS listener (start_mosquitto tls=...)")
    binary = find_binary("mosquitto", "apt-get install mosquitto (scripts/demo and scripts/test do this)")
    conf_dir = state_dir / "mosquitto-open-data"
    conf_dir.mkdir(parents=True, exist_ok=True)
    acl = conf_dir / "acl"
    acl.write_text(open_data_acl())
    acl.chmod(0o600)
    chosen = port or free_port(host)
    conf = conf_dir / "mosquitto.conf"
    password = platform.users[STA_BRIDGE_USER]
    if tls and platform.tls_port is not None:
        target = BridgeTarget(platform.host, platform.tls_port, password, str(platform.tls_ca))
    else:
        target = BridgeTarget(platform.host, platform.port, password)
    conf.write_text(open_data_broker_config(OpenDataListener(chosen, acl, host), target,
                                            f"smartcity-open-data-{secrets.token_hex(8)}"))
    conf.chmod(0o600)  # it holds the bridge's password
    child = spawn("mosquitto-open-data", [binary, "-c", str(conf)], conf_dir / "mosquitto.log")
    wait_until(child, partial(all_listening, host, [chosen]), timeout)
    log.info("open-data mosquitto pid %d listening on %s:%d, bridged to %s:%d%s", child.pid, host, chosen,
             target.host, target.port, " over TLS" if target.tls_ca else "")
    return Broker(host, chosen, {}, child, conf, chosen)
