"""The base install is enough for a gateway: `smartcity edge` and its config run in a fresh virtual
environment that holds the base dependencies (paho-mqtt, pyserial, pycryptodomex and what they need)
and nothing else.

The environment is built offline: the installed distributions of the base requirements (and theirs)
are linked into it, and the source tree is on its path as an editable install would put it. So the
test checks what pip would install from the base requirements, without a network. (edge/README.md
describes the real `pip install` of a wheel, which was checked by hand the same way.)
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
BASE = {"paho-mqtt", "pyserial", "pycryptodomex"}
SERVER_ONLY = ("numpy", "httpx", "fastapi", "uvicorn", "starlette", "pydantic", "orjson", "msgspec", "astral",
               "prometheus_client")


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


def base_requirements() -> set[str]:
    """The names smartcity requires without an extra, from its installed metadata (i.e. pyproject.toml)."""
    return {_name(r) for r in metadata.requires("smartcity") or [] if "extra ==" not in r}


def closure(names: set[str]) -> set[str]:
    """The names and everything they require (extras aside), as installed here."""
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [_name(r) for r in metadata.requires(name) or [] if "extra ==" not in r]
    return seen


def test_the_base_requirements_are_the_gateway_ones() -> None:
    assert base_requirements() == BASE


@pytest.fixture(scope="module")
def gateway_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gateway")
    site = root / "base-deps"
    site.mkdir()
    installed = Path(sysconfig.get_paths()["purelib"])
    for name in closure(base_requirements()):
        dist = metadata.distribution(name)
        for top in {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            link = site / top
            if not link.exists():
                link.symlink_to(Path(str(dist.locate_file(top))))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    venv_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip()
    # What the venv sees: the base deps and the source tree (an editable install's .pth does the same).
    Path(venv_site, "smartcity-gateway.pth").write_text(f"{site}\n{ROOT}\n")
    assert installed != Path(venv_site)
    return python


def _run(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), "-I", "-c", code], check=False, capture_output=True, text=True, timeout=60,
                          cwd="/")


def test_nothing_server_side_is_importable_there(gateway_python: Path) -> None:
    for module in SERVER_ONLY:
        result = _run(gateway_python, f"import {module}")
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, module


def test_smartcity_edge_runs_there(gateway_python: Path) -> None:
    result = _run(gateway_python, "import sys; from smartcity.cli import main; sys.exit(main(['edge', '--help']))")
    assert result.returncode == 0, result.stderr
    assert "--gateway" in result.stdout and "unavailable on this install" not in result.stdout


def test_the_config_and_its_watcher_work_there(gateway_python: Path) -> None:
    code = (
        "import edge.agent, edge.main\n"
        "from edge.config_watch import ConfigWatcher\n"
        "from edge.gateway_config import load_config, render_config\n"
        f"c = load_config({str(ROOT / 'deploy/samples/gateway.toml')!r}, files=False)\n"
        "assert render_config(c)\n"
        f"w = ConfigWatcher({str(ROOT / 'deploy/samples/gateway.toml')!r}, "
        "lambda p: load_config(p, files=False), lambda old, new: None)\n"
        "assert w.current == c\n"
        "print(len(c.devices))\n"
    )
    result = _run(gateway_python, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5"
