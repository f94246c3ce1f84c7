"""Rule files (rules.rule_file) and registry files (core.registry): a result or the documented error.

Services load these at start and on every reload; an exception other than RuleFileError or
RegistryError would kill a reload loop instead of keeping the last good file. Inputs: the
shipped examples with their trees mutated (a field replaced by a value of the wrong type, a huge
or non-finite number, a long or nasty string, deleted, an unknown key added, a list entry repeated)
and their text mutated (tokens inserted, truncated, case flipped), plus plain random text.
Invariant: the refusal is the documented type and names the source and what is wrong.
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core import registry
from rules import rule_file
from rules.rule_file_v1 import to_toml
from smartcity.data import demo_registry_path
from tests.edge.test_parser_fuzz import json_backend
from tests.fuzz.support import FUZZ, NASTY_TOKENS, mutated_bytes, mutated_text

EXAMPLES_DIR = Path(rule_file.__file__).parent / "examples"
RULE_TEXTS = {p.name: p.read_text() for p in sorted(EXAMPLES_DIR.glob("*.toml"))}
RULE_DATA = {name: tomllib.loads(text) for name, text in RULE_TEXTS.items()}
REGISTRY_BYTES = demo_registry_path().read_bytes()
REGISTRY = json.loads(REGISTRY_BYTES)

# Values of every TOML type (and JSON's null for the registry), many of them wrong for any field.
_junk = st.recursive(
    st.one_of(st.booleans(), st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 2**63, 10**400]),
              st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e308, -0.0, 5e-324]),
              st.text(max_size=20), st.sampled_from(NASTY_TOKENS),
              st.sampled_from(["", "*", "10m", "-5s", "P1D", "sunset-30m", "25:00", "x > 1", "x >", "dim", "GM0626",
                               "WK062601", "street_light", "gw-vs-01", "openbaar", "lora", "Europe/Nowhere"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)
_tree_ops = st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 4), _junk), min_size=1, max_size=4)


def _paths(node: Any, path: tuple[Any, ...], out: list[tuple[Any, ...]], keep: Any) -> None:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        here = (*path, key)
        if not keep(here):
            out.append(here)
        _paths(value, here, out, keep)


def mutate_tree(data: Any, ops: list[tuple[int, int, Any]], keep: Any = lambda path: False) -> Any:
    """A copy of data with ops applied at random places; keep(path) protects a path's type (not its content)."""
    data = copy.deepcopy(data)
    for where, action, junk in ops:
        paths: list[tuple[Any, ...]] = []
        _paths(data, (), paths, keep)
        if not paths:
            break
        path = paths[where % len(paths)]
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if action == 0:
            parent[key] = junk
        elif action == 1:
            del parent[key]
        elif action == 2 and isinstance(parent[key], dict):
            parent[key]["unknwon" if not isinstance(junk, str) or not junk else junk] = junk  # an unknown key
        elif action == 3 and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))  # a repeated entry (duplicate names, ids)
        else:
            parent[key] = [parent[key]] if not isinstance(parent[key], list) else {"0": parent[key]}
    return data


def _rules_keep(path: tuple[Any, ...]) -> bool:
    # to_toml writes top-level keys then [[rules]] tables: those two shapes must stay (text mutations break them).
    return path == ("rules",) or (len(path) == 2 and path[0] == "rules")


def _to_toml(data: dict[str, Any]) -> str:
    return to_toml(data)


_rule_trees = st.tuples(st.sampled_from(sorted(RULE_DATA)), _tree_ops).map(
    lambda p: _to_toml(mutate_tree(RULE_DATA[p[0]], p[1], _rules_keep)))
_rule_texts = st.integers(0, 9).flatmap(
    lambda i: _rule_trees if i < 5 else st.text(max_size=200) if i == 9
    else mutated_text(st.sampled_from(sorted(RULE_TEXTS.values()))))


