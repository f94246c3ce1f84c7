"""Site brokers: one mosquitto per municipality (gemeente) for its gateways, bridged to the central broker.

A site broker has the platform broker's listener settings (password file, gateway ACL, durability:
persistence, autosave, unbounded message count with a byte bound, TCP_NODELAY; deploy/mosquitto.py
writes them) and one bridge, hosted on the site broker because the outbound connection is what a
site's firewall allows. The bridge is MQTT 3.1.1 (mosquitto 2.0.11's bridge is best tested there),
QoS 1 both ways, ``cleansession false`` with a fixed client id, so that:

- uplinks published while the link is down are queued in the site broker (persisted) and delivered
  when it is back;
- commands published on the central broker while the link is down are queued in the bridge's
  session there and delivered when it is back.

The topic scheme (core/topics.py) has no gemeente level (``smartcity/v1/gw/<gateway>/<channel>``), so
the bridge names each of the site's gateways' topics exactly; its central account's ACL grants exactly
those topics. A gateway added to a site needs the site's bridge config and the central ACL rewritten
(docs/multi-site.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from core.topics import Channel, check_id, topic
from deploy.mosquitto import Broker, acl_policy, all_listening, broker_config, write_accounts
from deploy.processes import find_binary, free_port, spawn, wait_until

log = logging.getLogger(__name__)

UPLINKS = tuple(c for c in Channel if c is not Channel.COMMANDS)  # readings, status, acks
DOWNLINKS = (Channel.COMMANDS,)
# Seconds between reconnect attempts of the bridge (mosquitto's restart_timeout base and cap).
RESTART_BASE, RESTART_CAP = 1, 5


@dataclass(frozen=True, slots=True)
class Site:
    """A municipality's site: its gemeente code (e.g. GM0626) and the gateways its broker serves."""

    gemeente: str
    gateways: tuple[str, ...]

    def __post_init__(self) -> None:
        check_id(self.gemeente, "gemeente")
        for gw in self.gateways:
            check_id(gw, "gateway")
        if not self.gateways:
            raise ValueError(f"site {self.gemeente}: no gateways")

    @property
    def bridge_user(self) -> str:
        """The bridge's account on the central broker (and its fixed client id there)."""
        return f"bridge-{self.gemeente.lower()}"


def bridge_topics(site: Site) -> list[tuple[str, str]]:
    """(topic, direction) pairs the bridge carries: the site's gateways' uplinks out, their commands in."""
    out = [(topic(gw, c), "out") for gw in site.gateways for c in UPLINKS]
    return out + [(topic(gw, c), "in") for gw in site.gateways for c in DOWNLINKS]


def bridge_acl(sites: Iterable[Site]) -> str:
    """ACL stanzas for the central broker: each bridge may write its gateways' uplinks, read their commands."""
    lines: list[str] = []
    for site in sites:
        lines.append(f"user {site.bridge_user}")
        for name, direction in bridge_topics(site):
            lines.append(f"topic {'write' if direction == 'out' else 'read'} {name}")
        lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Central:
    """The central broker as a bridge reaches it."""

    host: str
    port: int
    password: str  # of the site's bridge account
    tls_ca: str | None = None  # the central broker's CA, when the bridge goes over TLS


def bridge_settings(site: Site, central: Central, *, clean_session: bool = False) -> list[str]:
    """The bridge block of a site broker's mosquitto.conf."""
    lines = [
        f"connection central-{site.gemeente.lower()}",
        f"address {central.host}:{central.port}",
        *([f"bridge_cafile {central.tls_ca}", "bridge_tls_version tlsv1.2"] if central.tls_ca else []),
        f"remote_username {site.bridge_user}",
        f"remote_password {central.password}",
        # Fixed ids: the central broker keeps the bridge's session (its queued commands) under
        # remote_clientid, the site broker its queued uplinks under local_clientid.
        f"remote_clientid {site.bridge_user}",
        f"local_clientid {site.bridge_user}-local",
        "bridge_protocol_version mqttv311",
        f"cleansession {'true' if clean_session else 'false'}",
        # Not a private bridge: the central ACL would have to grant the bridge's loop-detection topics.
        "try_private false",
        # The state messages ($SYS/broker/connection/...) would be refused by the central ACL, and
        # mosquitto 2.0 drops a connection whose publish is refused.
        "notifications false",
        "start_type automatic",
        f"restart_timeout {RESTART_BASE} {RESTART_CAP}",
        "keepalive_interval 10",
        "bridge_attempt_unsubscribe false",
    ]
    lines += [f"topic {name} {direction} 1" for name, direction in bridge_topics(site)]
    return lines


def site_broker_config(site: Site, central: Central, *, host: str, port: int, password_file: Path,
                       acl_file: Path, persistence_dir: Path, clean_session: bool = False) -> str:
    """A complete site broker mosquitto.conf: the platform's listener and durability, and the bridge."""
    base = broker_config(host=host, port=port, password_file=password_file, acl_file=acl_file,
                         persistence_dir=persistence_dir)
    return base + "\n".join(bridge_settings(site, central, clean_session=clean_session)) + "\n"


def start_site_broker(state_dir: Path, site: Site, users: dict[str, str], central: Central, *,
                      port: int | None = None, host: str = "127.0.0.1", timeout: float = 10.0,
                      clean_session: bool = False) -> Broker:
    """Start a site broker on loopback (users: its gateways' accounts), bridged to central.

    Started again on the same state_dir and port it resumes from its persistence file, with the
    uplinks queued for the bridge; after a crash, deploy/mosquitto.py restart_spec starts it again from
    its config file. clean_session=True exists only for the test that shows it loses them.
    """
    binary = find_binary("mosquitto", "apt-get install mosquitto (scripts/demo and scripts/test do this)")
    conf_dir = state_dir / f"mosquitto-{site.gemeente.lower()}"
    # Gateways confined to their own topics; no service on a site.
    passwd, acl = write_accounts(conf_dir, users, acl_policy(()))
    chosen = port or free_port(host)
    conf = conf_dir / "mosquitto.conf"
    conf.write_text(site_broker_config(site, central, host=host, port=chosen, password_file=passwd,
                                       acl_file=acl, persistence_dir=conf_dir, clean_session=clean_session))
    conf.chmod(0o600)  # it holds the bridge's password
    child = spawn(f"mosquitto-{site.gemeente.lower()}", [binary, "-c", str(conf)], conf_dir / "mosquitto.log")
    wait_until(child, partial(all_listening, host, [chosen]), timeout)
    log.info("site mosquitto %s pid %d on %s:%d, bridged to %s:%d", site.gemeente, child.pid, host, chosen,
             central.host, central.port)
    return Broker(host, chosen, users, child, conf)

