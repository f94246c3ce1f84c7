"""JSON Patch (RFC 6902) on an entity's JSON, for ``PATCH`` with ``Content-Type: application/json-patch+json``.

SensorThings 1.1 allows it (18-088, 10.3.1) and frost_sta_client's ``patch`` sends it. The patch
is applied to the entity's properties (and may add navigation members that link by ``@iot.id``);
the result then goes through the same validation as a PUT body. Pointers follow RFC 6901.
"""

from __future__ import annotations

import copy
from typing import Any

from api.sta.write_validation import WriteError, short

MAX_OPERATIONS = 1_000


def _tokens(pointer: Any, where: str) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise WriteError(400, f"{where}: a JSON pointer must be '' or start with '/', got {short(pointer)}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _index(container: list[Any], token: str, where: str, *, adding: bool) -> int:
    if adding and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise WriteError(400, f"{where}: {short(token)} is not an array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not adding):
        raise WriteError(400, f"{where}: array index {index} out of range")
    return index


def _parent(doc: Any, tokens: list[str], where: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, where, adding=False)]
        else:
            raise WriteError(400, f"{where}: the path does not exist")
    return node


def _get(doc: Any, tokens: list[str], where: str) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens, where)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, where, adding=False)]
    raise WriteError(400, f"{where}: the path does not exist")


def _remove(doc: Any, tokens: list[str], where: str) -> Any:
    if not tokens:
        raise WriteError(400, f"{where}: cannot remove the whole entity")
    parent = _parent(doc, tokens, where)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, where, adding=False))
    raise WriteError(400, f"{where}: the path does not exist")


def _add(doc: Any, tokens: list[str], value: Any, where: str, *, replace: bool = False) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens, where)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise WriteError(400, f"{where}: the path does not exist")
        parent[last] = value
    elif isinstance(parent, list):
        index = _index(parent, last, where, adding=not replace)
        if replace:
            parent[index] = value
        else:
            parent.insert(index, value)
    else:
        raise WriteError(400, f"{where}: the path does not exist")
    return doc


def apply_patch(document: dict[str, Any], operations: Any) -> Any:
    """The document after the operations (the input is not changed); WriteError naming the failing one."""
    if not isinstance(operations, list):
        raise WriteError(400, "a JSON Patch body must be an array of operations")
    if len(operations) > MAX_OPERATIONS:
        raise WriteError(400, f"a JSON Patch may have at most {MAX_OPERATIONS} operations")
    doc: Any = copy.deepcopy(document)
    for i, op in enumerate(operations):
        where = f"JSON Patch operation {i}"
        if not isinstance(op, dict):
            raise WriteError(400, f"{where}: must be an object")
        name = op.get("op")
        path = _tokens(op.get("path"), where)
        if name in ("add", "replace", "test") and "value" not in op:
            raise WriteError(400, f"{where}: '{name}' needs a value")
        if name == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]), where)
        elif name == "replace":
            doc = _add(doc, path, copy.deepcopy(op["value"]), where, replace=True)
        elif name == "remove":
            _remove(doc, path, where)
        elif name in ("move", "copy"):
            source = _tokens(op.get("from"), where)
            if name == "move" and path[:len(source)] == source and len(path) > len(source):
                raise WriteError(400, f"{where}: cannot move a value into itself")
            value = _remove(doc, source, where) if name == "move" else copy.deepcopy(_get(doc, source, where))
            doc = _add(doc, path, value, where)
        elif name == "test":
            if _get(doc, path, where) != op["value"]:
                raise WriteError(409, f"{where}: test failed, the value differs")
        else:
            raise WriteError(400, f"{where}: unknown op {short(name)} (add, remove, replace, move, copy, test)")
    return doc
