"""Parsing of SensorThings resource paths (OGC 18-088, 9.2): what a URL after ``/v1.1/`` addresses.

``Things``, ``Things('x')``, ``Things('x')/Datastreams``, ``Datastreams('x')/Thing/Locations``,
``Things('x')/Datastreams('y')``, ``Things('x')/name``, ``Things('x')/name/$value``,
``Things('x')/Datastreams/$ref``, ``Things('x')/$ref``, and members of JSON-object properties:
``Datastreams('x')/unitOfMeasurement/symbol``, ``Things('x')/properties/wijk/$value``. Ids are OData
string literals (quotes doubled inside); a bare id (``Things(12)``) is taken as its text, since every
id here is a string. Segments arrive still percent-encoded (from the raw path), so an encoded ``/`` inside an id does
not split it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from api.sta.model import NAVIGATION, PROPERTIES, EntitySet

_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\((.*)\))?$", re.DOTALL)
_SET_NAMES = {s.value: s for s in EntitySet}
MAX_SEGMENTS = 16


class PathError(Exception):
    """A path that addresses nothing (404) or is malformed (400); the message is safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Step:
    """One entity-set or navigation segment: its set, the navigation name (None at the root), an id."""

    set: EntitySet
    nav: str | None
    ident: str | None
    many: bool  # what the step yields without an id: a collection (True) or one entity


@dataclass(frozen=True, slots=True)
class ResourcePath:
    """A parsed path: entity steps, then optionally a property, its $value, or $ref."""

    steps: tuple[Step, ...]
    prop: str | None = None
    keys: tuple[str, ...] = ()  # member names inside a JSON-object property
    value: bool = False
    ref: bool = False

    @property
    def target(self) -> EntitySet:
        """The set of what the last step addresses."""
        return self.steps[-1].set

    @property
    def is_collection(self) -> bool:
        """True when the path (before a property) addresses a collection."""
        last = self.steps[-1]
        return last.many and last.ident is None


def short(text: str, limit: int = 60) -> str:
    """User text shortened for an error message (bodies never echo much input)."""
    return text if len(text) <= limit else text[:limit] + "..."


def _ident(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == "'" and raw[-1] == "'":
        inner = raw[1:-1]
        if re.search(r"(?<!')'(?!')", inner.replace("''", "")):
            raise PathError(400, f"malformed id literal: {short(raw)}")
        return inner.replace("''", "'")
    if not raw or "'" in raw:
        raise PathError(400, f"malformed id literal: {short(raw)}")
    return raw


def _split(segment: str) -> tuple[str, str | None]:
    match = _SEGMENT.match(segment)
    if match is None:
        raise PathError(404, f"no such resource: {short(segment)}")
    return match.group(1), None if match.group(2) is None else _ident(match.group(2))


def parse_path(raw_segments: list[str]) -> ResourcePath:
    """Parse the (still percent-encoded) segments after the version; PathError when they address nothing."""
    segments = [unquote(s) for s in raw_segments]
    if segments and segments[-1] == "":
        segments.pop()  # a trailing slash
    if not segments:
        raise PathError(404, "no resource named")
    if len(segments) > MAX_SEGMENTS:
        raise PathError(400, f"path too deep (more than {MAX_SEGMENTS} segments)")
    name, ident = _split(segments[0])
    if name not in _SET_NAMES:
        raise PathError(404, f"no such entity set: {short(name)}")
    steps = [Step(_SET_NAMES[name], None, ident, True)]
    rest = segments[1:]
    while rest:
        segment = rest[0]
        last = steps[-1]
        single = not last.many or last.ident is not None
        if segment == "$ref":
            if len(rest) > 1:
                raise PathError(400, "$ref must be the last segment")
            return ResourcePath(tuple(steps), ref=True)
        name, ident = _split(segment)
        nav = NAVIGATION[last.set].get(name)
        if nav is not None:
            if not single:
                raise PathError(400, f"navigation from a collection: select one entity before /{short(name)}")
            if ident is not None and not nav.many:
                raise PathError(400, f"{short(name)} is a single entity: no id may follow it")
            steps.append(Step(nav.target, name, ident, nav.many))
            rest = rest[1:]
            continue
        if name in PROPERTIES[last.set] or name == "id":
            if not single or ident is not None:
                raise PathError(400, f"property {short(name)} of a collection: select one entity first")
            tail = rest[1:]
            value = bool(tail) and tail[-1] == "$value"
            keys = tuple(tail[:-1] if value else tail)  # into a JSON object: unitOfMeasurement/symbol
            if any(not k or k.startswith("$") for k in keys) or (keys and name == "id"):
                raise PathError(404, f"no such resource: {short('/'.join(tail))}")
            return ResourcePath(tuple(steps), prop=name, value=value, keys=keys)
        raise PathError(404, f"{last.set} has no property or navigation {short(name)}")
    return ResourcePath(tuple(steps))
