"""deploy/systemd/smartcity-backup.{service,timer}: the nightly backup, checked as the services' units are.

It must back up what the services' own units keep where they keep it, run a command the CLI accepts,
write nothing but the backup directory, and pass systemd's verify and a low exposure rating.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

from smartcity.cli import build_parser
from tests.deploy.test_systemd_unit import systemd_analyze
from tests.deploy.test_systemd_units import BINARY, SYSTEMD, exec_start, load, one, option

SERVICE, TIMER = "smartcity-backup.service", "smartcity-backup.timer"
BACKUPS = "/var/backups/smartcity"


def _environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in load(SERVICE)["Service"]["Environment"]:
        env.update(item.split("=", 1) for item in shlex.split(line))
    return env


def _command() -> list[str]:
    """The smartcity command inside ExecStart's sh -c, with the date substitution as a fixed name."""
    argv = shlex.split(one(load(SERVICE), "ExecStart"))
    assert argv[:2] == ["/bin/sh", "-c"], argv
    inner = argv[2].replace("$(date +%%Y-%%m-%%dT%%H%%M)", "2026-12-02T0230")
    assert "$" not in inner, inner
    words = shlex.split(inner)
    assert words[0] == "exec"
    return words[1:]


def test_the_command_line_is_one_the_cli_accepts() -> None:
    argv = _command()
    assert argv[0] == BINARY
    args = build_parser(argv[1:]).parse_args(argv[1:])
    assert args.command == "backup" and args.registry == "/etc/smartcity/registry.geojson"
    assert str(args.out) == f"{BACKUPS}/2026-12-02T0230.tar"  # an archive: one 0600 file


def test_it_backs_up_where_the_services_keep_their_state() -> None:
    env = _environment()
    rules, api = exec_start(load("smartcity-rules.service")), exec_start(load("smartcity-api.service"))
    assert env["SMARTCITY_STATE_DIR"] == option(rules, "--state-dir")
    assert env["SMARTCITY_RULES_CONTROL_DIR"] == str(Path(option(rules, "--alarms") or "").parent)
    assert env["SMARTCITY_API_STATE_DIR"] == option(api, "--state-dir")
    assert env["SMARTCITY_API_OPERATORS"] == option(api, "--operators")
    assert env["SMARTCITY_RULES"] == option(rules, "--rules")
    assert one(load(SERVICE), "EnvironmentFile") == "/etc/smartcity/backup.env"  # the InfluxDB admin, not in git


def test_it_writes_only_the_backup_directory() -> None:
    unit = load(SERVICE)
    assert one(unit, "ProtectSystem") == "strict" and one(unit, "ReadWritePaths") == BACKUPS
    assert one(unit, "NoNewPrivileges") == "yes" and one(unit, "UMask") == "0077"
    assert one(unit, "Type") == "oneshot"
    prune = one(unit, "ExecStartPost")
    assert prune.startswith(f"/usr/bin/find {BACKUPS} -maxdepth 1 -name '*.tar'") and "-delete" in prune


def test_the_timer_runs_it_nightly_and_catches_up() -> None:
    timer = load(TIMER)
    assert one(timer, "Unit", "Timer") == SERVICE
    assert one(timer, "OnCalendar", "Timer") == "*-*-* 02:30:00"
    assert one(timer, "Persistent", "Timer") == "true"
    assert one(timer, "WantedBy", "Install") == "timers.target"


def _testable(tmp_path: Path) -> tuple[Path, Path]:
    service = tmp_path / SERVICE
    service.write_text((SYSTEMD / SERVICE).read_text().replace("/bin/sh", shutil.which("sh") or "/bin/sh"))
    timer = tmp_path / TIMER
    timer.write_text((SYSTEMD / TIMER).read_text())
    return service, timer


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    service, timer = _testable(tmp_path)
    result = subprocess.run([systemd_analyze(), "verify", str(service), str(timer)], check=False,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_systemd_rates_the_exposure_low(tmp_path: Path) -> None:
    service, _ = _testable(tmp_path)
    # Root (it reads every service's state), so not the services' 1.2; 20 = "2.0 or better".
    result = subprocess.run([systemd_analyze(), "security", "--offline=true", "--threshold=20", str(service)],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
