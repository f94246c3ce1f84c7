"""The ``env`` fixture of the rules service tests: a RulesHarness (tests/rules/test_service.py), closed at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.mosquitto import Broker
from tests.rules.test_service import RulesHarness


@pytest.fixture
def env(broker: Broker, mqtt_client: Any, tmp_path: Path) -> Iterator[RulesHarness]:
    """A test's city and its rules services; every service it started is stopped afterwards."""
    harness = RulesHarness(broker, mqtt_client, tmp_path)
    yield harness
    harness.close()
