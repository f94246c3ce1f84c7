"""Per device kind: CayenneLPP entries <-> the metrics of core.kinds, and the dim downlink.

Which channel/type pair carries which metric is declared once in ``UPLINK_LAYOUT``. A
payload with entries the layout does not know (or values a metric cannot take) still
yields every good metric: ``decode_metrics`` raises ``UnknownEntriesError`` whose
``metrics`` holds them, so a caller counts the problem and publishes ``exc.metrics``.
Raising (rather than returning quietly) makes a firmware/layout mismatch impossible to miss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from core.kinds import KINDS, ValueType
from edge.cayenne_lpp import LppError, LppType, LppValue, decode, decode_partial, encode

MetricValue = float | bool


class CodecError(ValueError):
    """A payload that does not fit the device kind, or a command value out of range."""


class UnknownEntriesError(CodecError):
    """Some entries were not understood; ``metrics`` holds the good values of the same payload."""

    def __init__(self, kind: str, metrics: dict[str, MetricValue], problems: list[str]) -> None:
        super().__init__(f"{kind}: {'; '.join(problems)}")
        self.kind = kind
        self.metrics = metrics
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Field:
    """Where one metric sits in an uplink and how its LPP value becomes the metric's value."""

    metric: str
    convert: Callable[[float | int], MetricValue]


def _number(value: float | int) -> MetricValue:
    return float(value)


def _flag(value: float | int) -> MetricValue:
    # Digital input and presence are 0/1; anything else means the firmware disagrees with us.
    if value not in (0, 1):
        raise ValueError(f"expected 0 or 1, got {value!r}")
    return value == 1


def _percent(value: float | int) -> MetricValue:
    if not 0 <= value <= 100:
        raise ValueError(f"expected 0-100 %, got {value!r}")
    return float(value)


def _count(value: float | int) -> MetricValue:
    # Analog input carries the count with two decimals; a people count is a whole number >= 0.
    if value < 0 or not float(value).is_integer():
        raise ValueError(f"expected a whole count >= 0, got {value!r}")
    return float(value)


def _seconds(value: float | int) -> MetricValue:
    if value < 0:
        raise ValueError(f"expected a duration >= 0 s, got {value!r}")
    return float(value)


UPLINK_LAYOUT: dict[str, dict[tuple[int, int], Field]] = {
    "street_light": {
        (1, LppType.PERCENTAGE): Field("dim_level", _percent),
        (2, LppType.POWER): Field("power", _number),
        (3, LppType.ENERGY): Field("energy", _number),
        (4, LppType.VOLTAGE): Field("voltage", _number),
        (5, LppType.TEMPERATURE): Field("temperature", _number),
        (6, LppType.DIGITAL_INPUT): Field("lamp_failure", _flag),
    },
    "occupancy": {
        (1, LppType.PRESENCE): Field("presence", _flag),
        (2, LppType.ANALOG_INPUT): Field("count", _count),
    },
    "parking_spot": {
        (1, LppType.PRESENCE): Field("occupied", _flag),
    },
    "traffic_light": {
        # Digital output: the state of the bike-priority request the controller is running.
        (1, LppType.DIGITAL_OUTPUT): Field("bike_priority", _flag),
        (2, LppType.ANALOG_INPUT): Field("cycle_time", _seconds),
    },
}

DIM_CHANNEL = 1
BIKE_PRIORITY_CHANNEL = 1


def _check_layout() -> None:
    # Fail at import, not at the first uplink, if the layout drifts from core.kinds.
    for kind, fields in UPLINK_LAYOUT.items():
        metrics = KINDS[kind].metrics
        for f in fields.values():
            if f.metric not in metrics:
                raise RuntimeError(f"layout of {kind} names unknown metric {f.metric!r}")


_check_layout()


