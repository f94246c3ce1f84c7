"""JSON via orjson where installed (servers), else the standard library (a gateway needs no extra wheel).

The standard-library functions are named (stdlib_loads, stdlib_dumps) so tests can run the gateway's
code path on a machine that has orjson. ``SMARTCITY_JSON=stdlib`` in the environment makes a whole
process use the standard library although orjson is installed, as a gateway's base install does
(the edge benchmark measures the agent that way: orjson alone is 1.2 MB of resident memory).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any


def stdlib_dumps(obj: Any) -> bytes:
    """Serialise obj to compact UTF-8 JSON with the standard library (no NaN or infinity)."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def stdlib_loads(data: bytes | bytearray | str) -> Any:
    """Parse JSON with the standard library; raises ValueError on malformed input."""
    try:
        return json.loads(data)
    except RecursionError:  # orjson refuses deep nesting with a ValueError; the stdlib recurses
        raise ValueError("JSON nested too deeply") from None


dumps: Callable[[Any], bytes] = stdlib_dumps
loads: Callable[[bytes | bytearray | str], Any] = stdlib_loads

if os.environ.get("SMARTCITY_JSON") != "stdlib":
    try:
        import orjson

        dumps = orjson.dumps
        loads = orjson.loads
    except ImportError:  # pragma: no cover - exercised on gateway installs without orjson
        pass
