"""deploy.influxdb against a real influxd: a port taken between choosing it and binding it is chosen again."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from deploy import influxdb
from deploy.processes import free_port

pytestmark = pytest.mark.integration


def test_a_port_taken_before_influxd_binds_it_is_chosen_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    ports = iter([taken])

    def choose(host: str = "127.0.0.1") -> int:
        # The first choice is a port someone else holds (the race CI met); then real free ones.
        return next(ports, None) or free_port(host)

    monkeypatch.setattr(influxdb, "free_port", choose)
    try:
        server = influxdb.start_influxd(tmp_path)
        try:
            assert server.http_port != taken
            assert server.url.endswith(f":{server.http_port}")
        finally:
            server.stop()
    finally:
        squatter.close()
