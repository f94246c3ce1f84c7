"""An app with only the operators' part, served by a real uvicorn, with real influxd and mosquitto.

Only this part is installed (not api.app.create_app with every part) so that these tests say
what the operators' code does; tests/api/operators/test_app_wiring.py checks the full app.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI

from api.app import open_clients
from api.operators import setup, users
from api.operators.auth import Role
from api.operators.users import write_users_file
from api.settings import ApiSettings
from core.influx import InfluxClient
from core.settings import InfluxSettings
from deploy.influxdb import Influxd
from deploy.mosquitto import Broker
from deploy.processes import free_port
from smartcity.data import demo_registry_path
from tests.conftest import settings_for, wait_for

PASSWORDS = {"vera": "viewer-password-1", "otto": "operator-password-1", "ada": "admin-password-1"}
ROLES = {"vera": Role.VIEWER, "otto": Role.OPERATOR, "ada": Role.ADMIN}


@dataclass
class Served:
    """The served app: its URL, settings and the app (for app.state)."""

    url: str
    settings: ApiSettings
    app: FastAPI

    def client(self, user: str | None = None, **kwargs: object) -> httpx.Client:
        """An HTTP client of the app, logged in as user (HTTP Basic) or anonymous."""
        auth = (user, PASSWORDS[user]) if user else None
        return httpx.Client(base_url=self.url, auth=auth, timeout=20, **kwargs)  # type: ignore[arg-type]


def operators_app(settings: ApiSettings) -> FastAPI:
    """A FastAPI app with the operators' part only, opened the way api.app.create_app opens it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        close_clients = open_clients(app, settings)
        close = setup.open_state(app, settings)
        try:
            yield
        finally:
            close()
            close_clients()

    app = FastAPI(lifespan=lifespan)
    for router in setup.routers():
        app.include_router(router)
    return app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve app on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


# argon2id at its production cost takes ~0.5 s per hash on a small CI machine; the tests' operators
# get hashes of a cheap profile (still argon2id: verification reads the cost from the hash itself).
CHEAP = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


@pytest.fixture
def users_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An operators file with a viewer (vera), an operator (otto) and an admin (ada)."""
    monkeypatch.setattr(users, "hasher", CHEAP)
    path = tmp_path / "secrets" / "operators.toml"
    write_users_file(path, [(name, ROLES[name], pw) for name, pw in PASSWORDS.items()])
    return path


RULES = """
version = 2

[[rules]]
name = "presence-lighting"
description = "Lights up where people are"
kind = "occupancy"
group_by = "wijk"
values.present = { metric = "presence" }
when = "present > 0"
clear_when = "present == 0"
urgent = true
on_activate = [{ command = "dim", params = { level = 100 }, targets = { kind = "street_light" } }]
on_clear = [{ command = "dim", params = { level = 20 }, targets = { kind = "street_light" } }]

[[rules]]
name = "rain-bike-priority"
kind = "rain_gauge"
group_by = "wijk"
values.rain = { metric = "rain_intensity" }
when = "rain > 0.5"
on_activate = [{ command = "bike_priority", params = { enabled = true }, targets = { kind = "traffic_light" } }]
on_clear = [{ command = "bike_priority", params = { enabled = false }, targets = { kind = "traffic_light" } }]
"""


@pytest.fixture
def op_settings(tmp_path: Path, influxd: Influxd, influx: InfluxClient, broker: Broker,  # noqa: PLR0917 (fixtures)
                users_file: Path, monkeypatch: pytest.MonkeyPatch) -> ApiSettings:
    """Settings of the operators' part: real influxd, the broker's "api" account, files under tmp_path.

    The rules service's files are under tmp_path/rules (alarms.sqlite and the control files);
    gateway provisioning edits the test broker's password file and signals it through a pid file.
    """
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    pid_file = tmp_path / "mosquitto.pid"
    pid_file.write_text(str(broker.child.pid))
    assert broker.config_path is not None
    monkeypatch.setenv("SMARTCITY_MOSQUITTO_PASSWORD_FILE", str(broker.config_path.parent / "passwd"))
    monkeypatch.setenv("SMARTCITY_MOSQUITTO_PID_FILE", str(pid_file))
    return ApiSettings(str(demo_registry_path()), InfluxSettings(influxd.url, influx.config.database),
                       state_dir=str(tmp_path / "state"), operators_path=str(users_file),
                       mqtt=settings_for(broker, "api"), rules_path=str(rules),
                       alarms_path=str(tmp_path / "rules" / "alarms.sqlite"))


@pytest.fixture
def make_served(op_settings: ApiSettings) -> Iterator[Callable[..., Served]]:
    """A factory serving the operators' app (settings may be replaced); all stopped at teardown."""
    stack = ExitStack()

    def make(settings: ApiSettings | None = None) -> Served:
        s = settings or op_settings
        app = operators_app(s)
        url = stack.enter_context(serve(app))
        return Served(url, s, app)

    with stack:
        yield make


@pytest.fixture
def served(make_served: Callable[..., Served]) -> Served:
    """The operators' app, served."""
    return make_served()