def decode_metrics(kind: str, values: list[LppValue]) -> dict[str, MetricValue]:
    """Map decoded LPP entries to metrics; raises UnknownEntriesError (carrying the good ones) on problems."""
    layout = UPLINK_LAYOUT.get(kind)
    if layout is None:
        raise CodecError(f"no LoRa uplink layout for device kind {kind!r}")
    metrics: dict[str, MetricValue] = {}
    problems: list[str] = []
    for v in values:
        field = layout.get((v.channel, v.type))
        if field is None:
            problems.append(f"unknown entry channel {v.channel} type {v.type} value {v.value!r}")
            continue
        if isinstance(v.value, tuple):  # only GPS is a tuple, and no layout field uses it
            problems.append(f"{field.metric}: unexpected tuple value {v.value!r}")
            continue
        try:
            value = field.convert(v.value)
        except ValueError as exc:
            problems.append(f"{field.metric} (channel {v.channel}): {exc}")
            continue
        if field.metric in metrics:
            problems.append(f"{field.metric} (channel {v.channel}) appears more than once; kept the first")
            continue
        expected = KINDS[kind].metrics[field.metric].type
        if (expected is ValueType.BOOLEAN) != isinstance(value, bool) or (
                isinstance(value, float) and not math.isfinite(value)):
            problems.append(f"{field.metric}: value {value!r} does not fit a {expected.value} metric")
            continue
        metrics[field.metric] = value
    if problems:
        raise UnknownEntriesError(kind, metrics, problems)
    return metrics


def decode_payload(kind: str, payload: bytes) -> dict[str, MetricValue]:
    """Decode raw LPP bytes of a kind's uplink; entries before a truncated or unknown one are kept.

    Nothing decodable raises CodecError; a bad tail after good entries raises UnknownEntriesError
    carrying the good metrics (as entries the layout does not know do).
    """
    values, lpp_error = decode_partial(payload)
    if lpp_error is None:
        return decode_metrics(kind, values)
    if not values:
        raise CodecError(f"{kind}: {lpp_error}")
    try:
        metrics = decode_metrics(kind, values)
    except UnknownEntriesError as exc:
        raise UnknownEntriesError(kind, exc.metrics, [*exc.problems, str(lpp_error)]) from None
    raise UnknownEntriesError(kind, metrics, [str(lpp_error)])


def encode_dim(level: int) -> bytes:
    """The LPP payload of a street-light dim command: channel 1, percentage, level 0-100."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 100:
        raise CodecError(f"dim level must be an integer 0-100, got {level!r}")
    return encode([LppValue(DIM_CHANNEL, LppType.PERCENTAGE, level)])


def decode_dim(payload: bytes) -> int:
    """The level of a dim command payload; raises CodecError unless it is exactly one valid entry."""
    try:
        values = decode(payload)
    except LppError as exc:
        raise CodecError(f"dim payload: {exc}") from None
    if len(values) != 1 or values[0].channel != DIM_CHANNEL or values[0].type != LppType.PERCENTAGE:
        raise CodecError(f"dim payload must be one channel {DIM_CHANNEL} percentage entry, got {values!r}")
    level = values[0].value
    if not isinstance(level, int) or not 0 <= level <= 100:
        raise CodecError(f"dim level must be 0-100, got {level!r}")
    return level


def encode_bike_priority(enabled: bool) -> bytes:
    """The LPP payload of a bike-priority request: channel 1, digital output, 1 = on, 0 = off."""
    if not isinstance(enabled, bool):
        raise CodecError(f"bike priority must be true or false, got {enabled!r}")
    return encode([LppValue(BIKE_PRIORITY_CHANNEL, LppType.DIGITAL_OUTPUT, int(enabled))])


def decode_bike_priority(payload: bytes) -> bool:
    """The on/off of a bike-priority payload; raises CodecError unless it is exactly one valid entry."""
    try:
        values = decode(payload)
    except LppError as exc:
        raise CodecError(f"bike-priority payload: {exc}") from None
    if len(values) != 1 or values[0].channel != BIKE_PRIORITY_CHANNEL \
            or values[0].type != LppType.DIGITAL_OUTPUT or values[0].value not in (0, 1):
        raise CodecError(f"bike-priority payload must be one channel {BIKE_PRIORITY_CHANNEL} digital output "
                         f"entry of 0 or 1, got {values!r}")
    return values[0].value == 1
