"""Commands (platform -> edge) and acknowledgements (edge -> platform) of contract v1."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from core import jsonfast
from core.numbers import finite_float
from core.topics import TopicError, check_id


class AckStatus(StrEnum):
    """What became of a command on the gateway."""

    APPLIED = "applied"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"


class Action(StrEnum):
    """Device actions the contract defines; each is idempotent desired state."""

    DIM = "dim"
    BIKE_PRIORITY = "bike_priority"


_E = TypeVar("_E", bound=StrEnum)


class CommandError(ValueError):
    """A command or ack payload that does not follow the contract."""


@dataclass(frozen=True, slots=True)
class Command:
    """Desired state for one device: the latest per (device, action) wins."""

    device: str
    action: Action
    params: dict[str, Any]
    origin: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    issued_at: float = field(default_factory=time.time)
    expires_at: float | None = None

    def to_json(self) -> bytes:
        """Serialise to the wire form."""
        return jsonfast.dumps({**asdict(self), "action": self.action.value})

    def expired(self, now: float) -> bool:
        """True once the command may no longer be applied."""
        return self.expires_at is not None and now > self.expires_at


def dim_level(params: dict[str, Any]) -> int:
    """The validated 0-100 level of a dim command."""
    level = params.get("level")
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 <= level <= 100:
        raise CommandError(f"dim 'level' must be a number 0-100: {level!r}")
    return round(level)


def bike_priority(params: dict[str, Any]) -> bool:
    """The validated on/off of a bike_priority command ({"enabled": true|false})."""
    enabled = params.get("enabled")
    if type(enabled) is not bool:
        raise CommandError(f"bike_priority needs params.enabled true or false: {str(enabled)[:40]}")
    return enabled


def _require(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CommandError(f"'{key}' missing or of the wrong type: {value!r}")
    return value


def _finite(value: object, key: str) -> float:
    number = finite_float(value)
    if number is None:
        raise CommandError(f"'{key}' must be a finite number: {str(value)[:40]}")
    return number


def _json_object(payload: bytes | bytearray | str, what: str) -> dict[str, Any]:
    try:
        obj = jsonfast.loads(payload)
    except ValueError as exc:
        raise CommandError(f"{what} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CommandError(f"{what} must be a JSON object")
    return obj


def _member(enum: type[_E], obj: dict[str, Any], key: str) -> _E:
    try:
        return enum(_require(obj, key, str))
    except ValueError:
        raise CommandError(f"unknown {key}: {obj.get(key)!r}") from None


def parse_command(payload: bytes | bytearray | str) -> Command:
    """Parse and validate a command payload; raises CommandError naming the problem."""
    obj = _json_object(payload, "command")
    action = _member(Action, obj, "action")
    params = obj.get("params", {})
    if not isinstance(params, dict):
        raise CommandError(f"'params' must be an object: {params!r}")
    expires = obj.get("expires_at")
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
        raise CommandError(f"'expires_at' must be a finite number or null: {str(expires)[:40]}")
    expires = None if expires is None else _finite(expires, "expires_at")
    issued_at = _finite(_require(obj, "issued_at", (int, float)), "issued_at")
    try:
        device = check_id(_require(obj, "device", str), "device")
    except TopicError as exc:
        raise CommandError(str(exc)) from None
    cmd = Command(
        device=device,
        action=action,
        params=params,
        origin=_require(obj, "origin", str),
        id=_require(obj, "id", str),
        issued_at=issued_at,
        expires_at=expires,
    )
    if cmd.action is Action.DIM:
        dim_level(cmd.params)
    elif cmd.action is Action.BIKE_PRIORITY:
        bike_priority(cmd.params)
    return cmd


@dataclass(frozen=True, slots=True)
class Ack:
    """The gateway's answer to one command."""

    id: str
    device: str
    status: AckStatus
    detail: str = ""
    # When the gateway acknowledged (unix seconds; optional on the wire). The ingest stores the ack at this
    # time, so an ack the broker delivers twice (after a restart) is the same point, not a second one.
    at: float | None = None

    def to_json(self) -> bytes:
        """Serialise to the wire form."""
        body: dict[str, object] = {"id": self.id, "device": self.device, "status": self.status.value,
                                   "detail": self.detail}
        if self.at is not None:
            body["at"] = self.at
        return jsonfast.dumps(body)


def parse_ack(payload: bytes | bytearray | str) -> Ack:
    """Parse and validate an ack payload; raises CommandError naming the problem."""
    obj = _json_object(payload, "ack")
    status = _member(AckStatus, obj, "status")
    detail = obj.get("detail", "")
    at = obj.get("at")
    if at is not None and (isinstance(at, bool) or not isinstance(at, int | float)):
        raise CommandError(f"ack 'at' must be a number (unix seconds), not {type(at).__name__}")
    return Ack(_require(obj, "id", str), _require(obj, "device", str), status,
               detail if isinstance(detail, str) else str(detail),
               None if at is None else _finite(float(at), "at"))
