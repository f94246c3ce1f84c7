"""Packs folded into line protocol: registry tags, microsecond times, and every reject reason."""

import pytest

from core import jsonfast
from core.commands import Ack, AckStatus, Action, Command
from core.registry import load
from core.senml import Reading, encode
from core.senml_columns import decode_columns
from ingest.points import (
    DAY_US,
    LATE_MEASUREMENT,
    SETTLE_S,
    Rejects,
    TimeBounds,
    ack_line,
    command_line,
    health_line,
    pack_lines,
    replay_late_lines,
    status_line,
)
from ingest.sequence import batch_line
from ingest.series_table import SeriesTable
from smartcity.data import demo_registry_path

TABLE = SeriesTable(load(demo_registry_path()))
T = 1_700_000_000.0


DEFAULT = TimeBounds()


def fold(readings, gateway="gw-vs-01", now=T, bounds=DEFAULT):
    rejects = Rejects()
    lines = pack_lines(gateway, decode_columns(encode(readings, 1), now), TABLE, now=now, rejects=rejects,
                       bounds=bounds)
    return lines, rejects


def test_readings_of_one_device_and_time_become_one_point_with_registry_tags():
    lines, rejects = fold([Reading("vs-sl-101", "dim_level", 20.0, T, "%"), Reading("vs-sl-101", "power", 8.5, T, "W"),
                           Reading("vs-sl-101", "lamp_failure", False, T)])
    assert lines == ["street_light,device=vs-sl-101,gateway=gw-vs-01,gemeente=GM0626,wijk=WK062600 "
                     "dim_level=20.0,power=8.5,lamp_failure=false 1700000000000000"]
    assert rejects.total == 0


def test_two_readings_in_one_millisecond_stay_two_points():
    """Defect 7: ms precision merged a continuous RG-15 report and a poll reply into one point."""
    lines, _ = fold([Reading("vs-rg-001", "rain_intensity", 0.5, T + 0.0001, "mm/h"),
                     Reading("vs-rg-001", "rain_intensity", 0.7, T + 0.0004, "mm/h")])
    assert [ln.rsplit(" ", 1)[1] for ln in lines] == ["1700000000000100", "1700000000000400"]


def test_each_bad_reading_is_counted_by_reason_and_good_ones_kept():
    lines, rejects = fold([
        Reading("vs-sl-101", "power", 8.5, T, "W"),
        Reading("nobody", "power", 1.0, T),
        Reading("ws-sl-101", "power", 1.0, T),  # belongs to the other gateway
        Reading("vs-sl-101", "colour", 1.0, T),
        Reading("vs-oc-101", "presence", 1.0, T),  # a number where a boolean belongs
        Reading("vs-oc-101", "count", True, T),  # a boolean where a number belongs
        Reading("vs-sl-101", "power", 3.0, T + 1, "furlong"),  # defect 8: the wrong unit
        Reading("vs-rg-001", "rain_intensity", 0.5, T + 1, "mm/h"),
    ])
    assert len(lines) == 2
    assert rejects.counts == {"unknown_device": 1, "wrong_gateway": 1, "unknown_metric": 1, "wrong_type": 2,
                              "wrong_unit": 1}
    assert "belongs to 'gw-ws-01'" in rejects.first["wrong_gateway"]
    assert "'furlong'" in rejects.first["wrong_unit"] and "'W'" in rejects.first["wrong_unit"]


def test_a_reading_without_a_unit_takes_the_registry_one():
    lines, rejects = fold([Reading("vs-sl-101", "power", 8.5, T)])
    assert len(lines) == 1 and rejects.total == 0


@pytest.mark.parametrize(("offset", "reason"), [(-8 * 86400, "too_late"), (301, "future"),
                                                 (100 * 365 * 86400, "future")])
def test_readings_outside_the_time_bounds_are_refused(offset, reason):
    """Defects 5 and 8: a reading dated a year (or 2100) ahead was stored and served as the latest."""
    lines, rejects = fold([Reading("vs-sl-101", "power", 1.0, T + offset, "W"),
                           Reading("vs-sl-101", "power", 2.0, T, "W")])
    assert len(lines) == 1 and lines[0].endswith(" 1700000000000000")
    assert rejects.counts == {reason: 1}


def test_bounds_are_configurable():
    _, rejects = fold([Reading("vs-sl-101", "power", 1.0, T - 3600, "W")], bounds=TimeBounds(max_lateness=60))
    assert rejects.counts == {"too_late": 1}


def test_bad_records_from_the_decoder_are_counted():
    payload = jsonfast.dumps([{"bn": "vs-sl-101/", "bt": T, "seq": 1, "n": "power", "v": 1.0},
                              {"n": "power", "t": 1, "v": "high"}])
    rejects = Rejects()
    lines = pack_lines("gw-vs-01", decode_columns(payload, T), TABLE, now=T, rejects=rejects)
    assert len(lines) == 1 and rejects.counts == {"bad_record": 1}


