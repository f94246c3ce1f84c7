"""`smartcity gateway add|revoke|list`: a gateway's broker account and its edge config, without a broker restart.

    smartcity gateway add GW --registry R --broker-host H [--broker-port P] [--ca-file CA] --out-dir DIR
                             [--port NAME=PATH ...] [--lora-modem M] [--lora-keys FILE]
                             [--network-server chirpstack|tts --ns-host H --ns-application ID ...]
    smartcity gateway revoke GW
    smartcity gateway list [--registry R]
    (each with --password-file FILE --pid-file FILE [--audit AUDIT.sqlite])

``add`` generates a password, adds (or replaces) GW's line in mosquitto's password file, SIGHUPs
mosquitto (its pid file) and writes DIR/GW/gateway.toml (the edge agent's config: the registry's
devices of GW, the broker, user name GW, ``password_file = "mqtt-password"``) and DIR/GW/mqtt-password
(0600). The password is never printed. ``revoke`` removes the line and SIGHUPs: mosquitto 2 then
disconnects the gateway if it is connected and refuses it from then on.

The "ACL entry" is a pattern, not a line per gateway: the ACL file's ``pattern`` lines (deploy/mosquitto.py
``acl_policy``) let the account named GW write only smartcity/v1/gw/GW/{readings,status,acks} and read
only smartcity/v1/gw/GW/commands, so provisioning never edits the ACL file.

Every action, refused ones too, gives an audit line on stderr (the journal under systemd) with who (the
OS user), what and when, and with --audit is appended to the API's audit log (as `smartcity operator`
does: who ``local:USER``, address ``local``). Exit status: 0 done; 1 nothing to do (revoking a gateway
that has no account); 2 refused, nothing changed (unknown gateway, a service account, a port missing, the
password file not writable, the broker's pid file missing or stale); 3 the password file changed but the
broker could not be signalled (the message says how to finish).
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.registry import Registry, load
from deploy.broker_accounts import BrokerAccountError, BrokerAccounts
from deploy.gateway_config_file import PASSWORD_NAME, Hardware, build_config, render_checked, stage_files
from deploy.mosquitto import SERVICE_GRANTS
from deploy.processes import new_password
from edge.gateway_config import LORA_MODEMS, MQTT_PORT, MQTTS_PORT, MqttConfig, NetworkServerConfig
from edge.network_server import FLAVOURS

DONE, NOTHING, REFUSED, PARTIAL = 0, 1, 2, 3
PROG = "smartcity gateway"


ACL_NOTE = ("The ACL entry is a pattern, not a line per gateway: the ACL file's pattern lines let the account "
            "named GW write only smartcity/v1/gw/GW/{readings,status,acks} and read only smartcity/v1/gw/GW/commands, "
            "so no ACL edit is needed. Exit status: 0 done, 1 nothing to revoke, 2 refused (nothing changed), "
            "3 account changed but mosquitto not signalled.")


class RefusedError(Exception):
    """The action cannot be done; nothing was changed. The message says why."""


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the gateway subcommand."""
    parser.epilog = ACL_NOTE
    sub = parser.add_subparsers(dest="gateway_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="give a gateway a new broker password and write its config",
                         description="Give GW a new broker password (mosquitto's password file, then SIGHUP) and "
                                     "write OUT_DIR/GW/gateway.toml and OUT_DIR/GW/mqtt-password (0600); the "
                                     "password is never printed.", epilog=ACL_NOTE)
    revoke = sub.add_parser("revoke", help="remove a gateway's broker account")
    listing = sub.add_parser("list", help="the registry's gateways and which have a broker account")
    for p in (add, revoke):
        p.add_argument("gateway", metavar="GW", help="the gateway id (its MQTT user name)")
    for p in (add, listing):
        # Also after the action (the parent parser has it too; SUPPRESS keeps a value given there).
        p.add_argument("--registry", default=argparse.SUPPRESS, help="the asset registry (GeoJSON)")
    for p in (add, revoke, listing):
        p.add_argument("--password-file", type=Path,
                       default=Path(_env("SMARTCITY_MOSQUITTO_PASSWORD_FILE", "/etc/mosquitto/smartcity.passwd")),
                       help="mosquitto's password_file (default $SMARTCITY_MOSQUITTO_PASSWORD_FILE or "
                            "/etc/mosquitto/smartcity.passwd)")
        p.add_argument("--audit", type=Path, default=None, metavar="AUDIT_SQLITE",
                       help="also append to the API's audit log (its state dir's audit.sqlite)")
    for p in (add, revoke):
        p.add_argument("--pid-file", type=Path,
                       default=Path(_env("SMARTCITY_MOSQUITTO_PID_FILE", "/run/mosquitto/mosquitto.pid")),
                       help="mosquitto's pid file, to SIGHUP it (default $SMARTCITY_MOSQUITTO_PID_FILE or "
                            "/run/mosquitto/mosquitto.pid)")
    add.add_argument("--broker-host", required=True, help="the broker as the gateway reaches it")
    add.add_argument("--broker-port", type=int, default=None, help=f"default {MQTT_PORT}, {MQTTS_PORT} with --ca-file")
    add.add_argument("--ca-file", help="the CA file's path on the gateway (turns TLS on); not read here")
    add.add_argument("--out-dir", type=Path, required=True, help="writes OUT_DIR/GW/gateway.toml and mqtt-password")
    add.add_argument("--port", action="append", default=[], metavar="NAME=PATH",
                     help="the gateway's serial port for a port name: lora=/dev/ttyUSB0, rg15=/dev/ttyAMA0")
    add.add_argument("--lora-modem", choices=list(LORA_MODEMS), default="rn2483")
    add.add_argument("--lora-keys", default="lora-keys.json",
                     help="the LoRa key file's path on the gateway (relative: next to gateway.toml)")
    add.add_argument("--network-server", choices=FLAVOURS, help="the network server of its lorawan devices")
    add.add_argument("--ns-host")
    add.add_argument("--ns-port", type=int, default=None)
    add.add_argument("--ns-application", metavar="ID", help="ChirpStack application ID or TTS app@tenant")
    add.add_argument("--ns-downlink-fport", type=int, default=10)
    add.add_argument("--ns-username")
    add.add_argument("--ns-password-file", help="its path on the gateway (0600 there)")
    add.add_argument("--ns-ca-file", help="its path on the gateway")


