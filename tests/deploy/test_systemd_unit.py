"""deploy/systemd/smartcity-edge.service: the hardening it promises, systemd's own verdict, and the agent's
code running under the memory rule it sets."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
UNIT = ROOT / "deploy" / "systemd" / "smartcity-edge.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")  # scripts/bootstrap dev installs it (package systemd)


def systemd_analyze() -> str:
    """The systemd-analyze binary; a missing one fails the test (a skip would pass without checking)."""
    if SYSTEMD_ANALYZE is None:
        pytest.fail("systemd-analyze is not installed: run scripts/bootstrap dev (apt-get install systemd)")
    return SYSTEMD_ANALYZE


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values in order]}}: a unit file may repeat a key (DeviceAllow=), configparser cannot."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{UNIT}:{n}: not a key=value line in a section: {raw!r}"
        assert not raw.endswith("\\"), f"{UNIT}:{n}: continuation lines are not used here"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


def one(unit: dict[str, dict[str, list[str]]], key: str, section: str = "Service") -> str:
    values = unit[section].get(key)
    assert values is not None, f"[{section}] {key}= is missing"
    assert len(values) == 1, f"[{section}] {key}= is set {len(values)} times"
    return values[0]


HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes", "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
    "PrivateMounts": "yes", "RemoveIPC": "yes", "SystemCallArchitectures": "native", "CapabilityBoundingSet": "",
    "AmbientCapabilities": "", "DevicePolicy": "closed", "UMask": "0077",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
}


@pytest.mark.parametrize(("key", "value"), sorted(HARDENING.items()))
def test_the_sandbox_directive_is_set(unit, key: str, value: str) -> None:
    assert one(unit, key) == value


def test_it_runs_as_the_dedicated_user_with_the_serial_ports_group(unit) -> None:
    assert one(unit, "User") == "smartcity-edge" and one(unit, "Group") == "smartcity-edge"
    assert "DynamicUser" not in unit["Service"]  # the 0600 key and password files are owned by this user
    assert one(unit, "SupplementaryGroups") == "dialout"


def test_only_the_state_directory_is_writable_and_the_config_directory_is_known(unit) -> None:
    assert one(unit, "StateDirectory") == "smartcity-edge"
    assert one(unit, "ConfigurationDirectory") == "smartcity"
    assert one(unit, "Environment") == "SMARTCITY_STATE_DIR=/var/lib/smartcity-edge"
    assert "ReadWritePaths" not in unit["Service"]  # StateDirectory= is the one writable place


def test_only_serial_devices_are_allowed(unit) -> None:
    allowed = unit["Service"]["DeviceAllow"]
    assert sorted(allowed) == sorted(["char-ttyUSB rw", "char-ttyACM rw", "char-ttyAMA rw", "char-ttyS rw"])
    assert "PrivateDevices" not in unit["Service"]  # it would hide the serial ports


def test_system_calls_are_filtered(unit) -> None:
    filters = unit["Service"]["SystemCallFilter"]
    assert filters[0] == "@system-service"
    assert "~@privileged @resources" in filters
    assert one(unit, "SystemCallErrorNumber") == "EPERM"


def test_start_reload_and_restart(unit) -> None:
    assert one(unit, "ExecStart") == "/opt/smartcity-edge/bin/smartcity edge --config /etc/smartcity/gateway.toml"
    assert one(unit, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(unit, "Type") == "exec"
    assert one(unit, "Restart") == "on-failure"
    assert one(unit, "RestartSec") == "10s"
    assert one(unit, "RestartPreventExitStatus") == "2"  # a config error: restarting cannot fix it
    assert one(unit, "StartLimitIntervalSec", "Unit") == "0"  # never give up on an unattended gateway
    assert one(unit, "WantedBy", "Install") == "multi-user.target"


def test_nothing_newer_than_debian_12s_systemd_252_and_no_watchdog_without_sd_notify(unit) -> None:
    for key in ("RestartSteps", "RestartMaxDelaySec", "WatchdogSec"):
        assert key not in unit["Service"], key
    assert "network-online.target" not in " ".join(unit["Unit"].get("After", []) + unit["Unit"].get("Wants", []))


def _testable_copy(tmp_path: Path) -> Path:
    # verify checks that ExecStart's program exists: point it at one that does; the rest is the real unit.
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/opt/smartcity-edge/bin/smartcity", shutil.which("true") or "/bin/true"))
    return copy


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    copy = _testable_copy(tmp_path)
    # verify exits 0 even for unknown keys and bad values: it only warns, so its output must be empty.
    result = subprocess.run([systemd_analyze(), "verify", str(copy)], check=False, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_systemd_rates_the_exposure_low(tmp_path: Path) -> None:
    copy = _testable_copy(tmp_path)
    # --threshold is on the 0-100 scale behind the 0-10 figure systemd prints: 20 means "2.0 or better".
    result = subprocess.run([systemd_analyze(), "security", "--offline=true", "--threshold=20", str(copy)],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


MDWE_PROBE = textwrap.dedent("""
    import ctypes, mmap, sys
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    libc = ctypes.CDLL(None, use_errno=True)
    # Linux < 6.3 lacks the rule: then the work runs without it, and the process's mappings are
    # checked after it instead (under the rule, no mapping may be writable and executable at once).
    enforced = libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0
    if enforced:
        try:
            mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        except OSError:
            pass
        else:
            print("not enforced"); sys.exit(3)
    # What the agent does, after the rule is in force: import everything, sign and check frames,
    # read a key file, make a TLS context with a CA, open a queue and a serial port.
    import os, pty, ssl, sys, tempfile
    from pathlib import Path
    import serial
    import edge.main, edge.agent, edge.gateway_config
    from core.mqtt import new_client
    from core.settings import MqttSettings
    from edge.durable_queue import DurableQueue
    from edge.lora_frame import decode_uplink, encode_uplink, verify
    from edge.lora_keys import KeyRing
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    d = Path(tempfile.mkdtemp())
    KeyRing.generate().save(d / "k.json")
    key = KeyRing.load(d / "k.json").key_for("0A0B0C01")
    assert verify(decode_uplink(encode_uplink("0A0B0C01", 7, bytes([1, 120, 50]), key)), key)
    pk = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([])
    import datetime
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(pk.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(pk, hashes.SHA256()))
    (d / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    new_client(MqttSettings(tls_ca=str(d / "ca.pem")), "probe")
    q = DurableQueue(d / "q.sqlite"); q.close()
    master, slave = pty.openpty()
    serial.Serial(os.ttyname(slave), 9600, timeout=0).close()
    wx = [line for line in open("/proc/self/maps") if line.split()[1].startswith("rwx")]
    if wx:
        print("writable and executable:", wx); sys.exit(4)
    print("ok")
""")


def test_the_agents_code_runs_with_memory_deny_write_execute() -> None:
    # MemoryDenyWriteExecute= is a seccomp rule in systemd; Linux >= 6.3 has the same rule per process
    # (prctl PR_SET_MDWE), which this probe sets on itself before doing the agent's work.
    result = subprocess.run([sys.executable, "-c", MDWE_PROBE], check=False, capture_output=True, text=True, timeout=60,
                            cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr
