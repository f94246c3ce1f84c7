"""The rules worker's state on disk: one .npz file, written atomically, read without pickle.

numpy arrays of the engine's state are members of the zip as they are; everything else (scalars,
strings, lists, dicts) is one JSON member, in which each array is a placeholder naming its member.
Loading uses allow_pickle=False: a snapshot is data, and a tampered file must not run code. A write
goes to a temporary file that is fsync'd, renamed over the old one and its directory fsync'd, so a
crash at any moment leaves either the previous snapshot or the new one, never a torn file.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.npyio import NpzFile

from core.private_file import atomic_writer

FORMAT = 1
SNAPSHOT_MODE = 0o600  # rule state names devices and groups: for the service user alone
_META = "__snapshot__"
_ARRAY = "$npz"  # {"$npz": "a3"}: the array stored as member a3


class SnapshotError(ValueError):
    """A snapshot file that cannot be read back (corrupt, truncated, or not one of ours)."""


def _to_json(value: Any, arrays: dict[str, np.ndarray[Any, Any]]) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("an object array cannot be stored without pickle")
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {_ARRAY: name}
    if isinstance(value, dict):
        return {str(k): _to_json(v, arrays) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a snapshot")


def _from_json(value: Any, arrays: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and _ARRAY in value:
            return arrays[value[_ARRAY]]
        return {k: _from_json(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v, arrays) for v in value]
    return value


def save(path: Path, state: dict[str, Any], meta: dict[str, Any] | None = None) -> int:
    """Write state (and service metadata) to path atomically; returns the file's size in bytes."""
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    doc = {"format": FORMAT, "meta": meta or {}, "state": _to_json(state, arrays)}
    # NaN and infinity are legal state (a missing value, a last clear that never was); Python's JSON keeps them.
    text = json.dumps(doc, allow_nan=True, separators=(",", ":")).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path, SNAPSHOT_MODE) as fh:
        members: dict[str, Any] = {_META: np.frombuffer(text, dtype=np.uint8), **arrays}
        np.savez(fh, allow_pickle=False, **members)
    return path.stat().st_size


def load(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read (state, meta) back; raises FileNotFoundError if absent, SnapshotError if it cannot be read."""
    try:
        # Our own file object, closed whatever np.load makes of the bytes (it leaks its own on some errors).
        with path.open("rb") as fh:
            loaded = np.load(fh, allow_pickle=False)
            if not isinstance(loaded, NpzFile):
                raise ValueError("not an .npz archive")
            with loaded as npz:
                members = {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, zlib.error) as exc:
        raise SnapshotError(f"snapshot {path} cannot be read: {type(exc).__name__}: {str(exc)[:200]}") from None
    # NpzFile hands back the raw bytes of a member that is not a valid .npy: corrupt, for us.
    broken = sorted(name for name, member in members.items() if not isinstance(member, np.ndarray))
    if broken:
        raise SnapshotError(f"snapshot {path}: member {broken[0]} is not an array")
    raw = members.pop(_META, None)
    if raw is None or raw.dtype != np.uint8:
        raise SnapshotError(f"snapshot {path} has no {_META} member: not a rules snapshot")
    try:
        doc = json.loads(raw.tobytes())
    except ValueError as exc:
        raise SnapshotError(f"snapshot {path}: its {_META} member is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("state"), dict):
        raise SnapshotError(f"snapshot {path}: unknown format {doc.get('format') if isinstance(doc, dict) else doc!r}")
    try:
        state = _from_json(doc["state"], members)
    except KeyError as exc:
        raise SnapshotError(f"snapshot {path}: array member {exc} is missing") from None
    meta = doc.get("meta")
    return state, meta if isinstance(meta, dict) else {}
