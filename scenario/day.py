"""A simulated day of a city in a real InfluxDB: the platform's real code paths on a simulated clock.

The firmware-sim device models run on a simulated clock at real cadences; their frames are decoded by
the edge's own converters (the modem path) or, for LoRaWAN devices, turned into a network server's
uplink JSON by the simulated ChirpStack and parsed by the edge's network-server bridge; packed as SenML
and run through the ingest's MessageConverter (readings, commands, acks, dead letters: the service's
real path) and through the rules' Intake into the real Engine over the rule file, evaluated every
simulated minute; its ActionDispatcher's commands go back to the devices as downlinks, and the
devices' confirming reports give the acks. A Script (scenario/script.py) says what is injected:
showers, people in the evening, lamp failures, silent devices and gateways, bad messages. Every
measurement is written with the services' own builders.

Simplifications (each says what is not the real path): the edge's actuator is modelled here on the
simulated clock with edge.downlinks (the real one runs a thread on the wall clock); the gauges are
polled once a minute (the edge polls every 10 s, in continuous mode); downlinks to LoRaWAN devices go
straight to the air (not through the network server); gateway_status is written once a minute (the
edge's status repeats its birth time); the rules' service_health figures are computed here
(rules.service_health.RulesHealth reads the wall clock); MQTT itself is not in the loop (the services'
MQTT paths have their own tests and benchmarks).
"""

from __future__ import annotations

import hashlib
import math
import time as walltime
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as daytime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from core.commands import Ack, Command, parse_command
from core.influx import InfluxClient
from core.registry import Registry
from core.topics import Channel
from edge.lora_keys import KeyRing
from firmware_sim.street_light import StreetLightNode
from ingest.dead_letters import MEASUREMENT as DEAD_LETTER
from ingest.points import health_line, micros, status_line
from rules.alarm_store import Alarm
from rules.transitions import Event, Transition
from scenario.gateway import SimClock, SimGateway
from scenario.platform import HEALTH_INTERVAL, DayWriter, DeviceStatusModel, Platform
from scenario.script import HM, Script

ZONE = ZoneInfo("Europe/Amsterdam")
CITY_RULES = Path(__file__).parents[1] / "rules" / "examples" / "city-rules.toml"
TICK = 60.0  # the rules evaluate, the gateways publish and report status once a simulated minute
WARM_UP = 3600.0  # simulated before the day and not written: every device has reported by midnight
DOWNLINK_DELAY = 0.5  # a command's way from the rules to the radio
GAUGE_POLL_AT = 30.0  # seconds into each minute
SHOWER_PEAK = 4.0  # mm/h above the 0.8 mm/h a shower starts and ends with


@dataclass(frozen=True, slots=True)
class Shower:
    """Rain (> 0.5 mm/h throughout) on these gauges from start to end (unix seconds)."""

    gauges: tuple[str, ...]
    wijken: tuple[str, ...]
    start: float
    end: float


@dataclass(slots=True)
class CityDay:
    """The simulated day in InfluxDB, what was injected, and what the platform did (for independent checks)."""

    influx: InfluxClient
    start: float  # unix seconds, local midnight; every point written lies in [start, end)
    end: float
    registry: Registry
    gemeenten: list[str]
    wijken: dict[str, list[str]]  # gemeente -> its wijken
    gateways: list[str]
    failed_lamps: dict[str, float]  # street light -> when its lamp failed
    silent_devices: dict[str, tuple[float, float]]  # device -> [from, to) in which its uplinks were lost
    silent_gateways: dict[str, tuple[float, float]]  # gateway -> [from, to) in which it was switched off
    showers: tuple[Shower, ...]
    people: tuple[float, float]  # the occupancy sensors count people in [from, to) only
    transitions: list[Transition] = field(default_factory=list)  # the engine's, reasserts included
    commands: list[Command] = field(default_factory=list)
    acks: list[tuple[float, Ack]] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)  # the alarm store's occurrences
    dead_letters: list[str] = field(default_factory=list)  # their reasons
    acknowledged: dict[str, int] = field(default_factory=dict)  # rule -> alarms the script's operator acknowledged
    points: dict[str, int] = field(default_factory=dict)  # points written per measurement
    build_seconds: float = 0.0


def day_bounds(now: float) -> tuple[float, float]:
    """(start, end): the last whole local day that ended at least an hour before now."""
    last = datetime.fromtimestamp(now - 3600, ZONE).date()
    end = datetime.combine(last, daytime(0), ZONE)
    return datetime.combine(last - timedelta(days=1), daytime(0), ZONE).timestamp(), end.timestamp()