def _check_rule_error(exc: rule_file.RuleFileError, source: str) -> None:
    message = str(exc)
    assert message.startswith(f"{source}: ") or message.startswith(f"cannot read rule file {source}"), message
    assert len(message) > len(source) + 10, message  # it says what is wrong, not just where


@FUZZ
@given(text=_rule_texts)
@example(text="version = 2\n" + "x = " + "[" * 2000 + "]" * 2000)
@example(text="version = " + "9" * 5000)
@example(text='version = 2\n[[rules]]\nname = "a"\nkind = "rain_gauge"\nvalues.x = { metric = "accumulation" }\n'
              'when = "' + "(" * 3000 + "x" + ")" * 3000 + ' > 1"\n')
def test_a_rule_text_loads_or_is_refused_naming_source_and_problem(text: str) -> None:
    try:
        ruleset = rule_file.parse_rules(text, source="fuzz.toml")
    except rule_file.RuleFileError as exc:
        _check_rule_error(exc, "fuzz.toml")
        return
    assert all(rule.name for rule in ruleset.rules)


@FUZZ
@given(raw=st.one_of(mutated_bytes(st.sampled_from(sorted(t.encode() for t in RULE_TEXTS.values()))),
                     st.binary(max_size=200)))
def test_a_rule_file_loads_or_is_refused_naming_the_file(raw: bytes, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz-rules.toml"
    path.write_bytes(raw)
    try:
        rule_file.load_rules(path)
    except rule_file.RuleFileError as exc:
        _check_rule_error(exc, str(path))


@FUZZ
@given(ops=_tree_ops)
def test_a_registry_document_parses_or_is_refused_with_a_message(ops: list[tuple[int, int, Any]]) -> None:
    data = mutate_tree(REGISTRY, ops)
    try:
        reg = registry.parse(data)
    except registry.RegistryError as exc:
        assert len(str(exc)) > 10, exc
        return
    for device in reg.devices.values():
        assert device.gateway in reg.gateways  # what parses is consistent


@FUZZ
@given(raw=st.one_of(mutated_bytes(st.just(REGISTRY_BYTES)), st.binary(max_size=200),
                     st.tuples(_tree_ops).map(lambda p: json.dumps(mutate_tree(REGISTRY, p[0])).encode())))
@example(raw=b"[" * 100_000)
@example(raw=b'{"type":"FeatureCollection","cbs_map_year":' + b"9" * 5000 + b',"features":[]}')
def test_a_registry_file_loads_or_is_refused_naming_the_file(raw: bytes, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz-registry.geojson"
    path.write_bytes(raw)
    try:
        registry.load(path)
    except registry.RegistryError as exc:
        assert len(str(exc)) > 10, exc


# --- regressions: crashes this file found (fixed in core.registry) ---

_HUGE = 10**400  # a JSON integer beyond float range: the standard library's parser reads it, float() overflows


def _registry_with_coordinates(coordinates: list[Any]) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(REGISTRY)
    data["features"][0]["geometry"]["coordinates"] = coordinates
    return data


@pytest.mark.parametrize("coordinates", [[_HUGE, 52.1], [4.4, -_HUGE], [500, 52.1, 10**5000]],
                         ids=["lon", "lat", "third-beyond-str-limit"])
def test_a_registry_with_a_coordinate_beyond_float_range_is_refused(coordinates: list[Any]) -> None:
    # Was OverflowError ("int too large to convert to float") out of registry.parse, and a ValueError
    # (int too long for str) out of the out-of-range message for the third case.
    with pytest.raises(registry.RegistryError, match="coordinates out of range"):
        registry.parse(_registry_with_coordinates(coordinates))


def test_a_registry_file_with_a_huge_coordinate_is_refused_by_either_json_parser(tmp_path: Path) -> None:
    path = tmp_path / "registry.geojson"
    path.write_text(json.dumps(_registry_with_coordinates([_HUGE, 52.1])))
    for backend in ("orjson", "stdlib"):  # orjson refuses the number itself, the standard library reads it
        with json_backend(backend), pytest.raises(registry.RegistryError):
            registry.load(path)
