"""`smartcity demo`: the whole platform with a simulated city, on this machine, in one command.

Starts mosquitto and influxd as children (config and data under the state directory, loopback,
free ports), then the firmware simulators, one edge agent per gateway, ingest, rules and the API,
each as its own process exactly as in production. A child that dies is started again with backoff
(smartcity/demo_supervision.py), as systemd does in production, and the progress line and summary say
how many restarts each had. Ctrl-C or --duration stops everything in order and prints a summary read
back from InfluxDB.

The registry's lorawan devices reach their gateways through a simulated LoRaWAN network server
(ChirpStack by default, ``--network-server``): the simulator publishes their uplinks as the
server's MQTT integration does, and each edge agent's bridge reads them. On this one machine the
server's integration uses the demo's own broker, with the accounts ``network-server`` and
``ns-bridge`` (deploy/mosquitto.py); in production it has a broker of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

import rules
from api.operators.roles import Role
from api.operators.users import write_users_file
from core.influx import InfluxClient, InfluxConfig, InfluxError
from core.registry import load
from core.runtime import stop_event
from core.settings import NS_MQTT_ENV, InfluxSettings, MqttSettings, influx_to_env, mqtt_to_env
from deploy.certificates import ensure_broker_certs
from deploy.grafana import Grafana, start_grafana
from deploy.influx_accounts import ADMIN, SERVICE_PRIVILEGES, ensure_accounts, load_or_create_passwords
from deploy.influxdb import Influxd, start_influxd
from deploy.mosquitto import (
    NETWORK_SERVER_USER,
    NS_BRIDGE_USER,
    STA_BRIDGE_USER,
    STA_MQTT_USER,
    Broker,
    start_mosquitto,
)
from deploy.mosquitto_open_data import start_open_data_broker
from deploy.processes import ChildProcess, ServiceError, free_port, new_password, port_is_free
from edge.lora_keys import KeyRing
from smartcity import demo_summary
from smartcity.demo_supervision import (
    any_down,
    event_lines,
    new_supervisor,
    restarts_text,
    service_spec,
    summary_lines,
    supervise_broker,
    supervise_influxd,
)

SERVICE_USERS = ("ingest", "rules", "operator", "api", NETWORK_SERVER_USER, NS_BRIDGE_USER, STA_MQTT_USER,
                 STA_BRIDGE_USER)
# One application per gateway, so that each gateway's bridge receives its own devices' uplinks only.
NS_APPLICATIONS = {"chirpstack": "smartcity-{gateway}", "tts": "smartcity-{gateway}@gemeente"}
DEMO_RULES = Path(rules.__file__).resolve().parent / "examples" / "demo-rules.toml"
PROGRESS_INTERVAL = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the demo subcommand."""
    parser.add_argument("--state-dir", default=".state", help="where config, data and logs go")
    parser.add_argument("--mqtt-port", type=int, default=0, help="broker port (default: a free one)")
    parser.add_argument("--influx-port", type=int, default=0, help="InfluxDB HTTP port (default: a free one)")
    parser.add_argument("--api-port", type=int, default=0, help="API port (default: 8000 if free)")
    parser.add_argument("--rules", default=None,
                        help="rule file (default: rules/examples/demo-rules.toml, the city's rules, short durations)")
    parser.add_argument("--report-interval", type=float, default=2.0,
                        help="seconds between simulated device reports (real devices: 10-15 min)")
    parser.add_argument("--busy-seconds", type=float, default=20.0, help="simulated people about, per cycle")
    parser.add_argument("--quiet-seconds", type=float, default=40.0, help="simulated nobody about, per cycle")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lora-modem", choices=["rn2483", "rak3172"], default="rn2483",
                        help="the LoRa modem every simulated gateway has")
    parser.add_argument("--network-server", choices=["chirpstack", "tts", "none"], default="chirpstack",
                        help="the simulated LoRaWAN network server of the lorawan devices (none: leave them out)")


def _say(text: str) -> None:
    print(text, flush=True)  # the demo talks to the person who started it



