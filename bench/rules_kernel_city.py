"""The synthetic city and rule set of bench/rules_kernel.py: 1,000 rules of mixed kinds over 100k series.

Gemeente i (GM0001...) has 10 wijken and one rule, of kind i mod 6, with the devices that kind
reads: 10 read series per wijk, so 1,000 gemeenten make 100k series. Rule kinds, as in the
municipalities' own rule file: rain hysteresis (group max, for, clear_for), presence (group sum
threshold), a 2-minute window mean per device, lamp failure (two values per device, for),
deadman (silence per device) and an hourly energy budget (window delta, group sum).
"""

from __future__ import annotations

from typing import Any

from core.registry import Registry, parse
from rules.rule_file import parse_rules
from rules.rule_model import RuleSet

WIJKEN = 10
KINDS = ("rain", "presence", "window", "lamp", "deadman", "energy")

# Per rule kind: the read devices per wijk as (kind, prefix, count), target devices, the rule text.
DEVICES: dict[str, tuple[tuple[str, str, int], ...]] = {
    "rain": (("rain_gauge", "rg", 10), ("traffic_light", "tl", 1)),
    "presence": (("occupancy", "oc", 10), ("street_light", "sl", 2)),
    "window": (("rain_gauge", "rw", 10),),
    "lamp": (("street_light", "lp", 5),),
    "deadman": (("occupancy", "od", 5),),  # two metrics each
    "energy": (("street_light", "le", 10),),
}

RULES: dict[str, str] = {
    "rain": """
kind = "rain_gauge"
group_by = "wijk"
values.rain = {{ metric = "rain_intensity", reduce = "max" }}
when = "rain > {a}"
for = "{f}s"
clear_when = "rain < 0.1"
clear_for = "60s"
on_activate = [{{ command = "bike_priority", params = {{ enabled = true }}, targets = {{ kind = "traffic_light" }} }}]
on_clear = [{{ command = "bike_priority", params = {{ enabled = false }}, targets = {{ kind = "traffic_light" }} }}]
""",
    "presence": """
kind = "occupancy"
group_by = "wijk"
values.people = {{ metric = "count", reduce = "sum" }}
when = "people > {p}"
urgent = true
on_activate = [{{ command = "dim", params = {{ level = 100 }}, targets = {{ kind = "street_light" }} }}]
on_clear = [{{ command = "dim", params = {{ level = 20 }}, targets = {{ kind = "street_light" }} }}]
""",
    "window": """
kind = "rain_gauge"
group_by = "device"
values.avg = {{ metric = "rain_intensity", fn = "mean", over = "2m" }}
when = "avg > {a}"
""",
    "lamp": """
kind = "street_light"
group_by = "device"
values.level = {{ metric = "dim_level" }}
values.power = {{ metric = "power" }}
when = "level > 0 and power < {w}"
for = "{f}s"
on_activate = [{{ alarm = "Lamp failure", severity = "major" }}]
""",
    "deadman": """
kind = "occupancy"
group_by = "device"
values.silence = {{ metric = "*", fn = "silence", reduce = "min" }}
when = "silence > {s}"
on_activate = [{{ alarm = "Device silent", severity = "warning" }}]
""",
    "energy": """
kind = "street_light"
group_by = "wijk"
values.used = {{ metric = "energy", fn = "delta", over = "1h", reduce = "sum" }}
when = "used > {e}"
on_activate = [{{ alarm = "Energy budget exceeded", severity = "minor" }}]
""",
}

# The metric each read device reports in the stream, per rule kind.
STREAM_METRICS: dict[str, tuple[str, ...]] = {
    "rain": ("rain_intensity",), "presence": ("count",), "window": ("rain_intensity",),
    "lamp": ("dim_level", "power"), "deadman": ("presence", "count"), "energy": ("energy",),
}


def kind_of(i: int) -> str:
    """The rule kind of gemeente i (1-based)."""
    return KINDS[(i - 1) % len(KINDS)]


def city(n_gemeenten: int) -> Registry:
    """The registry: per gemeente 10 wijken of the devices its rule kind reads, one gateway per wijk."""
    features: list[dict[str, Any]] = []

    def add(props: dict[str, Any]) -> None:
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.44, 52.13]},
                         "properties": props})

    for g in range(1, n_gemeenten + 1):
        gm = f"GM{g:04d}"
        for w in range(WIJKEN):
            wk, gw = f"WK{g:04d}{w:02d}", f"gw-{g}-{w}"
            add({"role": "gateway", "id": gw, "gemeente": gm})
            address = 0
            for kind, prefix, count in DEVICES[kind_of(g)]:
                for i in range(count):
                    address += 1
                    add({"role": "device", "id": f"{prefix}-{g}-{w}-{i}", "kind": kind, "gateway": gw,
                         "gemeente": gm, "wijk": wk, "link": "lora", "address": f"{address:08X}"})
    return parse({"type": "FeatureCollection", "cbs_map_year": 2024, "features": features})


def rule_text(i: int) -> str:
    """Rule i (1-based), scoped to gemeente i, with thresholds that vary per rule."""
    body = RULES[kind_of(i)].format(a=0.3 + (i % 7) / 10, f=5 + i % 20, p=5 + i % 10, w=3 + i % 4,
                                    s=20 + i % 30, e=0.5 + (i % 5) / 10)
    return f'\n[[rules]]\nname = "r{i}-{kind_of(i)}"\nwhere = {{ gemeente = ["GM{i:04d}"] }}\n{body}'


def ruleset(n_rules: int) -> RuleSet:
    """The rule file of n_rules rules, parsed by the real parser."""
    return parse_rules("version = 2\n" + "".join(rule_text(i) for i in range(1, n_rules + 1)), "<bench>")


def only_group_sum(n_gemeenten: int) -> tuple[Registry, RuleSet]:
    """A city of presence gemeenten only and one group-by + sum-threshold rule over all of it."""
    features: list[dict[str, Any]] = []
    for g in range(1, n_gemeenten + 1):
        gm = f"GM{g:04d}"
        for w in range(WIJKEN):
            wk, gw = f"WK{g:04d}{w:02d}", f"gw-{g}-{w}"
            features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.44, 52.13]},
                             "properties": {"role": "gateway", "id": gw, "gemeente": gm}})
            for i in range(10):
                features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [4.44, 52.13]},
                                 "properties": {"role": "device", "id": f"oc-{g}-{w}-{i}", "kind": "occupancy",
                                                "gateway": gw, "gemeente": gm, "wijk": wk, "link": "lora",
                                                "address": f"{i + 1:08X}"}})
    registry = parse({"type": "FeatureCollection", "cbs_map_year": 2024, "features": features})
    text = """version = 2
[[rules]]
name = "busy-wijk"
kind = "occupancy"
group_by = "wijk"
values.people = { metric = "count", reduce = "sum" }
when = "people > 12"
"""
    return registry, parse_rules(text, "<bench>")