def test_status_command_and_ack_lines():
    assert status_line("gw-1", "online", 1, seq=4) == 'gateway_status,gateway=gw-1 state="online",online=true,seq=4i 1'
    cmd = Command("vs-sl-101", Action.DIM, {"level": 20}, "rule:x", id="c1", issued_at=T)
    assert command_line("gw-vs-01", cmd) == (
        'command,action=dim,device=vs-sl-101,gateway=gw-vs-01,origin=rule:x id="c1",level=20.0 1700000000000000')
    ack = Ack("c1", "vs-sl-101", AckStatus.APPLIED, "sent")
    assert ack_line("gw-vs-01", ack, 7) == (
        'command_ack,device=vs-sl-101,gateway=gw-vs-01,status=applied id="c1",detail="sent" 7')


def test_gateway_points_carry_the_gateways_gemeente_where_known():
    assert status_line("gw-1", "offline", 1, gemeente="GM0626") == (
        'gateway_status,gateway=gw-1,gemeente=GM0626 state="offline",online=false 1')
    assert status_line("gw-1", "online", 1, 4, "GM0626") == (
        'gateway_status,gateway=gw-1,gemeente=GM0626 state="online",online=true,seq=4i 1')
    assert health_line("gw-1", {"queue_depth": 2.0}, 5, gemeente="GM0629") == (
        "gateway_health,gateway=gw-1,gemeente=GM0629 queue_depth=2.0 5")
    assert health_line("gw-1", {"queue_depth": 2.0}, 5) == "gateway_health,gateway=gw-1 queue_depth=2.0 5"
    assert batch_line("gw-1", [3, 4], 10, "w1", 9, gemeente="GM0626") == (
        'ingest_batch,gateway=gw-1,gemeente=GM0626,worker=w1 seqs="3,4",batches=2i,records=10i 9')
    assert batch_line("gw-1", [3], 1, "w1", 9) == 'ingest_batch,gateway=gw-1,worker=w1 seqs="3",batches=1i,records=1i 9'


def test_commands_and_acks_carry_the_devices_gemeente_and_wijk_where_known():
    cmd = Command("vs-sl-101", Action.DIM, {"level": 20}, "rule:x", id="c1", issued_at=T)
    assert command_line("gw-vs-01", cmd, gemeente="GM0626", wijk="WK062600") == (
        "command,action=dim,device=vs-sl-101,gateway=gw-vs-01,gemeente=GM0626,origin=rule:x,wijk=WK062600 "
        'id="c1",level=20.0 1700000000000000')
    ack = Ack("c1", "vs-sl-101", AckStatus.APPLIED, "sent")
    assert ack_line("gw-vs-01", ack, 7, "GM0626", "WK062600") == (
        'command_ack,device=vs-sl-101,gateway=gw-vs-01,gemeente=GM0626,status=applied,wijk=WK062600 '
        'id="c1",detail="sent" 7')
    assert ack_line("gw-vs-01", ack, 7, None, None) == ack_line("gw-vs-01", ack, 7)


def test_a_batch_with_readings_older_than_the_settle_horizon_carries_late_write_markers():
    """The API's $count caches days once they settled (SETTLE_S): a late reading names its day."""
    day = int(T * 1e6) - int(T * 1e6) % DAY_US
    lines, rejects = fold([Reading("vs-sl-101", "power", 1.0, T - 2 * SETTLE_S, "W"),
                           Reading("vs-sl-102", "power", 1.0, T - 2 * SETTLE_S + 1, "W"),
                           Reading("vs-rg-001", "rain_intensity", 0.5, T - 3 * 86400, "mm/h"),
                           Reading("vs-sl-101", "power", 2.0, T, "W")])
    markers = sorted(ln for ln in lines if ln.startswith(LATE_MEASUREMENT))
    assert rejects.total == 0 and len(lines) == 4 + 2
    assert markers == [
        f"late_write,day={day - 3 * DAY_US},gateway=gw-vs-01,measurement=rain_gauge n=1i 1700000000000000",
        f"late_write,day={day},gateway=gw-vs-01,measurement=street_light n=2i 1700000000000000"]


def test_a_batch_of_settled_times_only_has_no_marker():
    lines, _ = fold([Reading("vs-sl-101", "power", 1.0, T - SETTLE_S + 60, "W"),
                     Reading("vs-sl-101", "power", 1.0, T - 8 * 86400, "W")])  # refused: no point, no marker
    assert len(lines) == 1 and not any(ln.startswith(LATE_MEASUREMENT) for ln in lines)


def test_a_spooled_batch_replayed_late_marks_its_days_for_every_measurement():
    assert replay_late_lines(T, T + 60) == []
    lines = replay_late_lines(T, T + SETTLE_S)
    days = [int(ln.split("day=", 1)[1].split(",", 1)[0]) for ln in lines]
    assert all(",measurement=* " in ln for ln in lines)
    first = int((T - 2 * SETTLE_S) * 1e6)
    assert days[0] == first - first % DAY_US and days[-1] == int(T * 1e6) - int(T * 1e6) % DAY_US
