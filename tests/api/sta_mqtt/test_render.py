"""The template renderer writes exactly the bytes of dumps(observation_json(...)), whatever the id, time and result."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.sta.model import observation_json
from api.sta_mqtt.render import _PROBE_TIME, ObservationRenderer
from core import jsonfast

_ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)
_times = st.integers(0, 253_402_300_799_999_999)  # up to 9999-12-31T23:59:59.999999Z
_results = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.booleans())


@settings(max_examples=300, deadline=None)
@given(base=st.sampled_from(["http://127.0.0.1:8000/v1.1", "https://data.example.nl/api/v1.1", "http://h/%d/v1.1"]),
       datastream=st.one_of(st.sampled_from(["vs-sl-101.power", "it's", "a%sb", "x.1234567890123457"]), _ids),
       times=st.lists(_times, min_size=1, max_size=4), result=_results)
def test_the_renderer_writes_what_observation_json_gives(base: str, datastream: str, times: list[int],
                                                         result: float | bool) -> None:
    renderer = ObservationRenderer(base)
    for t in times:
        assert renderer.render(datastream, t, result) == jsonfast.dumps(observation_json(base, datastream, t, result))


@pytest.mark.parametrize("t", [0, 1, 999_999, 1_000_000, 1_700_000_000_000_000, 1_700_000_000_000_001,
                               1_800_000_000_123_456])
def test_whole_seconds_and_fractions(t: int) -> None:
    renderer = ObservationRenderer("http://x/v1.1")
    renderer.render("d.m", t + 1_000_000, 1.0)  # the second before, cached
    assert renderer.render("d.m", t, 2.5) == jsonfast.dumps(observation_json("http://x/v1.1", "d.m", t, 2.5))


def test_a_datastream_whose_id_holds_the_probe_falls_back_to_observation_json() -> None:
    renderer = ObservationRenderer("http://x/v1.1")
    tricky = f"d.{_PROBE_TIME}"
    assert renderer.render(tricky, 5, True) == jsonfast.dumps(observation_json("http://x/v1.1", tricky, 5, True))
    assert renderer._templates[tricky] is None
    renderer.render("d.m", 5, True)
    assert renderer._templates["d.m"] is not None  # the usual case is templated
