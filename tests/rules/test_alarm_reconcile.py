"""Open alarms that no slot will ever clear (rule gone, slot restarted inactive) are cleared at start and reload."""

from __future__ import annotations

from pathlib import Path

from rules.actions import ActionDispatcher
from rules.alarm_store import AlarmStore
from rules.rule_model import Severity
from tests.rules.test_engine_operators import _engine


def test_reconcile_clears_alarms_of_gone_rules_and_inactive_slots_but_not_other_workers(tmp_path: Path) -> None:
    with AlarmStore(tmp_path / "alarms.sqlite") as store:
        for rule, group in (("lamp", "sl-1"), ("lamp", "sl-2"), ("removed", "sl-1"), ("lamp", "sl-9")):
            store.raise_alarm(rule, group, "Lamp failure", Severity.MAJOR, at=10.0, values={})
        dispatcher = ActionDispatcher([], lambda _gw, _payload: None, alarms=store)
        # sl-1 still active; sl-2 restarted inactive; sl-9 belongs to another partition's worker.
        cleared = dispatcher.reconcile_alarms({("lamp", "sl-1"): True, ("lamp", "sl-2"): False}, {"lamp"}, 20.0)
        assert cleared == 2
        assert sorted((a.rule, a.group) for a in store.open_alarms()) == [("lamp", "sl-1"), ("lamp", "sl-9")]
        assert dispatcher.totals.alarms_cleared == 2
        assert dispatcher.reconcile_alarms({("lamp", "sl-1"): True}, {"lamp"}, 30.0) == 0  # idempotent


def test_engine_reports_every_slot_and_whether_it_is_active() -> None:
    engine = _engine()
    sensor = engine.series_index[("occ-WK000101-0", "count")]
    engine.fold([sensor], [5.0], [1.0], 1.0)
    engine.evaluate(1.0)
    states = engine.slot_states()
    assert states[("busy", "WK000101")] is True
    assert set(states) == {("busy", g) for g in ("WK000101", "WK000102", "WK000201")}
    assert sum(states.values()) == 1
