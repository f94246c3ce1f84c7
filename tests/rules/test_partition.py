"""Partitions: every zone owned by exactly one worker, restricted registries, and rules that would be split refused."""

import zlib

import pytest

from core.errors import ConfigError
from core.registry import load
from rules.partition import Partition, check_rules, parse_partition, restrict
from rules.rule_file import parse_rules
from smartcity.data import demo_registry_path
from tests.rules.city import make_registry

LAYOUT = {f"GM{g:04d}": {f"WK{g:04d}{w:02d}": (1, 2) for w in range(3)} for g in range(1, 7)}


def rule(group_by="wijk", same=None, where=""):
    targets = f'{{ kind = "street_light"{f", same = {same!r}".replace(chr(39), chr(34)) if same else ""} }}'
    return parse_rules(f"""
version = 2
[[rules]]
name = "r"
kind = "occupancy"
group_by = "{group_by}"
{where}
values.p = {{ metric = "presence" }}
when = "p > 0"
on_activate = [{{ command = "dim", params = {{ level = 100 }}, targets = {targets} }}]
""")


@pytest.mark.parametrize("count", [1, 2, 3, 5])
@pytest.mark.parametrize("by", ["gemeente", "wijk"])
def test_every_device_is_owned_by_exactly_one_worker(count, by):
    registry = make_registry(LAYOUT)
    owners = {d: [i for i in range(count) if Partition(i, count, by).owns(dev)] for d, dev in registry.devices.items()}
    assert all(len(o) == 1 for o in owners.values())
    parts = [restrict(registry, Partition(i, count, by)) for i in range(count)]
    assert sum(len(p.devices) for p in parts) == len(registry.devices)
    for part in parts:
        assert all(d.gateway in part.gateways for d in part.devices.values())
    if 1 < count <= 3:
        assert all(part.devices for part in parts)  # 18 wijken / 6 gemeenten spread over every worker


def test_ownership_is_crc32_of_the_code():
    assert Partition(zlib.crc32(b"GM0626") % 3, 3).owns_unit("GM0626")
    assert not Partition((zlib.crc32(b"GM0626") + 1) % 3, 3).owns_unit("GM0626")


@pytest.mark.parametrize(("spec", "message"), [("1/1", "0 <= I < N"), ("2/2", "0 <= I < N"), ("x", "I/N"),
                                               ("0/0", "N >= 1"), ("-1/2", "I/N")])
def test_bad_partition_specs_name_the_option(spec, message):
    with pytest.raises(ConfigError, match="--partition") as raised:
        parse_partition(spec)
    assert message in str(raised.value)


def test_a_bad_unit_is_refused():
    with pytest.raises(ConfigError, match="--partition-by"):
        parse_partition("0/2", "gateway")


def test_grouping_by_a_coarser_zone_than_the_unit_is_refused():
    registry = make_registry(LAYOUT)
    with pytest.raises(ConfigError, match=r"rule 'r' groups by 'gemeente', a coarser zone than --partition-by wijk"):
        check_rules(rule("gemeente"), registry, Partition(0, 2, "wijk"))
    with pytest.raises(ConfigError, match="sends commands to the same 'gemeente'"):
        check_rules(rule("wijk", same="gemeente"), registry, Partition(0, 2, "wijk"))
    check_rules(rule("gemeente"), registry, Partition(0, 2, "gemeente"))
    check_rules(rule("wijk"), registry, Partition(1, 2, "wijk"))
    check_rules(rule("gemeente", same="wijk"), registry, Partition(1, 2, "gemeente"))
    check_rules(rule("gemeente"), registry, Partition(0, 1, "wijk"))  # one worker: nothing is split


def test_other_attributes_are_checked_against_the_registry():
    registry = load(demo_registry_path())  # one gateway per gemeente
    check_rules(rule("gateway"), registry, Partition(0, 2, "gemeente"))
    with pytest.raises(ConfigError, match=r"slot 'gw-vs-01' \(gateway\) spans several wijk zones"):
        check_rules(rule("gateway"), registry, Partition(0, 2, "wijk"))
    with pytest.raises(ConfigError, match="slot 'occupancy'"):
        check_rules(rule("kind"), registry, Partition(0, 2, "gemeente"))
    check_rules(rule("kind", where='where = { gemeente = ["GM0626"] }'), registry, Partition(0, 2, "gemeente"))


def test_one_worker_keeps_the_registry_as_it_is():
    registry = make_registry()
    assert restrict(registry, Partition()) is registry
