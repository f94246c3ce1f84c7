"""What an evaluation produces: one Transition per slot that activated, cleared or re-asserted."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Event(StrEnum):
    """The kinds of transition (rules/README.md, "The state machine")."""

    ACTIVATE = "activate"
    CLEAR = "clear"
    REASSERT = "reassert"  # re-send the commands of the current state; no alarm, webhook or event


@dataclass(frozen=True, slots=True)
class Transition:
    """A slot's transition at one evaluation, with the rule's values of that slot (NaN: missing)."""

    rule: str
    group: str
    event: Event
    active: bool  # the slot's state after it (a reassert re-sends the state it is in)
    time: float
    values: dict[str, float]

    def key(self) -> tuple[str, str, str]:
        """(rule, group, event): what the property tests compare between engines."""
        return (self.rule, self.group, self.event.value)
