"""Every test here must stop the threads it starts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.firmware_sim.support import no_thread_leaks


@pytest.fixture(autouse=True)
def _threads_stopped() -> Iterator[None]:
    yield from no_thread_leaks()
