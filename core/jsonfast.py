"""JSON via orjson where installed (servers), else the standard library (a gateway needs no extra wheel)."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        """Serialise obj to compact UTF-8 JSON."""
        return orjson.dumps(obj)

    def loads(data: bytes | bytearray | str) -> Any:
        """Parse JSON; raises ValueError on malformed input."""
        return orjson.loads(data)

except ImportError:  # pragma: no cover - exercised on gateway installs without orjson

    def dumps(obj: Any) -> bytes:
        """Serialise obj to compact UTF-8 JSON."""
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()

    def loads(data: bytes | bytearray | str) -> Any:
        """Parse JSON; raises ValueError on malformed input."""
        return json.loads(data)