def who() -> str:
    """The OS user running this (the real uid: $USER can say anything)."""
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        name = str(os.getuid())
    sudo = os.environ.get("SUDO_USER")
    return f"local:{name}" + (f" (sudo from {sudo})" if sudo and sudo != name else "")


class Auditor:
    """Writes each action's audit line to stderr and, when given, to the API's audit log."""

    def __init__(self, path: Path | None) -> None:
        self.who = who()
        self.log: Any = None
        if path is not None:
            # Imported here: the audit log's module is the API's (FastAPI), needed only with --audit.
            from api.operators.audit import AuditError, AuditLog  # noqa: PLC0415
            try:
                self.log = AuditLog(path)
            except AuditError as exc:
                raise RefusedError(f"{exc} (nothing was changed)") from None

    def __call__(self, action: str, target: str, result: str, detail: str = "") -> None:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        print(f"{PROG}: audit: {when} who={self.who} action={action} target={target} result={result}"
              + (f" detail={detail!r}" if detail else ""), file=sys.stderr, flush=True)
        if self.log is not None:
            from api.operators.audit import AuditError  # noqa: PLC0415
            try:
                self.log.append(self.who, action, target, result, address="local", detail=detail)
            except AuditError as exc:
                print(f"{PROG}: warning: not recorded in the audit log: {exc}", file=sys.stderr)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


def _registry(args: argparse.Namespace) -> Registry:
    try:
        return load(args.registry)
    except ConfigError as exc:
        raise RefusedError(f"registry: {exc}") from None


def _check_writable(path: Path) -> None:
    # Checked before anything is written, so that a failure leaves the gateway's files unwritten too.
    if not path.is_file():
        raise RefusedError(f"the broker's password file {path} does not exist (or is not a file)")
    for target, what in ((path, "password file"), (path.parent, "password file's directory")):
        if not os.access(target, os.W_OK):
            raise RefusedError(f"the broker's {what} {target} is not writable by {who()} (run it as the file's owner)")


def _hardware(args: argparse.Namespace) -> Hardware:
    ports: dict[str, str] = {}
    for item in args.port:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise RefusedError(f"--port must be NAME=PATH: {item!r}")
        ports[name] = path
    ns = None
    if args.network_server:
        if not args.ns_host or not args.ns_application:
            raise RefusedError("--network-server needs --ns-host HOST and --ns-application ID")
        tls = args.ns_ca_file is not None
        ns = NetworkServerConfig(args.network_server, args.ns_host, args.ns_application, args.ns_downlink_fport,
                                 args.ns_port or (MQTTS_PORT if tls else MQTT_PORT), args.ns_username,
                                 Path(args.ns_password_file) if args.ns_password_file else None,
                                 Path(args.ns_ca_file) if tls else None)
    return Hardware(ports, args.lora_modem, args.lora_keys, ns)


def _check_gateway(audit: Auditor, action: str, gateway: str, registry: Registry | None) -> None:
    if gateway in SERVICE_GRANTS:
        audit(action, gateway, "refused", "a service account")
        raise RefusedError(f"{gateway} is a service account, not a gateway")
    if registry is not None and gateway not in registry.gateways:
        audit(action, gateway, "not found")
        raise RefusedError(f"no gateway {gateway} in the registry {_known(registry)}")


def _known(registry: Registry) -> str:
    return f"({len(registry.gateways)} gateways: {', '.join(sorted(registry.gateways)) or 'none'})"


def _accounts(args: argparse.Namespace, audit: Auditor, action: str) -> tuple[BrokerAccounts, int]:
    accounts = BrokerAccounts(args.password_file, args.pid_file)
    try:
        _check_writable(args.password_file)
        pid = accounts.broker_pid()
    except (RefusedError, BrokerAccountError) as exc:
        audit(action, args.gateway, "failed", str(exc)[:150])
        detail = f" (pid file {args.pid_file})" if isinstance(exc, BrokerAccountError) else ""
        raise RefusedError(f"{exc}{detail}; nothing was changed") from None
    return accounts, pid