def local(start: float, hm: HM) -> float:
    """Unix seconds of a local wall time on the day that starts at start."""
    return datetime.combine(datetime.fromtimestamp(start, ZONE).date(), daytime(*hm), ZONE).timestamp()


def _shower_rain(shower: Shower, t: float) -> float:
    """mm/h on a shower's gauges at t: 0.8 at its edges, SHOWER_PEAK more in the middle, 0 outside."""
    if not shower.start <= t < shower.end:
        return 0.0
    return 0.8 + SHOWER_PEAK * math.sin(math.pi * (t - shower.start) / (shower.end - shower.start))


Progress = Callable[[str], None]


def simulate(influx: InfluxClient, registry: Registry, registry_path: Path, state_dir: Path, *,
             start: float, end: float, script: Script, rules_path: Path = CITY_RULES,
             progress: Progress | None = None) -> CityDay:
    """Run the day (after WARM_UP of unwritten lead-in) and write it to influx; what happened, as a CityDay.

    progress, if given, gets a line per simulated hour (points written, wall seconds so far).
    """
    script.check(registry)
    began = walltime.perf_counter()
    clock = SimClock(start - WARM_UP)
    wijken: dict[str, list[str]] = {}
    for d in registry.devices.values():
        wijken.setdefault(d.gemeente, [])
        if d.wijk not in wijken[d.gemeente]:
            wijken[d.gemeente].append(d.wijk)
    showers = tuple(Shower(g, tuple(sorted({registry.devices[x].wijk for x in g})), local(start, a), local(start, b))
                    for g, a, b in script.showers)
    day = CityDay(influx, start, end, registry, sorted(wijken), {g: sorted(w) for g, w in wijken.items()},
                  sorted(registry.gateways), {lamp: local(start, hm) for lamp, hm in script.failed_lamps},
                  {d: (local(start, a), local(start, b)) for d, a, b in script.silent_devices},
                  {g: (local(start, a), local(start, b)) for g, a, b in script.silent_gateways}, showers,
                  (local(start, script.people[0]), local(start, script.people[1])))
    writer = DayWriter(influx, start, end)
    platform = Platform(registry, registry_path, rules_path, state_dir, influx, clock, writer.add)

    def on_ack(gateway: str, ack: Ack, now: float) -> None:
        platform.message(gateway, Channel.ACKS, ack.to_json(), now)
        if start <= now < end:
            day.acks.append((now, ack))

    keys = KeyRing(master=hashlib.sha256(b"smartcity city day").digest())
    gateways = {g: SimGateway(g, registry.devices_of(g), keys, clock, on_ack, day.people) for g in day.gateways}
    lamps = [(cast(StreetLightNode, gateways[registry.devices[x].gateway].nodes[x]), t)
             for x, t in day.failed_lamps.items()]
    statuses = DeviceStatusModel(registry)
    bad = [(local(start, hm), gw, payload) for hm, gw, payload in script.bad_messages]
    acks = [(local(start, hm), rule) for rule, hm in script.acknowledgements]

    def each(fn: Callable[[SimGateway, float], None]) -> Callable[[float], None]:
        def run(at: float) -> None:
            for g in gateways.values():
                if g.powered:
                    fn(g, at)
        return run

    t0 = clock.t
    next_progress = start + 3600.0
    while t0 < end:
        _inject(day, gateways, lamps, t0)
        events: list[tuple[float, Callable[[float], None]]] = [
            (t0 + DOWNLINK_DELAY, each(SimGateway.transmit)), (t0 + GAUGE_POLL_AT, each(SimGateway.poll_gauges)),
            *((t0 + k * HEALTH_INTERVAL, platform.report) for k in range(1, int(TICK / HEALTH_INTERVAL)))]
        for at, fn in sorted(events, key=lambda e: e[0]):
            for gw in gateways.values():
                gw.step_nodes(at)
            clock.t = at
            fn(at)
        t1 = t0 + TICK
        for gw in gateways.values():
            gw.step_nodes(t1)
        clock.t = t1
        _tick(platform, gateways, statuses, day, now=t1, bad=[(g, p) for at, g, p in bad if abs(at - t1) < 1],
              acks=[rule for at, rule in acks if abs(at - t1) < 1])
        t0 = t1
        if progress is not None and t0 >= next_progress:
            hour = datetime.fromtimestamp(t0, ZONE).strftime("%H:%M")
            progress(f"scenario: simulated {hour}, {sum(writer.counts.values()):,} points written, "
                     f"{walltime.perf_counter() - began:.0f} s")
            next_progress += 3600.0
    writer.flush()
    if platform.reporter.errors:
        raise AssertionError(f"{platform.reporter.errors} ingest service_health reports failed (see the log)")
    day.alarms = [a for a in platform.alarms.history(limit=1_000_000) if start <= a.raised_at < end]
    platform.alarms.close()
    day.points = dict(sorted(writer.counts.items()))
    day.build_seconds = walltime.perf_counter() - began
    return day


