"""Per command action: which device kind takes it, the downlink payload, and the report that confirms it.

A command is desired state, so each action names the metric in which the device reports that
state; the actuator acknowledges ``applied`` only once a report shows the commanded value
(a light its dim level, a traffic-light controller its bike-priority state). A new actuator
is a new entry here, not new code in the actuator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.commands import Action, bike_priority, dim_level
from core.kinds import KINDS
from edge.device_codecs import MetricValue, encode_bike_priority, encode_dim

Desired = int | bool


@dataclass(frozen=True, slots=True)
class Downlink:
    """How one action reaches a device and how the device confirms it."""

    action: Action
    kind: str
    metric: str  # the reported metric that shows the state
    desired: Callable[[dict[str, Any]], Desired]  # validated params -> state; raises CommandError
    encode: Callable[[Any], bytes]

    def confirms(self, reported: MetricValue, desired: Desired) -> bool:
        """Whether a reported value shows the desired state (a level is reported to the percent)."""
        if isinstance(desired, bool):
            return isinstance(reported, bool) and reported is desired
        return not isinstance(reported, bool) and round(reported) == desired

    def show(self, value: MetricValue) -> str:
        """A reported value as an ack detail shows it: "on"/"off", or the number with its unit."""
        if isinstance(value, bool):
            return "on" if value else "off"
        unit = KINDS[self.kind].metrics[self.metric].unit
        return f"{value:g} {unit}" if unit else f"{value:g}"

    def payload(self, params: dict[str, Any]) -> bytes:
        """The downlink payload of a command's params."""
        return self.encode(self.desired(params))


DOWNLINKS: dict[Action, Downlink] = {
    d.action: d for d in (
        Downlink(Action.DIM, "street_light", "dim_level", dim_level, encode_dim),
        Downlink(Action.BIKE_PRIORITY, "traffic_light", "bike_priority", bike_priority, encode_bike_priority),
    )
}

# The metrics whose reports can confirm a command (the agent passes only these to the actuator).
CONFIRMING_METRICS = frozenset(d.metric for d in DOWNLINKS.values())
