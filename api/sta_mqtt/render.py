"""Observation JSON for MQTT at the cost of one bytes format: a template per Datastream, made from observation_json.

``api.sta.model.observation_json`` builds a dict and two ISO times per call (~13 us, most of it in
datetime) and serialising it costs more again: at city scale that was more than the rest of the
hot path. The only parts of that JSON that vary for one Datastream are the time (in the id and
links), the ISO time and the result. So the renderer calls observation_json once per Datastream
with a probe time and a probe result, finds those in the output and keeps the rest as a format
string; an Observation is then that format filled with the time's digits, its ISO text (the
second's text cached, the fraction appended as iso_time writes it) and the result's JSON.

A template is checked when it is made: it must reproduce observation_json exactly for a second
time and result (a whole second, which iso_time writes without a fraction). A Datastream whose
template fails the check (say its id contains the probe's digits) is rendered by observation_json
itself. tests/api/sta_mqtt/test_render.py compares the two on arbitrary ids, times and results.
"""

from __future__ import annotations

from typing import Any

from api.sta.model import iso_time, observation_json
from core import jsonfast

_PROBE_TIME = 1_234_567_890_123_457
_CHECK_TIME = 1_700_000_000_000_000  # a whole second: iso_time's other form
_PROBE_RESULT = "\x00probe\x00"
_ID, _ISO, _RESULT = 0, 1, 2
_MAX_CACHED_SECONDS = 4096
_Template = tuple[bytes, tuple[int, ...]]


def _dumps(value: Any) -> bytes:
    return jsonfast.dumps(value)


class ObservationRenderer:
    """Observation JSON bytes for (datastream, time_us, result); equal to dumps(observation_json(...))."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._templates: dict[str, _Template | None] = {}
        self._seconds: dict[int, bytes] = {}

    def render(self, datastream: str, time_us: int, result: float | bool) -> bytes:
        """The Observation's JSON."""
        try:
            template = self._templates[datastream]
        except KeyError:
            template = self._templates[datastream] = self._make(datastream)
        if template is None:
            return _dumps(observation_json(self.base_url, datastream, time_us, result))
        fmt, order = template
        fill = (b"%d" % time_us, self._iso(time_us), _dumps(result))
        return fmt % tuple([fill[i] for i in order])

    def _iso(self, time_us: int) -> bytes:
        second, micro = divmod(time_us, 1_000_000)
        text = self._seconds.get(second)
        if text is None:
            if len(self._seconds) >= _MAX_CACHED_SECONDS:
                self._seconds.clear()
            text = self._seconds[second] = iso_time(second * 1_000_000).encode()
        # iso_time: microseconds, when not zero, as six digits before the Z.
        return text if not micro else b"%s.%06dZ" % (text[:-1], micro)

    def _make(self, datastream: str) -> _Template | None:
        probe = _dumps(observation_json(self.base_url, datastream, _PROBE_TIME, _PROBE_RESULT))
        tokens = ((b"%d" % _PROBE_TIME, _ID), (iso_time(_PROBE_TIME).encode(), _ISO), (_dumps(_PROBE_RESULT), _RESULT))
        parts: list[bytes] = []
        order: list[int] = []
        pos = 0
        while True:
            found = [(probe.find(token, pos), token, slot) for token, slot in tokens]
            hits = [f for f in found if f[0] >= 0]
            if not hits:
                break
            at, token, slot = min(hits)
            parts.append(probe[pos:at].replace(b"%", b"%%"))
            order.append(slot)
            pos = at + len(token)
        parts.append(probe[pos:].replace(b"%", b"%%"))
        template = (b"%s".join(parts), tuple(order))
        fmt, slots = template
        for when, result in ((_CHECK_TIME, 1.5), (_CHECK_TIME + 42, True)):
            fill = (b"%d" % when, self._iso(when), _dumps(result))
            if fmt % tuple(fill[i] for i in slots) != _dumps(observation_json(self.base_url, datastream, when, result)):
                return None
        return template
