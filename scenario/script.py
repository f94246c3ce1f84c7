"""What a simulated day injects, in local time (Europe/Amsterdam): showers, people, failures, silences, bad input.

A Script names devices and gateways of its registry; scenario/day.py plays it. The demo city's script
(demo_script) is the one the dashboard tests were written against; scenario/city.py writes the
Voorschoten and Wassenaar city and its script (city_script).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ConfigError
from core.registry import Registry

HM = tuple[int, int]  # (hour, minute), local time of the day

# The bad messages the demo script sends: each becomes a dead letter of its own reason.
BAD_READINGS: tuple[tuple[HM, str, bytes], ...] = (
    ((4, 17), "gw-vs-01", b'[{"bn":"ws-sl-101/","n":"dim_level","u":"%","v":20.0,"bt":{t}}]'),
    ((11, 42), "gw-ws-01", b"\x00\x01 not a pack"),
    ((15, 5), "gw-vs-01", b'[{"bn":"vs-sl-101/","n":"colour","v":3.0,"bt":{t}}]'))


@dataclass(frozen=True, slots=True)
class Script:
    """The injections of one day. Every interval is [from, to) in local time; showers rain > 0.5 mm/h throughout."""

    showers: tuple[tuple[tuple[str, ...], HM, HM], ...]  # (rain gauges, from, to)
    people: tuple[HM, HM]  # the occupancy sensors count people in this interval only
    failed_lamps: tuple[tuple[str, HM], ...] = ()  # (street light, when its lamp fails; for the rest of the day)
    silent_devices: tuple[tuple[str, HM, HM], ...] = ()  # (device, from, to): its radio frames are lost
    silent_gateways: tuple[tuple[str, HM, HM], ...] = ()  # (gateway, from, to): switched off (a power cut)
    bad_messages: tuple[tuple[HM, str, bytes], ...] = ()  # (when, gateway, payload; {t} = a time)
    # (rule, when): an operator acknowledges every open alarm of the rule (as `smartcity alarms ack` does).
    acknowledgements: tuple[tuple[str, HM], ...] = ()

    def check(self, registry: Registry) -> None:
        """Raise ConfigError naming the first device or gateway the registry does not have (or of the wrong kind)."""
        def device(name: str, kind: str | None = None) -> None:
            d = registry.devices.get(name)
            if d is None:
                raise ConfigError(f"scenario script: no device {name!r} in the registry")
            if kind is not None and d.kind != kind:
                raise ConfigError(f"scenario script: {name!r} is a {d.kind}, not a {kind}")

        for gauges, _, _ in self.showers:
            for g in gauges:
                device(g, "rain_gauge")
        for lamp, _ in self.failed_lamps:
            device(lamp, "street_light")
        for name, _, _ in self.silent_devices:
            device(name)
        for gw, _, _ in (*self.silent_gateways, *((g, None, None) for _, g, _ in self.bad_messages)):
            if gw not in registry.gateways:
                raise ConfigError(f"scenario script: no gateway {gw!r} in the registry")


def demo_script() -> Script:
    """The demo city's day (smartcity/data/demo-city.geojson): the dashboard tests' scenario."""
    return Script(
        showers=((("vs-rg-001", "ws-rg-001"), (7, 30), (8, 30)), (("vs-rg-001",), (17, 0), (18, 15))),
        people=((18, 0), (23, 0)),
        failed_lamps=(("vs-sl-102", (21, 0)),),
        silent_devices=(("ws-sl-201", (2, 0), (3, 0)),),
        bad_messages=BAD_READINGS)