def _reload(accounts: BrokerAccounts, audit: Auditor, action: str, gateway: str, pid: int) -> int:
    try:
        accounts.reload_broker()
    except BrokerAccountError as exc:
        audit(action, gateway, "partial", "account changed, broker not reloaded")
        print(f"{PROG}: {exc}: the password file was changed but mosquitto (pid {pid}) was not told; "
              f"finish with `systemctl reload mosquitto` (or kill -HUP its pid)", file=sys.stderr)
        return PARTIAL
    return DONE


def add(args: argparse.Namespace, audit: Auditor) -> int:
    """Provision args.gateway: password line, SIGHUP, then its two files in place."""
    action, gw = "gateway.provision", args.gateway
    registry = _registry(args)
    _check_gateway(audit, action, gw, registry)
    tls = args.ca_file is not None
    mqtt = MqttConfig(args.broker_host, args.broker_port or (MQTTS_PORT if tls else MQTT_PORT), gw,
                      Path(PASSWORD_NAME), Path(args.ca_file) if tls else None)
    try:
        config = build_config(registry, gw, mqtt, _hardware(args))
        text = render_checked(config, args.out_dir / gw, f"Gateway {gw}: written by `smartcity gateway add` "
                              f"from the registry {args.registry}.\nThe password is in {PASSWORD_NAME} (0600).")
    except ConfigError as exc:
        audit(action, gw, "refused", "bad config")
        raise RefusedError(str(exc)) from None
    accounts, pid = _accounts(args, audit, action)
    password = new_password()
    try:
        staged = stage_files(args.out_dir, gw, text, password)
    except OSError as exc:
        audit(action, gw, "failed", "out dir not writable")
        raise RefusedError(f"cannot write {args.out_dir / gw}: {exc.strerror}; nothing was changed") from None
    try:
        replaced = accounts.set_password(gw, password)
    except BrokerAccountError as exc:
        staged.abort()
        audit(action, gw, "failed", "password file unavailable")
        raise RefusedError(f"{exc}; nothing was changed") from None
    staged.commit()
    status = _reload(accounts, audit, action, gw, pid)
    if status == DONE:
        audit(action, gw, "ok", f"{'password replaced' if replaced else 'new account'}; mosquitto pid {pid} "
                                f"reloaded; {len(config.devices)} devices")
    print(f"gateway {gw}: {'password replaced' if replaced else 'account added'}, mosquitto reloaded; "
          f"install {staged.directory}/gateway.toml and {PASSWORD_NAME} on the gateway")
    return status


def revoke(args: argparse.Namespace, audit: Auditor) -> int:
    """Remove args.gateway's account (no registry needed: a gateway gone from it must stay revocable)."""
    action, gw = "gateway.revoke", args.gateway
    _check_gateway(audit, action, gw, None)
    accounts, pid = _accounts(args, audit, action)
    try:
        removed = accounts.remove(gw)
    except BrokerAccountError as exc:
        audit(action, gw, "failed", "password file unavailable")
        raise RefusedError(f"{exc}; nothing was changed") from None
    if not removed:
        audit(action, gw, "not found")
        print(f"gateway {gw} has no broker account: nothing to revoke", file=sys.stderr)
        return NOTHING
    status = _reload(accounts, audit, action, gw, pid)
    if status == DONE:
        audit(action, gw, "ok", f"mosquitto pid {pid} reloaded")
    print(f"gateway {gw}: account removed, mosquitto reloaded (it disconnects the gateway)")
    return status


def list_gateways(args: argparse.Namespace, audit: Auditor) -> int:
    """The registry's gateways, whether each has an account, and accounts of gateways not in the registry."""
    registry = _registry(args)
    try:
        users = BrokerAccounts(args.password_file).users()
    except BrokerAccountError as exc:
        raise RefusedError(f"{exc} ({args.password_file})") from None
    audit("gateways.list", "-", "ok")
    print(f"{'gateway':20} {'account':8} name")
    for g in sorted(registry.gateways.values(), key=lambda g: g.id):
        print(f"{g.id:20} {'yes' if g.id in users else '-':8} {g.name}")
    for user in sorted(users - set(registry.gateways) - set(SERVICE_GRANTS)):
        print(f"{user:20} {'yes':8} (not in the registry: revoke it?)")
    return DONE


ACTIONS: dict[str, Callable[[argparse.Namespace, Auditor], int]] = {
    "add": add, "revoke": revoke, "list": list_gateways}


def run(args: argparse.Namespace) -> int:
    """Run one action; returns the exit status (see the module's docstring)."""
    try:
        audit = Auditor(args.audit)
    except RefusedError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return REFUSED
    try:
        return ACTIONS[args.gateway_command](args, audit)
    except RefusedError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return REFUSED
    finally:
        audit.close()
