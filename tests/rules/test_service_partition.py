"""Two partition workers on one broker: they split the zones, and no slot is evaluated (or commanded) twice."""

import time

import pytest

from core.errors import ConfigError
from tests.conftest import wait_for
from tests.rules.test_service import WIJK_LIGHTS, presence, value

pytestmark = pytest.mark.integration


SENSORS = {"gw-vs-01": ["vs-oc-101", "vs-oc-201"], "gw-ws-01": ["ws-oc-101", "ws-oc-201"]}


@pytest.mark.parametrize("by", ["gemeente", "wijk"])
def test_two_workers_split_the_zones_and_none_is_evaluated_twice(env, by):
    workers = [env.start(client_id=f"rules-{i}of2", partition=(i, 2), partition_by=by, state_dir=env.city.state)
               for i in range(2)]
    groups = [{g for rs in w.runtime.engine.slots for g in rs.groups} for w in workers]
    assert groups[0].isdisjoint(groups[1]) and groups[0] | groups[1] == set(WIJK_LIGHTS)
    # In the demo city each gemeente has its own gateway, and crc32 puts one gemeente (both its wijken) on each worker.
    assert sorted(w.runtime.topics for w in workers) == [("smartcity/v1/gw/gw-vs-01/readings",),
                                                          ("smartcity/v1/gw/gw-ws-01/readings",)]
    assert workers[0].state.path != workers[1].state.path  # one state directory serves both
    for gateway, sensors in SENSORS.items():
        for seq, sensor in enumerate(sensors):
            env.publish(gateway, presence(sensor, seq=seq))
    wait_for(lambda: env.commands.count() == 16, 5)  # the demo city's street lights
    time.sleep(0.5)
    assert env.commands.levels() == {d: [100] for lights in WIJK_LIGHTS.values() for d in lights}
    assert [value(w, "readings_used") for w in workers] == [2, 2]
    assert [value(w, "not_used") + value(w, "wrong_gateway") for w in workers] == [0, 0]  # no one else's gateways
    assert [value(w, "transitions") for w in workers] == [2, 2]


def test_a_rule_that_would_be_split_fails_the_start(env):
    env.city.rules.write_text(env.city.rules.read_text().replace('group_by = "wijk"', 'group_by = "gemeente"'))
    with pytest.raises(ConfigError, match="coarser zone than --partition-by wijk"):
        env.start(partition=(0, 2), partition_by="wijk")
