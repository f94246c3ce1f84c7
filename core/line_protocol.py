"""InfluxDB line protocol built with f-strings (performance.md: ~10x faster than client Point objects)."""

from __future__ import annotations

import math
from collections.abc import Mapping

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": "", "\r": ""})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": "", "\r": ""})


def escape_tag(value: str) -> str:
    """Escape a tag key or value (or a field key)."""
    return value.translate(_TAG_ESCAPES)


def escape_measurement(value: str) -> str:
    """Escape a measurement name."""
    return value.translate(_MEASUREMENT_ESCAPES)


def field_value(value: float | int | bool | str) -> str:
    """Render a field value: floats plain, booleans true/false, strings quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"InfluxDB cannot store a non-finite float: {value}")
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def line(measurement: str, tags: Mapping[str, str], fields: Mapping[str, float | int | bool | str],
         time_ns: int) -> str:
    """One line of line protocol; tags are sorted as InfluxDB recommends for write speed."""
    if not fields:
        raise ValueError("a point needs at least one field")
    tag_part = "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if v)
    field_part = ",".join(f"{escape_tag(k)}={field_value(v)}" for k, v in fields.items())
    return f"{escape_measurement(measurement)}{tag_part} {field_part} {time_ns}"
