"""The JSON Schema for editors: valid draft 2020-12, the examples pass it, and it follows the code."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest

from core.commands import Action as CommandName
from core.kinds import KINDS, Classification
from rules import expressions
from rules.rule_file import RULE_KEYS, VALUE_KEYS, RuleFileError, parse_rules
from rules.rule_file_schedules import DAYS
from rules.rule_model import (
    ANY,
    ATTRIBUTES,
    Reducer,
    SeriesFn,
    Severity,
)
from tests.rules.rule_file_cases import (
    EXAMPLES,
    SCHEMA,
    rule_file,
)

# ---- the JSON Schema for editors ----

def _validator() -> Any:
    try:
        import jsonschema  # type: ignore[import-untyped, import-not-found, unused-ignore]  # noqa: PLC0415
    except ImportError:  # not skipped: the schema must be checked wherever the tests run
        pytest.fail("jsonschema is not installed; it belongs in the dev extra (jsonschema>=4)")

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_version_2_example_validates_against_the_schema() -> None:
    validator = _validator()
    checked = 0
    for path in EXAMPLES:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        if data["version"] == 1:
            continue  # the schema describes the current version only
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]
        assert errors == [], path.name
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("changes", [
    {"clear-when": "x"}, {"values.rain.fn": "mean"}, {"values.rain.over": "1h"}, {"values.rain.metric": "*"},
    {"for": "2 min"}, {"on_activate.0.params": {"level": 5}}, {"on_clear.0": {"alarm": "x", "severity": "major"}},
    {"on_activate.0": {"webhook": "https://u:p@x.org/"}}, {"where": {"gemeente": ["GM626"]}},
    {"values": {"night": {"metric": "rain_intensity"}}}, {"group_by": "street"},
])
def test_the_schema_also_flags_common_mistakes(changes: dict[str, Any]) -> None:
    data = tomllib.loads(rule_file(changes))
    assert list(_validator().iter_errors(data))
    with pytest.raises(RuleFileError):
        parse_rules(rule_file(changes))


def test_schema_enumerations_follow_the_code() -> None:
    defs = json.loads(SCHEMA.read_text(encoding="utf-8"))["$defs"]
    assert defs["kind"]["enum"] == [ANY, *sorted(KINDS)]
    assert set(defs["metric"]["enum"]) == {ANY, *(m for k in KINDS.values() for m in k.metrics)}
    assert defs["value"]["properties"]["fn"]["enum"] == [f.value for f in SeriesFn]
    assert defs["value"]["allOf"][0]["if"]["properties"]["fn"]["enum"] == [f.value for f in SeriesFn if f.windowed]
    assert defs["value"]["properties"]["reduce"]["enum"] == [r.value for r in Reducer]
    assert defs["alarm"]["properties"]["severity"]["enum"] == [s.value for s in Severity]
    assert defs["rule"]["properties"]["group_by"]["enum"] == list(ATTRIBUTES)
    assert set(defs["rule"]["properties"]) == set(RULE_KEYS)
    assert set(defs["value"]["properties"]) == set(VALUE_KEYS)
    assert set(defs["where"]["properties"]) == set(ATTRIBUTES)
    assert defs["where"]["properties"]["classification"]["items"]["enum"] == [c.value for c in Classification]
    assert defs["command"]["properties"]["command"]["enum"] == sorted(a.value for a in CommandName)
    assert defs["command"]["properties"]["targets"]["properties"]["kind"]["enum"] == sorted(
        k for k in KINDS if KINDS[k].actions)
    assert defs["identifier"]["not"]["enum"] == sorted(expressions.RESERVED)
    assert defs["schedule"]["properties"]["days"]["items"]["enum"] == list(DAYS)
