"""Process plumbing shared by every service's main: logging and signals."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType


def setup_logging(level: str) -> None:
    """Log to stderr with time, level and logger name."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO; that floods the logs of a service writing every 200 ms.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def stop_event() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so that services stop cleanly on either."""
    event = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        event.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return event


def on_sighup(callback: Callable[[], object]) -> None:
    """Run callback on SIGHUP (the conventional 'reload your configuration')."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        callback()

    signal.signal(signal.SIGHUP, handler)


def run_until_stopped(duration: float | None) -> None:
    """Block until SIGINT/SIGTERM, or until duration seconds have passed if given."""
    stop_event().wait(duration)
