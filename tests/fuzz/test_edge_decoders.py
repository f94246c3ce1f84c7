"""The edge decoders that tests/edge's fuzz files cover and the other files here do not: CayenneLPP, the
device codecs, MQTT topics, and the network servers' uplink parsers called directly.

Same targets and generators as tests/edge/test_parser_fuzz.py and test_network_server_fuzz.py (which
stay where they are), run here too so that the bench run of tests/fuzz covers every decoder, with one
invariant more each: a refusal carries a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.network_server import NsMessageError, NsUplink
from tests.edge.test_network_server_fuzz import TARGETS as NS_TARGETS
from tests.edge.test_parser_fuzz import TARGETS, Target, json_backend
from tests.fuzz.support import FUZZ

_ONLY_HERE = [t for t in TARGETS if t.name in ("cayenne_lpp.decode", "device_codecs", "topics.parse")]


@pytest.mark.parametrize("target", [pytest.param(t, id=t.name) for t in _ONLY_HERE])
@FUZZ
@given(data=st.data())
def test_decoder_raises_only_its_own_error_with_a_message(target: Target, data: st.DataObject) -> None:
    value = data.draw(target.inputs, label="input")
    with json_backend("orjson"):
        try:
            target.call(value)
        except target.error as exc:
            assert str(exc)


@pytest.mark.parametrize(("parse", "topics", "payloads"), [pytest.param(p, t, d, id=n) for n, p, t, d in NS_TARGETS])
@FUZZ
@given(data=st.data())
def test_network_server_parser_gives_a_checked_uplink_or_its_error(
        parse: Callable[[str, bytes | str], NsUplink], topics: st.SearchStrategy[str],
        payloads: st.SearchStrategy[Any], data: st.DataObject) -> None:
    topic, payload = data.draw(topics, label="topic"), data.draw(payloads, label="payload")
    try:
        up = parse(topic, payload)
    except NsMessageError as exc:
        assert str(exc)
        return
    assert len(up.dev_eui) == 16 and up.dev_eui == up.dev_eui.upper()
    assert up.fcnt is None or 0 <= up.fcnt <= 0xFFFFFFFF
    assert up.fport is None or 0 <= up.fport <= 255
    assert isinstance(up.payload, bytes)
