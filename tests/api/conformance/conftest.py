"""The full API (api.app.create_app) on a real uvicorn and a real influxd, for black-box tests.

A copy of the demo registry with vs-sl-102 reclassified 'vertrouwelijk', known readings stored
the way the ingest stores them (ingest.points.pack_lines), an operators file with an admin, an
operator and a viewer, and the API's state in tmp_path. Anonymous rate limiting is off: the
walks and the schema fuzz make thousands of requests from one address.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.operators.roles import Role
from api.operators.users import write_users_file
from api.settings import ApiSettings
from core import jsonfast
from core.influx import InfluxClient
from core.registry import load
from core.senml import encode
from core.senml_columns import decode_columns
from core.settings import InfluxSettings
from deploy.influxdb import Influxd
from deploy.processes import free_port
from ingest.points import Rejects, pack_lines
from ingest.series_table import SeriesTable
from smartcity.data import demo_registry_path
from tests.api.conformance import data
from tests.api.conformance.sta import Sta
from tests.conftest import wait_for

USERS = {"admin": ("conf-admin", "admin-password-1234"),
         "operator": ("conf-operator", "operator-password-1234"),
         "viewer": ("conf-viewer", "viewer-password-1234")}


@dataclass
class Served:
    """The running API: its base URL, the readings' base time, where its files are."""

    url: str
    base: int
    registry_path: Path
    influx: InfluxClient


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    """The demo registry with the classified device."""
    doc = jsonfast.loads(demo_registry_path().read_bytes())
    for f in doc["features"]:
        if f["properties"]["id"] == data.CLASSIFIED:
            f["properties"]["classification"] = "vertrouwelijk"
    path = tmp_path / "registry.geojson"
    path.write_bytes(jsonfast.dumps(doc))
    return path


def store(influx: InfluxClient, registry_path: Path, now: float, base: int) -> None:
    """Store the known readings through the ingest's packing and validation; none may be rejected."""
    table = SeriesTable(load(registry_path))
    for gateway, rs in data.readings(base).items():
        rejects = Rejects()
        lines = pack_lines(gateway, decode_columns(encode(rs, 0)), table, now=now, rejects=rejects)
        assert not rejects.counts, rejects.first
        influx.write("\n".join(lines), precision="u")


@pytest.fixture(scope="session")
def users_text(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The operators file, hashed once per session (argon2id is slow by design)."""
    path = tmp_path_factory.mktemp("operators") / "operators.toml"
    write_users_file(path, [(name, Role(role), pw) for role, (name, pw) in USERS.items()])
    return path.read_bytes()


@pytest.fixture
def served(tmp_path: Path, influxd: Influxd, influx: InfluxClient, registry_file: Path,
           users_text: bytes) -> Iterator[Served]:
    """The app on a free loopback port with the known readings stored."""
    now = time.time()
    base = data.base_time(now)
    store(influx, registry_file, now, base)
    operators = tmp_path / "operators.toml"
    operators.touch(0o600)
    operators.write_bytes(users_text)
    settings = ApiSettings(str(registry_file), InfluxSettings(influxd.url, influx.config.database),
                           state_dir=str(tmp_path / "state"), operators_path=str(operators),
                           anonymous_rate_limit=0)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 15)
    yield Served(f"http://127.0.0.1:{port}", base, registry_file, influx)
    server.should_exit = True
    thread.join(10)


def _client(served: Served, role: str | None) -> httpx.Client:
    auth = USERS[role] if role else None
    return httpx.Client(base_url=served.url, timeout=30, auth=auth)


@pytest.fixture
def anon(served: Served) -> Iterator[Sta]:
    """An anonymous open-data client."""
    with _client(served, None) as c:
        yield Sta(c)


@pytest.fixture
def operator(served: Served) -> Iterator[httpx.Client]:
    """A client logged in (HTTP Basic) as the operator."""
    with _client(served, "operator") as c:
        yield c


@pytest.fixture
def viewer(served: Served) -> Iterator[httpx.Client]:
    """A client logged in as the viewer (may read operator pages, may not write)."""
    with _client(served, "viewer") as c:
        yield c


@pytest.fixture
def admin(served: Served) -> Iterator[httpx.Client]:
    """A client logged in as the admin."""
    with _client(served, "admin") as c:
        yield c