def _inject(day: CityDay, gateways: dict[str, SimGateway], lamps: list[tuple[StreetLightNode, float]],
            t0: float) -> None:
    """The script's injections for the minute starting at t0: rain, power cuts, lamp failures, lost uplinks."""
    for gw in gateways.values():
        for device, (gauge, _) in gw.gauges.items():
            gauge.set_rain(max((_shower_rain(s, t0) for s in day.showers if device in s.gauges), default=0.0))
        off = day.silent_gateways.get(gw.id)
        gw.power(not (off is not None and off[0] <= t0 < off[1]), t0)
    for node, at in lamps:
        node.lamp_failure = t0 >= at
    for device, (a, b) in day.silent_devices.items():
        if a <= t0 < a + TICK:
            gw = gateways[day.registry.devices[device].gateway]
            gw.air.mute(gw.address[device], until=b)


def _tick(platform: Platform, gateways: dict[str, SimGateway], statuses: DeviceStatusModel, day: CityDay, *,
          now: float, bad: list[tuple[str, bytes]], acks: list[str]) -> None:
    """The end of a simulated minute: status, packs, the ingest's write, the rules' step, acks, device_status."""
    recording = day.start <= now < day.end
    for gw in gateways.values():
        gemeente = day.registry.gateways[gw.id].gemeente
        if gw.went_offline is not None:  # the broker publishes the gateway's will once its keep-alive lapses
            platform.emit(status_line(gw.id, "offline", micros(gw.went_offline), gw.seq, gemeente=gemeente))
            gw.went_offline = None
        if not gw.powered:
            continue
        gw.expire(now)
        platform.emit(status_line(gw.id, "online", micros(now), gw.seq, gemeente=gemeente))
        platform.emit(health_line(gw.id, gw.health(now), micros(now), gemeente=gemeente))
        readings = list(gw.readings)
        payload = gw.pack()
        if payload is not None:
            platform.message(gw.id, Channel.READINGS, payload, now)
            statuses.stored(readings)
    for gateway, raw in bad:
        text = raw.replace(b"{t}", str(now - 5).encode())
        for x in platform.message(gateway, Channel.READINGS, text, now):
            if x.startswith(DEAD_LETTER + ","):
                day.dead_letters.append(x.split("reason=", 1)[1].split(",", 1)[0])
    platform.store(now)
    transitions = platform.evaluate(now)
    for gateway, payload in platform.published:
        platform.message(gateway, Channel.COMMANDS, payload, now)
        cmd = parse_command(payload)
        gateways[gateway].submit(cmd, now)
        if recording:
            day.commands.append(cmd)
    platform.published = []
    if recording:
        day.transitions.extend(transitions)
    for rule in acks:
        day.acknowledged[rule] = day.acknowledged.get(rule, 0) + platform.acknowledge(rule, now)
    platform.report(now)
    for x in statuses.lines(now):
        platform.emit(x)
    platform.sequences(now)


def active_periods(day: CityDay, rule: str, group: str) -> list[tuple[float, float]]:
    """The [activate, clear) intervals of one slot in the day (an interval open at the end ends at day.end)."""
    out: list[tuple[float, float]] = []
    opened: float | None = None
    for t in day.transitions:
        if (t.rule, t.group) != (rule, group) or t.event is Event.REASSERT:
            continue
        if t.event is Event.ACTIVATE:
            opened = t.time
        elif opened is not None:
            out.append((opened, t.time))
            opened = None
    if opened is not None:
        out.append((opened, day.end))
    return out


def query_rows(day: CityDay, q: str) -> list[dict[str, Any]]:
    """Every row of every series of an InfluxQL query on the day's database (times in unix seconds)."""
    return [{**s.tags, **row, "time": row["time"] / 1e6} for s in day.influx.query(q, epoch="u") for row in s.rows()]