class Demo:
    """The running demo: servers, services, and how to stop them."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.state = Path(args.state_dir).resolve()
        self.logs = self.state / "logs"
        self.registry = load(args.registry)
        self.supervisor = new_supervisor(self.state)
        self.services: list[str] = []  # in start order (consumers first); stop_services goes in data-flow order
        self.broker: Broker | None = None
        self.open_data: Broker | None = None  # anonymous, read-only SensorThings MQTT (bridged from the broker)
        self.influxd: Influxd | None = None
        self.grafana: Grafana | None = None  # only when Grafana is installed
        self.influx_settings = InfluxSettings(database="smartcity")  # the admin's: the demo's own queries
        self.influx_passwords: dict[str, str] = {}  # account -> password (deploy/influx_accounts.py)
        self.api_url = ""
        self.since_ms = int(time.time() * 1000)
        self.lora_keys = self.state / "lora-keys.json"
        (self.state / "ingest" / "demo" / "status.json").unlink(missing_ok=True)  # the last run's

    def _account(self, user: str) -> MqttSettings:
        if self.broker is None:
            raise ServiceError("the broker must be started before the services")
        if user in self.registry.gateways and self.broker.tls_port and self.broker.tls_ca:
            # Gateways reach the broker over the network in production: TLS, verifying the broker's certificate
            # against the deployment's CA. The services beside the broker use the loopback listener.
            return MqttSettings(self.broker.host, self.broker.tls_port, user, self.broker.users[user],
                                tls_ca=str(self.broker.tls_ca))
        return MqttSettings(self.broker.host, self.broker.port, user, self.broker.users[user])

    def _network_server(self, user: str) -> tuple[list[str], dict[str, str]]:
        """The options and environment of the simulator (user network-server) or an edge agent (ns-bridge)."""
        flavour = self.args.network_server
        if flavour == "none":
            return [], {}
        return (["--network-server", flavour, "--ns-application", NS_APPLICATIONS[flavour]],
                mqtt_to_env(self._account(user), prefix=NS_MQTT_ENV))

    def _operators(self) -> Path:
        """The demo's one operator, admin, with a password made for this state directory (kept across runs)."""
        path = self.state / "api" / "operators.toml"
        secret = self.state / "api" / "admin-password"
        if not path.exists() or not secret.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            password = new_password()
            write_users_file(path, [("admin", Role.ADMIN, password)])
            secret.write_text(password + "\n")
            secret.chmod(0o600)
        return path

    def _api_env(self) -> dict[str, str]:
        """What the API needs besides its options: the broker files for gateway provisioning, the MQTT endpoint."""
        # The operators' writes through their own account; the API's own (api) may only read.
        writer = {"SMARTCITY_API_INFLUX_WRITE_USERNAME": "api-writer",
                  "SMARTCITY_API_INFLUX_WRITE_PASSWORD": self.influx_passwords["api-writer"]}
        if self.broker is None or self.broker.config_path is None:
            return writer
        env = {**writer, "SMARTCITY_MOSQUITTO_PASSWORD_FILE": str(self.broker.config_path.parent / "passwd"),
               "SMARTCITY_MOSQUITTO_PID_FILE": str(self._broker_pid_file()), "SMARTCITY_API_PUBLIC_URL": self.api_url}
        if self.open_data is not None:
            env["SMARTCITY_API_STA_MQTT_URL"] = self.open_data_url()
        return env

    def _broker_pid_file(self) -> Path:
        return self.state / "mosquitto" / "mosquitto.pid"

    def _broker_started(self, child: ChildProcess) -> None:
        # The API signals mosquitto (SIGHUP) by this file after provisioning a gateway: it must name
        # the broker that runs now, also after the supervisor restarted it.
        self._broker_pid_file().write_text(f"{child.pid}\n")

    def open_data_url(self) -> str:
        """Where open-data consumers subscribe (the anonymous, read-only broker)."""
        return f"mqtt://{self.open_data.host}:{self.open_data.port}" if self.open_data else "(not started)"

    def _influx_account(self, user: str) -> InfluxSettings:
        return InfluxSettings(self.influx_settings.url, self.influx_settings.database, user,
                              self.influx_passwords[user])

    def _service(self, name: str, argv: list[str], mqtt_user: str | None,
                 ns_user: str | None = None, extra_env: dict[str, str] | None = None, *, after: str | None = None,
                 influx_user: str | None = None,
                 ready: Callable[[], bool] | None = None, before_start: Callable[[], None] | None = None
                 ) -> ChildProcess:
        if self.broker is None:
            raise ServiceError("the broker must be started before the services")
        env = dict(os.environ)
        if mqtt_user:
            env.update(mqtt_to_env(self._account(mqtt_user)))
        ns_options: list[str] = []
        if ns_user:
            ns_options, ns_env = self._network_server(ns_user)
            env.update(ns_env)
        if influx_user:  # its own least-privilege account; the simulator and the edge get none
            env.update(influx_to_env(self._influx_account(influx_user)))
        env["SMARTCITY_LORA_KEYS"] = str(self.lora_keys)
        env.update(extra_env or {})
        cmd = [sys.executable, "-m", "smartcity", "--log-level", "INFO", argv[0],
               "--registry", self.args.registry, *argv[1:], *ns_options]
        child = self.supervisor.start(service_spec(name, cmd, self.logs / f"{name}.log", env, after=after,
                                                   ready=ready, before_start=before_start))
        self.services.append(name)
        return child

    def start(self) -> None:
        """Bring everything up, servers first."""
        self.state.mkdir(parents=True, exist_ok=True)
        users = {u: new_password() for u in (*self.registry.gateways, *SERVICE_USERS)}
        (self.state / "credentials.json").write_text(json.dumps(users, indent=1))
        (self.state / "credentials.json").chmod(0o600)
        keys = self.lora_keys
        if not keys.exists():  # kept across runs: the gateways' frame counters are too
            KeyRing.generate().save(keys)
        certs = ensure_broker_certs(self.state / "tls")  # the deployment's CA, kept across runs
        self.broker = start_mosquitto(self.state, users, port=self.args.mqtt_port or None, tls=certs)
        self._broker_started(self.broker.child)
        supervise_broker(self.supervisor, self.broker, on_start=self._broker_started)
        self.open_data = start_open_data_broker(self.state, self.broker, tls=True)
        supervise_broker(self.supervisor, self.open_data)
        # Authentication on, as in production: the passwords are kept with the data (the users live in it).
        self.influx_passwords = load_or_create_passwords(self.state / "influx-credentials.json",
                                                         [ADMIN, *SERVICE_PRIVILEGES])
        self.influxd = start_influxd(self.state, http_port=self.args.influx_port or None,
                                     admin=(ADMIN, self.influx_passwords[ADMIN]))
        supervise_influxd(self.supervisor, self.influxd)
        self.influx_settings = InfluxSettings(self.influxd.url, self.influx_settings.database, ADMIN,
                                              self.influx_passwords[ADMIN])
        with self._influx() as influx:
            influx.create_database()
        ensure_accounts(self.influxd, self.influx_settings.database, self.influx_passwords)
        # One worker on a plain subscription: mosquitto 2.0 restores it after a restart, a shared one it
        # does not (docs/reliability.md), so what the gateways publish before the ingest is back is kept.
        # The consumers before the gateways, as in production: a batch published before the ingest's
        # subscription exists has no taker (its persistent session keeps what arrives after).
        self._service("ingest", ["ingest", "--worker", "demo", "--state-dir", str(self.state), "--share-group", ""],
                      "ingest", influx_user="ingest", ready=self._ingest_connected)
        self.supervisor.wait_ready("ingest", 30)
        port_map = self.state / "ports.json"
        self._service("sim", ["sim", "--lora-modem", self.args.lora_modem, "--port-map", str(port_map),
                              "--report-interval", str(self.args.report_interval),
                              "--busy-seconds", str(self.args.busy_seconds),
                              "--quiet-seconds", str(self.args.quiet_seconds), "--seed", str(self.args.seed)],
                      None, NETWORK_SERVER_USER, ready=port_map.exists,
                      # A restarted simulator opens new ptys: its agents wait for the new port map.
                      before_start=lambda: port_map.unlink(missing_ok=True))
        self.supervisor.wait_ready("sim", 15)
        for gateway in self.registry.gateways:
            self._service(f"edge-{gateway}", ["edge", "--lora-modem", self.args.lora_modem, "--gateway", gateway,
                                              "--port-map", str(port_map),
                                              "--state-dir", str(self.state)], gateway, NS_BRIDGE_USER,
                          after="sim")
        # The rules after the gateways' birth: a command they send before a gateway has first subscribed
        # has no taker (by day the lights would burn until the rules reassert). Bounded: a gateway that
        # does not come up leaves the city to run without it.
        demo_summary.wait_gateways_online(self._influx, self.since_ms, set(self.registry.gateways), 20)
        rules = ["--rules", self.args.rules or str(DEMO_RULES)]
        self._service("rules", ["rules", "--client-id", "smartcity-rules-demo", "--state-dir", str(self.state), *rules],
                      "rules", influx_user="rules")
        api_port = self.args.api_port or (8000 if port_is_free(8000) else free_port())
        self.api_url = f"http://127.0.0.1:{api_port}"
        self._service("api", ["api", "--host", "127.0.0.1", "--port", str(api_port),
                              "--state-dir", str(self.state / "api"), "--operators", str(self._operators()),
                              "--rules", self.args.rules or str(DEMO_RULES),
                              "--alarms", str(self.state / "rules" / "alarms.sqlite")], "api",
                      extra_env=self._api_env(), influx_user="api")
        self._service("sta-mqtt", ["sta-mqtt", "--public-url", self.api_url], STA_MQTT_USER)
        self.supervisor.watch()
        # Optional and not part of the data path: not supervised, and the city runs without it.
        self.grafana = start_grafana(self.state, self.influxd.url, "grafana", self.influx_passwords["grafana"])

    def _influx(self) -> InfluxClient:
        s = self.influx_settings
        return InfluxClient(InfluxConfig(s.url, s.database, s.username, s.password))

    def stop_services(self) -> None:
        """Stop the services in data-flow order: the edge agents flush their last batches before
        ingest stops, so the summary counts everything the devices sent. The supervisor restarts
        nothing from here on."""
        # (They start consumers first; sorted is stable, so the rest keep their start order.)
        self.supervisor.stop(sorted(self.services, key=lambda n: 0 if n == "sim" else 1 if n.startswith("edge-")
                                    else 2))

    def _ingest_connected(self) -> bool:
        """The ingest says on /healthz that it is connected to the broker (it subscribes on connecting)."""
        path = self.state / "ingest" / "demo" / "status.json"
        try:
            health = httpx.get(f"{json.loads(path.read_text())['url']}/healthz", timeout=1).json()
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            return False
        return bool(health.get("mqtt") == "connected")

    def stop(self) -> None:
        """Stop the services, then the servers (by PID, whichever process each is now)."""
        self.stop_services()
        if self.grafana is not None:
            self.grafana.stop()
            self.grafana = None
        self.supervisor.stop(["influxd", "mosquitto-open-data", "mosquitto"])

    def progress(self) -> str:
        """One line on what has arrived so far, for the person watching."""
        try:
            with self._influx() as influx:
                line = demo_summary.progress_line(influx, self.since_ms)
        except InfluxError as exc:
            return f"InfluxDB not answering: {exc}"
        return f"{line}; restarts: {restarts_text(self.supervisor)}"

    def summary(self) -> list[str]:
        """What reached InfluxDB: reports per kind, commands sent and acknowledged, light levels now."""
        with self._influx() as influx:
            lines = demo_summary.summary_lines(influx, self.since_ms, self.registry, self.args.network_server)
        return lines + summary_lines(self.supervisor)

    def report(self) -> str:
        """The council report of this run (report/), written into the state directory: its path, or why not."""
        from report import gateways_of, write_report  # noqa: PLC0415 - matplotlib only at the end

        try:
            with self._influx() as influx:
                written = write_report(influx, self.since_ms / 1000, time.time(), self.state / "report",
                                       gateways=gateways_of(self.registry))
        except InfluxError as exc:
            return f"not written: {exc}"
        return str(written.html)

    def grafana_line(self) -> str:
        """Where the dashboards are: Grafana's URL, or why there is none."""
        if self.grafana is None:
            return "not installed (no grafana or grafana-server on PATH): see dashboards/README.md"
        return (f"{self.grafana.url}   (user {self.grafana.admin_user}, password in "
                f"{self.grafana.password_file}; dashboards in the folder 'Smart city')")

    def network_server_line(self) -> str:
        """What the banner says about the network-server path."""
        flavour = self.args.network_server
        if flavour == "none":
            return "no network server: the lorawan devices are left out (--network-server)"
        return (f"simulated {flavour}, application {NS_APPLICATIONS[flavour]} per gateway, on the broker above "
                f"(accounts {NETWORK_SERVER_USER}, {NS_BRIDGE_USER})")

    def ingest_status_url(self, timeout: float = 5.0) -> str:
        """The ingest worker's /metrics and /healthz base URL (it writes it once it is up)."""
        path = self.state / "ingest" / "demo" / "status.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return str(json.loads(path.read_text())["url"])
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        return "(not up yet)"


