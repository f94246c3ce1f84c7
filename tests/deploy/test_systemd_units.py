"""deploy/systemd/: the server services' units (ingest, rules, api, sta-mqtt), checked as the edge unit is
(tests/deploy/test_systemd_unit.py): the hardening they promise, their restart policy, secrets only from
root-owned environment files, the users they run as, systemd's own verdict, and the server code running
under the memory rule they set."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from core.influx import InfluxClient, InfluxConfig, InfluxError
from deploy.processes import free_port
from smartcity.cli import build_parser
from tests.conftest import wait_for
from tests.deploy.test_systemd_unit import HARDENING, parse_unit, systemd_analyze

ROOT = Path(__file__).parents[2]
SYSTEMD = ROOT / "deploy" / "systemd"
SYSUSERS = SYSTEMD / "smartcity.sysusers"
BINARY = "/opt/smartcity/bin/smartcity"
CONTROL_DIR = "/var/lib/smartcity-rules/control"

# unit file -> (subcommand, user, group)
SERVER_UNITS = {
    "smartcity-ingest@.service": ("ingest", "smartcity-ingest", "smartcity-ingest"),
    "smartcity-rules.service": ("rules", "smartcity-rules", "smartcity"),
    "smartcity-api.service": ("api", "smartcity-api", "smartcity"),
    "smartcity-sta-mqtt.service": ("sta-mqtt", "smartcity-sta-mqtt", "smartcity-sta-mqtt"),
}
SHARING = {"smartcity-rules.service", "smartcity-api.service"}  # the control directory, group smartcity
# What the edge unit sets minus its device rules (no serial ports here: no devices at all).
SERVER_HARDENING = {k: v for k, v in HARDENING.items() if k not in ("DevicePolicy", "UMask")} | {
    "PrivateDevices": "yes", "ProtectProc": "invisible"}

Unit = dict[str, dict[str, list[str]]]


def load(name: str) -> Unit:
    return parse_unit((SYSTEMD / name).read_text())


def one(unit: Unit, key: str, section: str = "Service") -> str:
    values = unit[section].get(key)
    assert values is not None, f"[{section}] {key}= is missing"
    assert len(values) == 1, f"[{section}] {key}= is set {len(values)} times"
    return values[0]


def exec_start(unit: Unit) -> list[str]:
    return shlex.split(one(unit, "ExecStart").replace("%i", "1"))


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


units = pytest.mark.parametrize("name", sorted(SERVER_UNITS))


def test_every_unit_in_the_directory_is_checked() -> None:
    # smartcity-backup.service and its timer: tests/deploy/test_backup_units.py.
    assert {p.name for p in SYSTEMD.glob("*.service")} == {*SERVER_UNITS, "smartcity-edge.service",
                                                           "smartcity-backup.service"}


@units
@pytest.mark.parametrize(("key", "value"), sorted(SERVER_HARDENING.items()))
def test_the_sandbox_directive_is_set(name: str, key: str, value: str) -> None:
    assert one(load(name), key) == value


@units
def test_system_calls_are_filtered_and_no_device_is_reachable(name: str) -> None:
    unit = load(name)
    assert unit["Service"]["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    assert one(unit, "SystemCallErrorNumber") == "EPERM"
    assert "DeviceAllow" not in unit["Service"] and "SupplementaryGroups" not in unit["Service"]


@units
def test_it_runs_as_its_own_user(name: str) -> None:
    unit, (_, user, group) = load(name), SERVER_UNITS[name]
    assert one(unit, "User") == user and one(unit, "Group") == group
    assert "DynamicUser" not in unit["Service"]
    others = {u for n, (_, u, _) in SERVER_UNITS.items() if n != name} | {"smartcity-edge"}
    assert user not in others  # no two services share a user


def test_the_group_is_shared_only_by_the_two_services_that_share_the_control_directory() -> None:
    assert {n for n, (_, _, group) in SERVER_UNITS.items() if group == "smartcity"} == SHARING
    rules, api = load("smartcity-rules.service"), load("smartcity-api.service")
    assert one(rules, "StateDirectory") == "smartcity-rules smartcity-rules/control"
    assert one(rules, "StateDirectoryMode") == "0770" and one(rules, "UMask") == "0007"
    assert one(api, "UMask") == "0007" and one(api, "StateDirectoryMode") == "0700"
    # Both name the same alarm database, in the directory the rules create and the API may write.
    alarms = f"{CONTROL_DIR}/alarms.sqlite"
    assert option(exec_start(rules), "--alarms") == option(exec_start(api), "--alarms") == alarms
    assert one(api, "ReadWritePaths") == f"-{CONTROL_DIR}"


@units
def test_the_command_line_is_one_the_service_accepts(name: str) -> None:
    unit, (service, _, _) = load(name), SERVER_UNITS[name]
    argv = exec_start(unit)
    assert argv[:2] == [BINARY, service]
    args = build_parser(argv[1:]).parse_args(argv[1:])  # the real parser: every option exists
    assert args.command == service and args.registry == "/etc/smartcity/registry.geojson"
    if name == "smartcity-api.service":
        assert args.host == "127.0.0.1"  # behind a reverse proxy, never public itself
    if name == "smartcity-ingest@.service":
        assert option(shlex.split(one(unit, "ExecStart")), "--worker") == "%i"  # the instance name is the worker


@units
def test_state_config_and_secrets(name: str) -> None:
    unit, (service, _, _) = load(name), SERVER_UNITS[name]
    state = one(unit, "StateDirectory").split()[0]
    assert state == f"smartcity-{service}"
    assert one(unit, "ConfigurationDirectory") == "smartcity"
    assert one(unit, "Environment") == f"SMARTCITY_STATE_DIR=/var/lib/{state}"
    assert one(unit, "WorkingDirectory") == f"/var/lib/{state}"
    assert option(exec_start(unit), "--state-dir") in (None, f"/var/lib/{state}")
    if name not in SHARING:
        assert one(unit, "UMask") == "0077" and one(unit, "StateDirectoryMode") == "0700"
        assert "ReadWritePaths" not in unit["Service"]
    # Secrets from a file systemd reads as root; no "-": a missing file fails the start, loudly.
    assert one(unit, "EnvironmentFile") == f"/etc/smartcity/{service}.env"
    text = (SYSTEMD / name).read_text()
    assert not re.search(r"(PASSWORD|TOKEN|SECRET)\w*=", text), "a secret in the unit file"


@units
def test_restart_policy(name: str) -> None:
    unit = load(name)
    assert one(unit, "Type") == "exec"
    assert one(unit, "Restart") == "on-failure"
    assert one(unit, "RestartSec") == "3s"
    assert one(unit, "RestartPreventExitStatus") == "2"  # a config error: restarting cannot fix it
    assert one(unit, "StartLimitIntervalSec", "Unit") == "0"
    assert one(unit, "TimeoutStopSec") == "30"
    assert one(unit, "WantedBy", "Install") == "multi-user.target"
    for key in ("RestartSteps", "RestartMaxDelaySec", "WatchdogSec"):  # systemd 254+, or needs sd_notify
        assert key not in unit["Service"], key
    assert "Requires" not in unit["Unit"]  # they reconnect by themselves: ordering only


@units
def test_reload_only_where_the_service_handles_sighup(name: str) -> None:
    unit, (service, _, _) = load(name), SERVER_UNITS[name]
    main = {"ingest": "ingest/main.py", "rules": "rules/main.py", "api": "api/main.py",
            "sta-mqtt": "api/sta_mqtt/main.py"}[service]
    handles = "on_sighup(" in (ROOT / main).read_text()
    # Without a handler SIGHUP ends a Python process: an ExecReload= would be a stop.
    assert unit["Service"].get("ExecReload") == (["/bin/kill -HUP $MAINPID"] if handles else None)


def _testable_copy(tmp_path: Path, name: str) -> Path:
    # verify checks that ExecStart's program exists: point it at one that does; a template needs an instance.
    copy = tmp_path / name.replace("@.service", "@1.service")
    copy.write_text((SYSTEMD / name).read_text().replace(BINARY, shutil.which("true") or "/bin/true"))
    return copy


@units
def test_systemd_analyze_verify_finds_nothing(tmp_path: Path, name: str) -> None:
    copy = _testable_copy(tmp_path, name)
    # verify exits 0 even for unknown keys and bad values: it only warns, so its output must be empty.
    result = subprocess.run([systemd_analyze(), "verify", str(copy)], check=False, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


@units
def test_systemd_rates_the_exposure_low(tmp_path: Path, name: str) -> None:
    copy = _testable_copy(tmp_path, name)
    # 20 on the 0-100 scale: "2.0 or better" on the one systemd prints (all are at 1.2 now).
    result = subprocess.run([systemd_analyze(), "security", "--offline=true", "--threshold=20", str(copy)],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


def test_sysusers_creates_every_user_and_group_the_units_run_as(tmp_path: Path) -> None:
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.fail("systemd-sysusers is not installed: run scripts/bootstrap dev (apt-get install systemd)")
    (tmp_path / "etc").mkdir()
    result = subprocess.run([sysusers, f"--root={tmp_path}", str(SYSUSERS)], check=False, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    users = {ln.split(":")[0]: ln.split(":") for ln in (tmp_path / "etc" / "passwd").read_text().splitlines()}
    groups = {ln.split(":")[0]: ln.split(":")[3].split(",") for ln in (tmp_path / "etc" / "group").read_text()
              .splitlines()}
    for name, (_, user, group) in SERVER_UNITS.items():
        assert user in users and group in groups, name
        assert users[user][6] == "/usr/sbin/nologin"
    assert sorted(groups["smartcity"]) == ["smartcity-api", "smartcity-rules"]


# The units' MemoryDenyWriteExecute=yes, tried on the real server code: Linux >= 6.3 has the same rule per
# process (prctl PR_SET_MDWE), inherited by children and kept across execve. The demo under it runs every
# server service (and mosquitto and influxd) doing its real work; one that needed writable and executable
# memory would die (and be restarted by the demo's supervisor, which the summary would show).
MDWE_DEMO = textwrap.dedent("""
    import ctypes, mmap, os, sys
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print("PR_SET_MDWE refused: the kernel lacks the rule (Linux < 6.3)", file=sys.stderr); sys.exit(5)
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError:
        pass
    else:
        print("not enforced", file=sys.stderr); sys.exit(3)
    os.execv(sys.executable, [sys.executable, "-m", "smartcity", *sys.argv[1:]])
