"""The peer of bench/edge.py: ThingsBoard IoT Gateway 3.8.5 reading the simulated RN2483, publishing to our mosquitto.

Installed on first run into bench/thingsboard/.venv (uncommitted, never the project's .venv) from the
pinned bench/thingsboard/requirements.txt, with pip's progress on stderr. Its configuration is the
committed bench/thingsboard/tb_gateway.json and rn2483.json, with what differs per run (broker port,
the modem's pty) filled into a copy in the phase's own config dir (0600, with its broker password).
The connector is TB's shipped custom serial connector, taught the RN2483's receive
loop (bench/thingsboard/rn2483_connector.py, copied into the venv's extensions/rn2483/ where TB's
module loader looks for a connector of that type).

The gateway talks ThingsBoard's gateway MQTT API: telemetry to v1/gateway/telemetry, device connects
to v1/gateway/connect, its own statistics to v1/devices/me/telemetry and attributes; see acl_lines()
for its broker grants. There is no ThingsBoard server: the bench answers the gateway's getSessionLimits
RPC (no rate limits, as a server without a tenant limit), without which it sends nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deploy.mosquitto import Broker

HERE = Path(__file__).resolve().parent / "thingsboard"
VENV = HERE / ".venv"
REQUIREMENTS = HERE / "requirements.txt"
CONNECTOR = HERE / "rn2483_connector.py"
TB_USER = "tb-gw-bench"  # its broker account (as in tb_gateway.json and edge_support.TB_USER)
TELEMETRY_TOPIC = "v1/gateway/telemetry"
INSTALL_TIMEOUT = 900.0


def acl_lines(consumer: str) -> str:
    """ACL lines appended to the bench broker's file: what a TB gateway writes and reads, and the bench's part.

    The gateway may write its telemetry, attributes, connects and RPC traffic, and read what a ThingsBoard
    server would send it on topics it does not itself write (RPC responses, attribute responses, the
    gateway RPC topic): so it never receives its own messages back (on v1/devices/me/rpc/request/+ it
    would take its own getSessionLimits request for a server RPC and answer itself). Its subscriptions to
    v1/devices/me/rpc/request/+, v1/devices/me/attributes and v1/gateway/attributes are refused, and
    nothing would arrive there anyway. The consumer reads the telemetry and plays the server's part in
    the one exchange the gateway waits for before it sends anything (see edge_support.Consumer).
    """
    grants = ["write v1/gateway/#", "read v1/gateway/rpc", "read v1/gateway/attributes/response",
              "write v1/devices/me/telemetry", "write v1/devices/me/attributes",
              "write v1/devices/me/attributes/request/+", "write v1/devices/me/rpc/request/+",
              "write v1/devices/me/rpc/response/+", "read v1/devices/me/attributes/response/+",
              "read v1/devices/me/rpc/response/+"]
    return (f"\nuser {TB_USER}\n" + "".join(f"topic {g}\n" for g in grants)
            + f"\nuser {consumer}\ntopic read {TELEMETRY_TOPIC}\ntopic read v1/devices/me/rpc/request/+\n"
            "topic write v1/devices/me/rpc/response/+\n")


def grant(broker: Broker, consumer: str = "operator") -> None:
    """Give the TB gateway's account its grants (acl_lines) on the bench's running broker.

    deploy/mosquitto.py's policy knows the platform's accounts only: the lines go at the end of the
    broker's ACL file, which mosquitto re-reads on SIGHUP (sent to the broker the bench started).
    mosquitto logs no notice of the reload; the consumer's subscription to the TB topic (refused
    before it) is the check: edge_support.Consumer.start raises if a subscription was not granted.
    """
    if broker.config_path is None:
        raise RuntimeError("the bench's mosquitto has no config path")
    acl = broker.config_path.parent / "acl"
    acl.write_text(acl.read_text() + acl_lines(consumer))
    os.kill(broker.child.pid, signal.SIGHUP)
    time.sleep(0.5)


def settle(delivered: Callable[[], int], running: Callable[[], bool], quiet: float = 1.0,
           limit: float = 5.0) -> None:
    """Wait (at most limit s) until delivered() has not changed for quiet s, or the gateway has exited.

    TB's storage is in memory and its SIGINT stop does not flush it, so after the simulator stops it
    gets the time to send what it has read (ours drains its queue on stop; bare publishes at once).
    """
    deadline = time.monotonic() + limit
    last, since = delivered(), time.monotonic()
    while time.monotonic() < deadline and running() and time.monotonic() - since < quiet:
        time.sleep(0.1)
        if (now := delivered()) != last:
            last, since = now, time.monotonic()


def python(venv: Path = VENV) -> Path:
    """The interpreter of the gateway's venv."""
    return venv / "bin" / "python"