def run(args: argparse.Namespace) -> int:
    """Run the demo until Ctrl-C or --duration; returns the exit status."""
    stop = stop_event()
    demo = Demo(args)
    started = time.monotonic()
    status = 0
    try:
        demo.start()
        if demo.broker is None or demo.influxd is None:
            raise ServiceError("servers did not start")
        _say(f"""
smartcity demo is running ({len(demo.registry.gateways)} gateways, {len(demo.registry.devices)} devices)
  open data API  {demo.api_url}/v1.1   (SensorThings API 1.1; GeoJSON {demo.api_url}/v1/latest, docs: .../docs)
  open data MQTT {demo.open_data_url()}   (anonymous, read-only: v1.1/Datastreams('<id>')/Observations)
  InfluxDB       {demo.influxd.url}   database "{demo.influx_settings.database}"
                 (authentication on; the accounts in {demo.state}/influx-credentials.json)
  operators      {demo.api_url}/v1/operator   (user admin, password in {demo.state}/api/admin-password)
  Grafana        {demo.grafana_line()}
  MQTT broker    {demo.broker.host}:{demo.broker.port}   (accounts in {demo.state}/credentials.json)
                 TLS on :{demo.broker.tls_port} (CA {demo.broker.tls_ca}): the gateways connect over it
  LoRaWAN        {demo.network_server_line()}
  ingest         {demo.ingest_status_url()}/metrics   (health: .../healthz)
  logs           {demo.logs}/
Stop with Ctrl-C{f" (or wait {args.duration:g} s)" if args.duration else ""}.""")
        deadline = started + args.duration if args.duration else None
        next_progress = time.monotonic() + PROGRESS_INTERVAL
        while not stop.wait(1.0):
            if deadline and time.monotonic() >= deadline:
                break
            for line in event_lines(demo.supervisor):  # a crash is restarted, not the end of the city
                _say(line)
            if time.monotonic() >= next_progress:
                next_progress += PROGRESS_INTERVAL
                _say(f"  [{time.monotonic() - started:4.0f} s] {demo.progress()}")
    except (ServiceError, InfluxError, OSError) as exc:
        _say(f"demo failed to start: {exc}")
        demo.stop()
        return 1
    _say("stopping ...")
    demo.stop_services()  # the servers stay up until the summary has been read
    try:
        lines = demo.summary()
    except InfluxError as exc:
        lines = [f"  (summary unavailable: {exc})"]
    lines.append(f"  report: {demo.report()}")
    demo.stop()
    _say(f"summary after {time.monotonic() - started:.0f} s:\n" + "\n".join(lines))
    return 1 if any_down(demo.supervisor) else status