""")


@pytest.mark.integration
def test_the_server_code_runs_with_memory_deny_write_execute(tmp_path: Path) -> None:
    state, api_port, out = tmp_path / "state", free_port(), tmp_path / "demo.out"
    with out.open("wb") as sink:
        demo = subprocess.Popen([sys.executable, "-c", MDWE_DEMO, "demo", "--duration", "40", "--state-dir",
                                 str(state), "--report-interval", "0.5", "--busy-seconds", "2", "--quiet-seconds", "3",
                                 "--api-port", str(api_port)], cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    try:
        api = f"http://127.0.0.1:{api_port}"
        wait_for(lambda: demo.poll() is not None or "Stop with Ctrl-C" in out.read_text(), 40)
        assert demo.poll() is None, out.read_text()[-3000:]

        def answers(path: str, auth: tuple[str, str] | None = None) -> bool:
            try:
                return httpx.get(api + path, auth=auth, timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        admin = ("admin", (state / "api" / "admin-password").read_text().strip())
        # Open data (SensorThings, GeoJSON) and an operator (argon2id) against the alarm database.
        for path, auth in (("/v1/latest", None), ("/v1.1/Datastreams?$top=2", None), ("/v1/operator/me", admin),
                           ("/v1/operator/alarms", admin)):
            wait_for(lambda p=path, a=auth: answers(p, a), 20)
        # Rules commanded lights, which acknowledged them (rules, ingest, edge, sim all at work).
        wait_for(lambda: commands_applied(out, state) > 0, 20)
        time.sleep(2)  # sta-mqtt publishes a few Observations too
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
        demo.wait(40)
    text = out.read_text()
    assert demo.returncode == 0, text[-3000:]
    restarts = next(ln for ln in text[text.index("summary after"):].splitlines() if "restarts:" in ln)
    assert "restarts: none" in restarts, restarts  # no service died under the rule
    logs = "".join(p.read_text(errors="replace") for p in (state / "logs").glob("*.log"))
    assert "Traceback" not in logs and "MemoryError" not in logs


def commands_applied(out: Path, state: Path) -> int:
    """Commands acknowledged as applied so far, from the demo's InfluxDB (named in its banner; authentication
    on: read with the demo's read-only grafana account)."""
    url = next((ln.split()[1] for ln in out.read_text().splitlines() if ln.strip().startswith("InfluxDB")), "")
    try:
        password = json.loads((state / "influx-credentials.json").read_text())["grafana"]
        with InfluxClient(InfluxConfig(url, "smartcity", "grafana", password)) as influx:
            series = influx.query("""SELECT count("id") FROM "command_ack" WHERE "status" = 'applied'""")
    except (InfluxError, OSError, ValueError, KeyError):
        return 0
    return int(series[0].values[0][1]) if series and series[0].values else 0