def ensure_venv(log: Callable[[str], None], venv: Path = VENV) -> Path:
    """Create the venv and pip-install the pinned requirements unless the stamp says they are in; returns it.

    The stamp is the requirements' and the connector's hash, so an edit of either reinstalls.
    """
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + CONNECTOR.read_bytes()).hexdigest()
    stamp = venv / ".installed"
    if stamp.exists() and stamp.read_text() == digest and python(venv).exists():
        return venv
    log(f"installing ThingsBoard IoT Gateway into {venv} (first run; {REQUIREMENTS.name} pins it)")
    if not python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # pip's progress goes to our stderr: a first run takes tens of seconds.
    subprocess.run([str(python(venv)), "-m", "pip", "install", "--disable-pip-version-check", "-r",
                    str(REQUIREMENTS)], check=True, timeout=INSTALL_TIMEOUT, stdout=sys.stderr)
    site = subprocess.run([str(python(venv)), "-c", "import thingsboard_gateway, os; "
                           "print(os.path.dirname(thingsboard_gateway.__file__))"],
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    ext = Path(site) / "extensions" / "rn2483"
    ext.mkdir(exist_ok=True)
    shutil.copy(CONNECTOR, ext / CONNECTOR.name)
    stamp.write_text(digest)
    return venv


def write_config(config_dir: Path, *, broker_port: int, modem_pty: str, password: str,
                 logs_json: Path | None = None) -> Path:
    """The committed config with this run's broker port and modem pty, in config_dir; returns config_dir.

    logs.json is TB's own default (from the installed package, INFO to files and stdout) unless given.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    main: dict[str, Any] = json.loads((HERE / "tb_gateway.json").read_text())
    main["thingsboard"]["host"], main["thingsboard"]["port"] = "127.0.0.1", broker_port
    # In the file, 0600, in the bench's temp dir: TB 3.8.5 nests TB_GW_PASSWORD under "security" in its
    # env lookup, which its MQTT client then does not find, so the environment cannot carry it.
    main["thingsboard"]["security"]["password"] = password
    (config_dir / "tb_gateway.json").touch(0o600)
    (config_dir / "tb_gateway.json").write_text(json.dumps(main, indent=2))
    connector: dict[str, Any] = json.loads((HERE / "rn2483.json").read_text())
    for device in connector["devices"]:
        device["port"] = modem_pty
    (config_dir / main["connectors"][0]["configuration"]).write_text(json.dumps(connector, indent=2))
    if logs_json is not None:
        shutil.copy(logs_json, config_dir / "logs.json")
    return config_dir


def package_logs_json(venv: Path = VENV) -> Path:
    """TB's shipped logs.json in the venv."""
    found = sorted(venv.glob("lib/python*/site-packages/thingsboard_gateway/config/logs.json"))
    if not found:
        raise RuntimeError(f"no thingsboard_gateway/config/logs.json under {venv}: is the gateway installed?")
    return found[0]


def argv_env(config_dir: Path, venv: Path = VENV) -> tuple[list[str], dict[str, str]]:
    """The gateway's command line and environment (its config dir in TB_GW_CONFIG_DIR)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMARTCITY_", "PYTHON"))}
    env |= {"TB_GW_CONFIG_DIR": str(config_dir), "TB_GW_LOGS_PATH": str(config_dir / "logs"),
            # Its updater posts to https://updates.thingsboard.io at start and hourly (no setting turns it
            # off): a proxy on a closed loopback port makes that fail at once, so the bench stays on loopback.
            "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost"}
    # TB stops cleanly on SIGINT only (its handler flushes and closes); the bench stops children with
    # SIGTERM, so it becomes a SIGINT. TB writes ./logs: run it in its config dir.
    code = (f"import os, signal; os.chdir({str(config_dir)!r}); "
            "signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT)); "
            "from thingsboard_gateway.tb_gateway import main; main()")
    return [str(python(venv)), "-c", code], env

