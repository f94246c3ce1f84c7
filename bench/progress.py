"""What every bench script shares: progress lines on stderr (stdout holds the results) and stopping what it
started, last started first, without one failed stop keeping the others running."""

from __future__ import annotations

import sys
from collections.abc import Callable


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def stop_all(stoppers: list[Callable[[], None]]) -> None:
    """Call each stopper in reverse order, log (not raise) what fails, and empty the list."""
    for stop in reversed(stoppers):
        try:
            stop()
        except Exception as exc:  # one server that will not stop must not leave the rest running
            log(f"stopping: {exc}")
    stoppers.clear()
